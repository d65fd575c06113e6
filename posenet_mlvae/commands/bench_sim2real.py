"""`posenet-mlvae bench sim2real`: score a checkpoint on a PASCAL3D+-format tree, failures laid bare.

    posenet-mlvae bench sim2real --root ../shared/sim2real_dev --checkpoint runs/demo/run/best.pt \
        [--category car] [--size N] [--out DIR]

The ordinary path, end to end: the tree is cropped into a grouped dataset by the library code of
`posenet-mlvae pascal3d` (data_tools.pascal3d_build), framed by the checkpoint's `crop_rule` (else
the pascal3d default) at the checkpoint's input size, and cached in
OUT/data-<category>-<size>px-<mode>-margin<m>/ so a second run reuses it; split test is then scored
by the runner of `posenet-mlvae evaluate` (posenet_mlvae.evaluate.evaluate_split). Prints n,
MedErr, Acc@pi/6, Acc@pi/18, front/rear flips (error > 150 deg), errors in (60, 150] deg, the
confidence's AUROC for error > 30 deg and the same figures per 45-degree bin of the TRUE azimuth;
writes them to OUT/eval-<run name>/sim2real.json beside the runner's metrics.json and
predictions.csv. Default OUT: <checkpoint folder>/sim2real.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path
from typing import Any

from posenet_mlvae.commands.options import add_device_argument, add_workers_argument

AZIMUTH_BINS = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", required=True, metavar="DIR",
                        help="PASCAL3D+-format tree (e.g. ../shared/sim2real_dev)")
    parser.add_argument("--checkpoint", required=True, metavar="PT", help="checkpoint to score")
    parser.add_argument("--category", default="car", help="class to score (default car)")
    parser.add_argument("--size", type=int, default=None,
                        help="crop side in pixels; must equal the checkpoint's input size (default: that size)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="cache of the cropped dataset and results (default: <checkpoint folder>/sim2real)")
    add_workers_argument(parser, "processes for indexing and cropping")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    add_device_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def model_input(checkpoint_path: str | Path):
    """(input side in pixels, CropRule) of a checkpoint; the rule is the pascal3d default when the
    checkpoint records none (made before rules were stored)."""
    from data_tools.pascal3d_build import CropConfig
    from data_tools.preprocess import CropRule
    from posenet_mlvae.checkpoint import read_checkpoint

    checkpoint = read_checkpoint(checkpoint_path)
    size = int(checkpoint.get("metadata", {}).get("image_size", checkpoint["model_config"]["image_size"]))
    default = CropConfig()
    rule = CropRule.from_json(checkpoint.get("crop_rule")) or CropRule(default.resize, default.margin)
    return size, rule


def dataset_folder(out: Path, category: str, size: int, rule) -> Path:
    """Where the crops of (category, size, rule) are cached under `out`."""
    return Path(out) / f"data-{category}-{size}px-{rule.mode}-margin{rule.margin:g}"


def cached_dataset(root: str | Path, category: str, size: int, rule, out: str | Path,
                   workers: int = 1, progress: bool = False) -> tuple[Path, bool]:
    """The cropped dataset of `root` for (category, size, rule): (folder, True if built now).

    A finished earlier build (its manifest.json, written last) is reused when it was made from
    the same root with the same crop; the build goes to a temporary folder renamed into place,
    so a killed build is never mistaken for a finished one. ValueError when the folder holds
    something else, or when no object could be cropped.
    """
    from data_tools.dataset import read_manifest
    from data_tools.pascal3d import index_dataset
    from data_tools.pascal3d_build import CropConfig, build_dataset
    from posenet_mlvae import __version__

    root = Path(root).resolve()
    folder = dataset_folder(Path(out), category, size, rule)
    config = CropConfig(size=size, margin=rule.margin, resize=rule.mode)
    if folder.exists():
        if not (folder / "manifest.json").is_file():
            raise ValueError(f"{folder} exists but holds no finished dataset; delete it and run again")
        manifest = read_manifest(folder)
        crop = manifest.get("crop", {})
        made = (manifest.get("root"), crop.get("size"), crop.get("margin"), crop.get("resize"))
        if made != (str(root), config.size, config.margin, config.resize):
            raise ValueError(f"{folder} was cropped from {made[0]} (size {made[1]}, margin {made[2]}, "
                             f"{made[3]}), not from {root}; use another --out")
        return folder, False
    index = index_dataset(root, [category], workers=workers, progress=progress)
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


def sim2real_figures(errors_deg, true_azimuth_deg, confidence, bins: int = AZIMUTH_BINS) -> dict[str, Any]:
    """The bench's figures from per-image errors, true azimuths and confidences (all (N,) arrays).

    n, med_err_deg, acc_pi_6, acc_pi_18, flips (> 150 deg), errors_60_150, auroc_err_gt_30 (None
    when undefined) and per_azimuth (eval.metrics.azimuth_breakdown over `bins` bins).
    """
    from eval.confidence import failure_auroc
    from eval.metrics import azimuth_breakdown, failure_counts, summarize

    summary = summarize(errors_deg)
    area = failure_auroc(errors_deg, confidence)
    return {"n": summary["n"], "med_err_deg": summary["med_err_deg"], "acc_pi_6": summary["acc_pi_6"],
            "acc_pi_18": summary["acc_pi_18"], **failure_counts(errors_deg),
            "auroc_err_gt_30": None if area != area else area,  # NaN -> None (JSON null)
            "per_azimuth": azimuth_breakdown(errors_deg, true_azimuth_deg, bins)}


def format_figures(figures: dict[str, Any]) -> str:
    """The printed report: headline figures, then one row per true-azimuth bin."""
    area = figures["auroc_err_gt_30"]
    lines = [f"n {figures['n']}  MedErr {figures['med_err_deg']:.2f} deg  "
             f"Acc@pi/6 {100 * figures['acc_pi_6']:.1f} %  Acc@pi/18 {100 * figures['acc_pi_18']:.1f} %",
             f"flips (error > 150 deg) {figures['flips']}  errors in (60, 150] deg {figures['errors_60_150']}  "
             f"confidence AUROC for error > 30 deg {'-' if area is None else f'{area:.3f}'}",
             f"{'true azimuth':<14}{'n':>6}{'MedErr':>10}{'Acc@pi/6':>10}{'flips':>7}"]
    for row in figures["per_azimuth"]:
        span = f"[{row['azimuth_from']:.0f}, {row['azimuth_to']:.0f})"
        if row["n"]:
            lines.append(f"{span:<14}{row['n']:>6}{row['med_err_deg']:>9.2f}\u00b0"
                         f"{100 * row['acc_pi_6']:>9.1f}%{row['flips']:>7}")
        else:
            lines.append(f"{span:<14}{0:>6}{'-':>10}{'-':>10}{0:>7}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Build (or reuse) the crops, score split test, print and write the figures.

    User errors (a --size that differs from the checkpoint's, an unusable tree) raise ValueError,
    which the console script turns into one line and exit code 2.
    """
    from data_tools.atomic_write import atomic_write_json
    from posenet_mlvae.commands.evaluate import run_names
    from posenet_mlvae.commands.options import resolve_device, resolve_workers
    from posenet_mlvae.evaluate import EvalConfig, evaluate_split

    device, workers = resolve_device(args.device), resolve_workers(args.workers)
    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent / "sim2real"
    size, rule = model_input(args.checkpoint)
    if args.size is not None and args.size != size:
        raise ValueError(f"--size {args.size} does not match the checkpoint's input size {size}; "
                         f"omit --size or pass --size {size}")
    data_dir, built = cached_dataset(args.root, args.category, size, rule, out, workers,
                                     progress=not args.no_progress)
    print(f"{'cropped' if built else 'reusing'} {data_dir} ({args.category}, {size} px, {rule.describe()})")
    eval_dir = out / f"eval-{run_names([args.checkpoint])[0]}"
    evaluation = evaluate_split(args.checkpoint, data_dir, eval_dir,
                                EvalConfig(split="test", batch_size=args.batch_size, device=device,
                                           progress=not args.no_progress))
    predictions = evaluation.predictions
    labelled = predictions.has_pose
    figures = sim2real_figures(predictions.errors_deg()[labelled], predictions.true[labelled, 0],
                               predictions.confidence[labelled])
    if evaluation.metrics["crop_rule"]["note"]:
        print(f"note: {evaluation.metrics['crop_rule']['note']}")
    print(f"{args.checkpoint} on {args.root} ({args.category}, split test):")
    print(format_figures(figures))
    result = {"checkpoint": str(args.checkpoint), "root": str(args.root), "category": args.category,
              "size": size, "crop_rule": rule.to_json(), "dataset": str(data_dir), "split": "test",
              "step": evaluation.metrics["step"], **figures}
    atomic_write_json(eval_dir / "sim2real.json", result)
    print(f"wrote {eval_dir / 'sim2real.json'} (runner output: metrics.json, predictions.csv)")
    return 0
