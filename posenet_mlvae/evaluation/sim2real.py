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
from collections.abc import Sequence
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


def dataset_folder(out: Path, category: str, size: int, rule, box_noise: float = 0.0) -> Path:
    """Where the crops of (category, size, rule, test boxes' noise) are cached under `out`."""
    noise = f"-boxnoise{box_noise:g}" if box_noise else ""
    return Path(out) / f"data-{category}-{size}px-{rule.mode}-margin{rule.margin:g}{noise}"


def cached_dataset(root: str | Path, category: str, size: int, rule, out: str | Path,
                   workers: int = 1, progress: bool = False, box_noise: float = 0.0) -> tuple[Path, bool]:
    """The cropped dataset of `root` for (category, size, rule): (folder, True if built now);
    `box_noise` > 0 cuts the test objects around noisy boxes (CropConfig.box_noise), and only them.

    A finished earlier build (its manifest.json, written last) is reused when it was made from
    the same root with the same crop; the build goes to a temporary folder renamed into place,
    so a killed build is never mistaken for a finished one. ValueError when the folder holds
    something else, or when no object could be cropped.
    """
    from data_tools.dataset import read_manifest
    from data_tools.pascal3d.protocol import index_dataset
    from data_tools.pascal3d.build import CropConfig, build_dataset
    from posenet_mlvae import __version__

    root = Path(root).resolve()
    folder = dataset_folder(Path(out), category, size, rule, box_noise)
    config = CropConfig(size=size, margin=rule.margin, resize=rule.mode, box_noise=box_noise)
    if folder.exists():
        if not (folder / "manifest.json").is_file():
            raise ValueError(f"{folder} exists but holds no finished dataset; delete it and run again")
        manifest = read_manifest(folder)
        crop = manifest.get("crop", {})
        made = (manifest.get("root"), crop.get("size"), crop.get("margin"), crop.get("resize"),
                crop.get("box_noise", 0.0))
        if made != (str(root), config.size, config.margin, config.resize, config.box_noise):
            raise ValueError(f"{folder} was cropped from {made[0]} (size {made[1]}, margin {made[2]}, "
                             f"{made[3]}, box noise {made[4]}), not from {root}; use another --out")
        return folder, False
    index = index_dataset(root, [category], workers=workers, progress=progress)
    if box_noise:  # the noise moves only the test boxes: the training crops would be the plain set's
        index = dataclasses.replace(index, objects=[obj for obj in index.objects if obj.split == "test"])
    temporary = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    result = build_dataset(index, temporary, config, workers=workers, progress=progress,
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
    changed_crops += [(f"boxes with noise {noise} (median IoU {changed['median_box_iou']:.2f})", changed)
                      for noise, changed in figures.get("noisy_boxes", {}).items()]
    for name, changed in changed_crops:
        lines.append(f"{name}: MedErr {changed['med_err_deg']:.2f} deg  "
                     f"Acc@pi/6 {100 * changed['acc_pi_6']:.1f} %  flips {changed['flips']}  "
                     f"errors in (60, 150] deg {changed['errors_60_150']}")
    lines.append(_breakdown_row("true azimuth", None))
    lines += [_breakdown_row(f"[{row['azimuth_from']:.0f}, {row['azimuth_to']:.0f})", row)
              for row in figures["per_azimuth"]]
    if figures.get("per_cad_model"):
        lines.append(_breakdown_row("CAD model", None))
        lines += [_breakdown_row(str(row["cad_index"]), row) for row in figures["per_cad_model"]]
    return "\n".join(lines)


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


def noisy_box_datasets(root: str | Path, category: str, size: int, rule, out: str | Path,
                       noises: Sequence[float], workers: int = 1, progress: bool = False) -> dict[str, Any]:
    """Per box noise S, keyed "S": the test split of `root` cut around noisy boxes (each side moved
    by N(0, S) x the box side, as a detector's boxes differ from the annotated ones), cached under
    `out` as `cached_dataset` does."""
    from data_tools.dataset import GroupedDataset

    check_box_noises(noises)
    return {f"{noise:g}": GroupedDataset(cached_dataset(root, category, size, rule, out, workers, progress,
                                                        box_noise=noise)[0], split="test")
            for noise in noises}


def score_tree(checkpoint: str | Path, root: str | Path, out: str | Path, category: str = "car",
               size: int | None = None, device: str = "cpu", workers: int = 1, batch_size: int = 256,
               progress: bool = False, report=print, zoom_average: float | None = None,
               colour_tests: bool = False, smaller_objects: Sequence[float] = (),
               box_noises: Sequence[float] = ()) -> dict[str, Any]:
    """Crop (or reuse) `root`'s test objects of `category` by the checkpoint's rule, score them,
    write OUT/eval-<run>/sim2real.json and return the figures (see `sim2real_figures`).
    `zoom_average`: EvalConfig's (None = the model's own). colour_tests: also score the same
    crops grey and with their hues turned (`colour_changes`), under "colour_tests";
    smaller_objects: and as if each object were F times smaller in the photo, per factor F
    (`resolution_changes`), under "smaller_objects"; box_noises: and cut around noisy boxes, per
    standard deviation S of the sides' shifts (`noisy_box_datasets`), under "noisy_boxes", with
    each set's median IoU against the annotated boxes.

    ValueError for a `size` other than the checkpoint's input size or an unusable tree.
    """
    from data_tools.atomic_write import atomic_write_json
    from posenet_mlvae.evaluation.evaluate import EvalConfig, evaluate_split

    out = Path(out)
    transforms = {"colour_tests": colour_changes() if colour_tests else {},  # bad values refused before any work
                  "smaller_objects": resolution_changes(smaller_objects)}
    check_box_noises(box_noises)
    model_size, rule = model_input(checkpoint)
    if size is not None and size != model_size:
        raise ValueError(f"--size {size} does not match the checkpoint's input size {model_size}; "
                         f"omit --size or pass --size {model_size}")
    data_dir, built = cached_dataset(root, category, model_size, rule, out, workers, progress=progress)
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
    noisy = noisy_box_datasets(root, category, model_size, rule, out, box_noises, workers, progress)
    changes["noisy_boxes"] = {name: (dataset, None) for name, dataset in noisy.items()}
    for key, named in changes.items():
        if named:
            figures[key] = changed_crops_figures(checkpoint, named, device, batch_size, zoom_average, progress)
    for name, dataset in noisy.items():
        labelled = dataset.records["has_pose"] == 1
        figures["noisy_boxes"][name]["median_box_iou"] = float(np.median(dataset.records["box_iou"][labelled]))
    if evaluation.metrics["crop_rule"]["note"]:
        report(f"note: {evaluation.metrics['crop_rule']['note']}")
    result = {"checkpoint": str(checkpoint), "root": str(root), "category": category,
              "size": model_size, "crop_rule": rule.to_json(), "dataset": str(data_dir), "split": "test",
              "step": evaluation.metrics["step"],
              "zoom_average": evaluation.metrics["zoom_average"], **figures, "json": str(eval_dir / "sim2real.json")}
    atomic_write_json(eval_dir / "sim2real.json", result)
    return result


__all__ = ["AZIMUTH_BINS", "cached_dataset", "changed_crops_figures", "check_box_noises", "colour_changes",
           "dataset_folder", "format_figures", "model_input", "noisy_box_datasets", "resolution_changes",
           "score_tree", "sim2real_figures"]
