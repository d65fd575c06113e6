"""Score a checkpoint on a PASCAL3D+-format tree (photographs or photo-like crops), failures laid bare.

The ordinary path, end to end: the tree is cropped into a grouped dataset by the library code of
`posenet-mlvae pascal3d` (data_tools.pascal3d.build), framed by the checkpoint's `crop_rule` (else
the pascal3d default) at the checkpoint's input size, and cached in
OUT/data-<category>-<size>px-<mode>-margin<m>/ so a second run reuses it; split test is then scored
by the runner of `posenet-mlvae evaluate` (posenet_mlvae.evaluation.evaluate.evaluate_split). The figures:
n, MedErr, Acc@pi/6, Acc@pi/18, front/rear flips (error > 150 deg), errors in (60, 150] deg, the
confidence's AUROC for error > 30 deg, the same per 45-degree bin of the TRUE azimuth and per CAD
model (which car models are read wrong: PASCAL3D+ matches each object to one); on request
the headline figures again on the crops grey and hue-turned (`colour_changes`), as if the
objects were smaller in the photos (`resolution_changes`) and cut around noisy boxes, as a
detector gives them (`noisy_box_datasets`). Used by
`posenet-mlvae bench sim2real` and `posenet-mlvae demo --pascal-root`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

AZIMUTH_BINS = 8


def model_input(checkpoint_path: str | Path):
    """(input side in pixels, CropRule) of a checkpoint; the rule is the pascal3d default when the
    checkpoint records none (made before rules were stored)."""
    from data_tools.pascal3d.build import CropConfig
    from data_tools.image.preprocess import CropRule
    from posenet_mlvae.training.checkpoint import read_checkpoint

    checkpoint = read_checkpoint(checkpoint_path)
    size = int(checkpoint.get("metadata", {}).get("image_size", checkpoint["model_config"]["image_size"]))
    default = CropConfig()
    rule = CropRule.from_json(checkpoint.get("crop_rule")) or CropRule(default.resize, default.margin)
    return size, rule


def dataset_folder(out: Path, category: str, size: int, rule, box_noise: float = 0.0, box_draw: int = 0) -> Path:
    """Where the crops of (category, size, rule, test boxes' noise and draw) are cached under `out`."""
    noise = f"-boxnoise{box_noise:g}" if box_noise else ""
    draw = f"-draw{box_draw}" if box_noise and box_draw else ""
    return Path(out) / f"data-{category}-{size}px-{rule.mode}-margin{rule.margin:g}{noise}{draw}"


def tree_index(root: str | Path, category: str, workers: int = 1, progress: bool = False) -> Callable[[], Any]:
    """A function returning `root`'s index for `category` (data_tools.pascal3d.protocol.index_dataset),
    made on its first call and kept: the crops of one tree share it, and cached crops need none."""
    from data_tools.pascal3d.protocol import index_dataset

    return functools.cache(lambda: index_dataset(Path(root).resolve(), [category], workers=workers,
                                                 progress=progress))


def cached_dataset(root: str | Path, category: str, size: int, rule, out: str | Path,
                   workers: int = 1, progress: bool = False, box_noise: float = 0.0,
                   box_draw: int = 0, index: Callable[[], Any] | None = None) -> tuple[Path, bool]:
    """The cropped dataset of `root` for (category, size, rule): (folder, True if built now);
    `box_noise` > 0 cuts the test objects around noisy boxes (CropConfig.box_noise), and only them,
    with the boxes of draw `box_draw` (the crops' seed: each draw moves the boxes anew). `index`:
    a `tree_index` of `root` to share between crops (None: one of its own).

    A finished earlier build (its manifest.json, written last) is reused when it was made from
    the same root with the same crop; the build goes to a temporary folder renamed into place,
    so a killed build is never mistaken for a finished one. ValueError when the folder holds
    something else, or when no object could be cropped.
    """
    from data_tools.dataset import read_manifest
    from data_tools.pascal3d.build import CropConfig, build_dataset
    from posenet_mlvae import __version__

    root = Path(root).resolve()
    folder = dataset_folder(Path(out), category, size, rule, box_noise, box_draw)
    config = CropConfig(size=size, margin=rule.margin, resize=rule.mode, box_noise=box_noise,
                        seed=box_draw if box_noise else 0)
    if folder.exists():
        if not (folder / "manifest.json").is_file():
            raise ValueError(f"{folder} exists but holds no finished dataset; delete it and run again")
        manifest = read_manifest(folder)
        crop = manifest.get("crop", {})
        made = (manifest.get("root"), crop.get("size"), crop.get("margin"), crop.get("resize"),
                crop.get("box_noise", 0.0), crop.get("seed", 0))
        if made != (str(root), config.size, config.margin, config.resize, config.box_noise, config.seed):
            raise ValueError(f"{folder} holds crops of {made[0]} (size {made[1]}, margin {made[2]}, {made[3]}, "
                             f"box noise {made[4]}, seed {made[5]}), not of {root} (size {config.size}, margin "
                             f"{config.margin}, {config.resize}, box noise {config.box_noise}, seed "
                             f"{config.seed}); use another --out")
        return folder, False
    objects = (index or tree_index(root, category, workers, progress))()
    if box_noise:  # the noise moves only the test boxes: the training crops would be the plain set's
        objects = dataclasses.replace(objects, objects=[obj for obj in objects.objects if obj.split == "test"])
    temporary = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    result = build_dataset(objects, temporary, config, workers=workers, progress=progress,
                           created_by={"command": "posenet-mlvae bench sim2real", "version": __version__,
                                       "categories": [category]})
    if result.images.get("test", 0) == 0:
        shutil.rmtree(temporary)
        raise ValueError(f"{root}: no test object of class {category!r} could be cropped "
                         f"(skipped: {dict(result.skipped.get('test', {}))}); check --root and --category")
    os.replace(temporary, folder)
    return folder, True


def sim2real_figures(errors_deg, true_azimuth_deg, confidence, bins: int = AZIMUTH_BINS,
                     cad_index=None) -> dict[str, Any]:
    """The bench's figures from per-image errors, true azimuths and confidences (all (N,) arrays).

    n, med_err_deg, acc_pi_6, acc_pi_18, flips (> 150 deg), errors_60_150, auroc_err_gt_30 (None
    when undefined), per_azimuth (eval.metrics.azimuth_breakdown over `bins` bins) and, given
    each object's PASCAL3D+ CAD model index `cad_index` (N,), per_cad_model
    (eval.metrics.label_breakdown, rows keyed "cad_index").
    """
    from eval.confidence import failure_auroc
    from eval.metrics import azimuth_breakdown, failure_counts, label_breakdown, summarize

    summary = summarize(errors_deg)
    area = failure_auroc(errors_deg, confidence)
    figures = {"n": summary["n"], "med_err_deg": summary["med_err_deg"], "acc_pi_6": summary["acc_pi_6"],
               "acc_pi_18": summary["acc_pi_18"], **failure_counts(errors_deg),
               "auroc_err_gt_30": None if area != area else area,  # NaN -> None (JSON null)
               "per_azimuth": azimuth_breakdown(errors_deg, true_azimuth_deg, bins)}
    if cad_index is not None:
        figures["per_cad_model"] = [{"cad_index": int(row.pop("label")), **row}
                                    for row in label_breakdown(errors_deg, cad_index)]
    return figures


def format_figures(figures: dict[str, Any]) -> str:
    """The printed report: headline figures, the colour tests' when scored, then one row per
    true-azimuth bin and one per CAD model when known."""
    area = figures["auroc_err_gt_30"]
    lines = [f"n {figures['n']}  MedErr {figures['med_err_deg']:.2f} deg  "
             f"Acc@pi/6 {100 * figures['acc_pi_6']:.1f} %  Acc@pi/18 {100 * figures['acc_pi_18']:.1f} %",
             f"flips (error > 150 deg) {figures['flips']}  errors in (60, 150] deg {figures['errors_60_150']}  "
             f"confidence AUROC for error > 30 deg {'-' if area is None else f'{area:.3f}'}"]
    changed_crops = [(f"colour test {name}", changed) for name, changed in figures.get("colour_tests", {}).items()]
    changed_crops += [(f"objects {factor}x smaller", changed)
                      for factor, changed in figures.get("smaller_objects", {}).items()]
    noisy_boxes = figures.get("noisy_boxes", {})
    changed_crops += [(f"boxes with noise {noise} (median IoU {changed['median_box_iou']:.2f})", changed)
                      for noise, changed in noisy_boxes.items() if len(changed["draws"]) == 1]
    for name, changed in changed_crops:
        lines.append(f"{name}: MedErr {changed['med_err_deg']:.2f} deg  "
                     f"Acc@pi/6 {100 * changed['acc_pi_6']:.1f} %  flips {changed['flips']}  "
                     f"errors in (60, 150] deg {changed['errors_60_150']}")
    lines += [_drawn_boxes_line(noise, changed) for noise, changed in noisy_boxes.items() if len(changed["draws"]) > 1]
    lines.append(_breakdown_row("true azimuth", None))
    lines += [_breakdown_row(f"[{row['azimuth_from']:.0f}, {row['azimuth_to']:.0f})", row)
              for row in figures["per_azimuth"]]
    if figures.get("per_cad_model"):
        lines.append(_breakdown_row("CAD model", None))
        lines += [_breakdown_row(str(row["cad_index"]), row) for row in figures["per_cad_model"]]
    return "\n".join(lines)


def _drawn_boxes_line(noise: str, changed: dict[str, Any]) -> str:
    """One box noise's printed figures over several draws: each figure's mean and range."""
    draws = len(changed["draws"])
    (err_lo, err_hi), (acc_lo, acc_hi), (flip_lo, flip_hi), (iou_lo, iou_hi) = (
        changed["range"][key] for key in ("med_err_deg", "acc_pi_6", "flips", "median_box_iou"))
    return (f"boxes with noise {noise}, mean of {draws} draws (median IoU {changed['median_box_iou']:.2f}, "
            f"{iou_lo:.2f}-{iou_hi:.2f}): MedErr {changed['med_err_deg']:.2f} deg ({err_lo:.2f}-{err_hi:.2f})  "
            f"Acc@pi/6 {100 * changed['acc_pi_6']:.1f} % ({100 * acc_lo:.1f}-{100 * acc_hi:.1f})  "
            f"flips {changed['flips']:.1f} ({flip_lo:g}-{flip_hi:g})  "
            f"errors in (60, 150] deg {changed['errors_60_150']:.1f}")


def _breakdown_row(name: str, row: dict | None) -> str:
    """One printed row of a breakdown (n, MedErr, Acc@pi/6, flips); row None = the header."""
    if row is None:
        return f"{name:<14}{'n':>6}{'MedErr':>10}{'Acc@pi/6':>10}{'flips':>7}"
    if not row["n"]:
        return f"{name:<14}{0:>6}{'-':>10}{'-':>10}{0:>7}"
    return f"{name:<14}{row['n']:>6}{row['med_err_deg']:>9.2f}\u00b0{100 * row['acc_pi_6']:>9.1f}%{row['flips']:>7}"


def changed_crops_figures(checkpoint: str | Path, changes: dict[str, tuple[Any, Any]], device: str = "cpu",
                          batch_size: int = 256, zoom_average: float | None = None,
                          progress: bool = False) -> dict[str, dict[str, Any]]:
    """Per named change of `changes`, a (dataset, transform) pair, the figures of `sim2real_figures`
    (without the per-azimuth rows) on the labelled images of that dataset, each uint8 (B, H, W, 3)
    batch passed through the transform (None: as cropped)."""
    from posenet_mlvae.evaluation.evaluate import predict
    from posenet_mlvae.inference import set_zoom_average
    from posenet_mlvae.training.checkpoint import load_checkpoint

    model, _ = load_checkpoint(checkpoint, map_location=device)
    set_zoom_average(model, zoom_average)
    out = {}
    for name, (dataset, change) in changes.items():
        changed = predict(model, dataset, batch_size=batch_size, device=device, progress=progress,
                          desc=name, transform=change)
        labelled = changed.has_pose
        figures = sim2real_figures(changed.errors_deg()[labelled], changed.true[labelled, 0],
                                   changed.confidence[labelled])
        out[name] = {k: v for k, v in figures.items() if k != "per_azimuth"}
    return out


def colour_changes() -> dict[str, Any]:
    """The colour tests of data_tools.image.colour_tests by name: how much of the model's answer
    rests on colour (a model that reads shape keeps its flips where they were)."""
    from data_tools.image.colour_tests import COLOUR_TESTS, colour_test

    return {name: functools.partial(colour_test, name) for name in COLOUR_TESTS}


def resolution_changes(factors: Sequence[float]) -> dict[str, Any]:
    """Per factor F, the crops as if each object were F times smaller in the photo
    (data_tools.image.resolution.as_if_smaller), keyed "F": how the model reads small objects."""
    from data_tools.image.resolution import as_if_smaller

    for factor in factors:
        if not factor > 1.0:
            raise ValueError(f"--smaller-objects takes factors > 1 (2 = objects half as wide), got {factor:g}")
    return {f"{factor:g}": functools.partial(as_if_smaller, factor=factor) for factor in factors}


def check_box_noises(noises: Sequence[float]) -> None:
    """ValueError unless every box noise is in (0, BOX_NOISE_MAX] (CropConfig's range, 0 being
    the plain score)."""
    from data_tools.pascal3d.build import BOX_NOISE_MAX

    for noise in noises:
        if not 0.0 < noise <= BOX_NOISE_MAX:
            raise ValueError(f"--box-noise takes standard deviations in (0, {BOX_NOISE_MAX:g}] (0.1 = each box "
                             f"side moved by about a tenth of the box), got {noise:g}")


def check_box_draws(draws: int) -> None:
    """ValueError unless `draws` (noisy boxes drawn per box noise) is at least 1."""
    if draws < 1:
        raise ValueError(f"--box-draws takes a count of draws >= 1, got {draws}")


def noisy_box_datasets(root: str | Path, category: str, size: int, rule, out: str | Path,
                       noises: Sequence[float], workers: int = 1, progress: bool = False,
                       draws: int = 1, index: Callable[[], Any] | None = None) -> dict[str, list]:
    """Per box noise S, keyed "S": `draws` datasets (draw 0 first), each the test split of `root`
    cut around noisy boxes (each side moved by N(0, S) x the box side, as a detector's boxes
    differ from the annotated ones; every draw moves them anew), cached under `out` as
    `cached_dataset` does, all from one index of the tree (`index`, else one made here)."""
    from data_tools.dataset import GroupedDataset

    check_box_noises(noises)
    check_box_draws(draws)
    index = index or tree_index(root, category, workers, progress)
    return {f"{noise:g}": [GroupedDataset(cached_dataset(root, category, size, rule, out, workers, progress,
                                                         box_noise=noise, box_draw=draw, index=index)[0],
                                          split="test")
                           for draw in range(draws)]
            for noise in noises}


#: The figures of a noisy-box score that `draws_summary` gives a range over draws for.
DRAWN_FIGURES = ("med_err_deg", "acc_pi_6", "acc_pi_18", "flips", "errors_60_150", "median_box_iou")


def draws_summary(draws: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One box noise's figures over its draws: the mean of each figure (AUROC over the draws that
    have one; one draw's own figures when there is one), "range" [min, max] over the draws of each
    of DRAWN_FIGURES, and the "draws" themselves."""
    from eval.metrics import over_seeds

    summary: dict[str, Any] = dict(draws[0])
    if len(draws) > 1:
        for key in draws[0]:
            values = [draw[key] for draw in draws if draw[key] is not None]
            summary[key] = over_seeds(values)["mean"] if values else None
        summary["n"] = draws[0]["n"]
    spreads = {key: over_seeds([draw[key] for draw in draws]) for key in DRAWN_FIGURES}
    summary["range"] = {key: [spread["min"], spread["max"]] for key, spread in spreads.items()}
    summary["draws"] = list(draws)
    return summary


def score_tree(checkpoint: str | Path, root: str | Path, out: str | Path, category: str = "car",
               size: int | None = None, device: str = "cpu", workers: int = 1, batch_size: int = 256,
               progress: bool = False, report=print, zoom_average: float | None = None,
               colour_tests: bool = False, smaller_objects: Sequence[float] = (),
               box_noises: Sequence[float] = (), box_draws: int = 1) -> dict[str, Any]:
    """Crop (or reuse) `root`'s test objects of `category` by the checkpoint's rule, score them,
    write OUT/eval-<run>/sim2real.json and return the figures (see `sim2real_figures`).
    `zoom_average`: EvalConfig's (None = the model's own). colour_tests: also score the same
    crops grey and with their hues turned (`colour_changes`), under "colour_tests";
    smaller_objects: and as if each object were F times smaller in the photo, per factor F
    (`resolution_changes`), under "smaller_objects"; box_noises: and cut around noisy boxes, per
    standard deviation S of the sides' shifts (`noisy_box_datasets`), under "noisy_boxes", with
    each set's median IoU against the annotated boxes; box_draws: draws of the boxes per S, whose
    figures are averaged (`draws_summary`).

    ValueError for a `size` other than the checkpoint's input size or an unusable tree.
    """
    from data_tools.atomic_write import atomic_write_json
    from posenet_mlvae.evaluation.evaluate import EvalConfig, evaluate_split

    out = Path(out)
    transforms = {"colour_tests": colour_changes() if colour_tests else {},  # bad values refused before any work
                  "smaller_objects": resolution_changes(smaller_objects)}
    check_box_noises(box_noises)
    check_box_draws(box_draws)
    model_size, rule = model_input(checkpoint)
    if size is not None and size != model_size:
        raise ValueError(f"--size {size} does not match the checkpoint's input size {model_size}; "
                         f"omit --size or pass --size {model_size}")
    index = tree_index(root, category, workers, progress)  # indexed once, if any crop must be cut
    data_dir, built = cached_dataset(root, category, model_size, rule, out, workers, progress=progress, index=index)
    report(f"{'cropped' if built else 'reusing'} {data_dir} ({category}, {model_size} px, {rule.describe()})")
    run_name = Path(checkpoint).resolve().parent.name or "run"
    eval_dir = out / f"eval-{run_name}"
    evaluation = evaluate_split(checkpoint, data_dir, eval_dir,
                                EvalConfig(split="test", batch_size=batch_size, device=device,
                                           progress=progress, zoom_average=zoom_average))
    predictions = evaluation.predictions
    labelled = predictions.has_pose
    records = evaluation.dataset.records
    cad_index = None
    if "cad_index" in records:  # PASCAL3D+ numbers its CAD models from 1; 0 = none recorded
        cad_index = np.nan_to_num(records["cad_index"][predictions.row][labelled].astype(np.float64)).astype(np.int64)
    figures = sim2real_figures(predictions.errors_deg()[labelled], predictions.true[labelled, 0],
                               predictions.confidence[labelled], cad_index=cad_index)
    changes = {key: {name: (evaluation.dataset, change) for name, change in named.items()}
               for key, named in transforms.items()}
    noisy = noisy_box_datasets(root, category, model_size, rule, out, box_noises, workers, progress, box_draws,
                               index)
    changes["noisy_boxes"] = {f"{name}#{draw}": (dataset, None) for name, datasets in noisy.items()
                              for draw, dataset in enumerate(datasets)}
    for key, named in changes.items():
        if named:
            figures[key] = changed_crops_figures(checkpoint, named, device, batch_size, zoom_average, progress)
    for key, (dataset, _) in changes["noisy_boxes"].items():
        labelled = dataset.records["has_pose"] == 1
        figures["noisy_boxes"][key]["median_box_iou"] = float(np.median(dataset.records["box_iou"][labelled]))
    if noisy:
        figures["noisy_boxes"] = {name: draws_summary([figures["noisy_boxes"][f"{name}#{draw}"]
                                                       for draw in range(box_draws)]) for name in noisy}
    if evaluation.metrics["crop_rule"]["note"]:
        report(f"note: {evaluation.metrics['crop_rule']['note']}")
    result = {"checkpoint": str(checkpoint), "root": str(root), "category": category,
              "size": model_size, "crop_rule": rule.to_json(), "dataset": str(data_dir), "split": "test",
              "step": evaluation.metrics["step"],
              "zoom_average": evaluation.metrics["zoom_average"], **figures, "json": str(eval_dir / "sim2real.json")}
    atomic_write_json(eval_dir / "sim2real.json", result)
    return result


__all__ = ["AZIMUTH_BINS", "DRAWN_FIGURES", "cached_dataset", "changed_crops_figures", "check_box_draws",
           "check_box_noises", "colour_changes", "dataset_folder", "draws_summary", "format_figures", "model_input",
           "noisy_box_datasets", "resolution_changes", "score_tree", "sim2real_figures", "tree_index"]
