"""`posenet-mlvae evaluate`: score checkpoints on a split of a grouped dataset.

    posenet-mlvae evaluate --checkpoint runs/demo/best.pt --data data/cars --split test \
        [--out DIR] [--diagnostics] [--report] [--batch-size 256] [--device cpu|cuda] [--zoom-average Z]

Writes DIR/metrics.json (MedErr, Acc@pi/6, Acc@pi/18, n, per category, mean over categories, the
confidence's AUROC for errors > 30 deg and its risk-coverage table, and with --diagnostics the
probes, retrieval and grid-set scores; with --onnx MODEL also retrieval through the exported model
and ONNX Runtime), DIR/predictions.csv and with --report DIR/report.md + PNGs.
Default DIR: <checkpoint folder>/eval-<split>. When the dataset was cropped by another rule than the
model's training data (both recorded as `crop_rule`), one `note:` line says so.
Several --checkpoint values (e.g. the ML-VAE and the `--variant direct` / `--variant vae`
baselines) are evaluated on the same split and printed side by side; with --out each gets
DIR/<run name>/, the table goes to DIR/comparison.json and, with --report, their cumulative
error curves to DIR/comparison_cumulative_error.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posenet_mlvae.commands.options import add_device_argument, add_zoom_average_argument, resolve_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, nargs="+", metavar="PT",
                        help="checkpoint(s) to evaluate (e.g. RUN/best.pt); several are compared side by side")
    parser.add_argument("--data", required=True, metavar="DIR", help="grouped dataset folder")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to score")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder (default: <checkpoint folder>/eval-<split>)")
    parser.add_argument("--diagnostics", action="store_true",
                        help="add latent probes, identity retrieval and (grid sets) FactorVAE/BetaVAE/FoV scores")
    parser.add_argument("--report", action="store_true", help="write report.md with figures")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    add_device_argument(parser, default="auto")
    add_zoom_average_argument(parser)
    parser.add_argument("--train-split", default="train", choices=("train", "val", "test"),
                        help="split whose latents fit the probes (--diagnostics)")
    parser.add_argument("--max-probe-images", type=int, default=20_000,
                        help="train images encoded for the probes (a fixed random subset)")
    parser.add_argument("--probe", default="ridge", choices=("ridge", "mlp"),
                        help="pose-from-latent probe: linear (ridge) or one-hidden-layer MLP")
    parser.add_argument("--seed", type=int, default=0, help="seed of subsets and diagnostics")
    parser.add_argument("--onnx", default="", metavar="MODEL",
                        help="with --diagnostics: also compute identity retrieval through this exported model "
                             "and ONNX Runtime (the path of PoseEstimator.predict_group)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run_names(checkpoints: list[str]) -> list[str]:
    """A short unique name per checkpoint: its folder name (RUN of RUN/best.pt), numbered if repeated."""
    names: list[str] = []
    for path in checkpoints:
        base = Path(path).resolve().parent.name or Path(path).stem
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def comparison_table(results: dict[str, dict]) -> str:
    """Metrics of several runs in columns (one row per metric, then per-category MedErr)."""
    names = list(results)
    width = max(12, *(len(n) + 2 for n in names))
    lines = [f"{'':<22}" + "".join(f"{n:>{width}}" for n in names)]

    def row(label: str, values: list[str]) -> None:
        lines.append(f"{label:<22}" + "".join(f"{v:>{width}}" for v in values))

    row("n", [str(r["n"]) for r in results.values()])
    row("MedErr (deg)", [f"{r['med_err_deg']:.2f}" for r in results.values()])
    row("Acc@pi/6 (%)", [f"{100 * r['acc_pi_6']:.1f}" for r in results.values()])
    row("Acc@pi/18 (%)", [f"{100 * r['acc_pi_18']:.1f}" for r in results.values()])
    categories = sorted({c for r in results.values() for c in r.get("per_category", {})})
    if len(categories) > 1:
        row("mean/class MedErr", [f"{r['mean_over_categories']['med_err_deg']:.2f}" for r in results.values()])
        for c in categories:
            row(f"  {c} MedErr", [f"{r['per_category'][c]['med_err_deg']:.2f}" if c in r.get("per_category", {})
                                  else "-" for r in results.values()])
    return "\n".join(lines)


def read_errors(predictions_csv: Path):
    """The finite `error_deg` column of a predictions.csv written by the runner, as a numpy array."""
    import csv

    import numpy as np

    with open(predictions_csv, newline="") as f:
        errors = np.array([float(row["error_deg"]) for row in csv.DictReader(f)])
    return errors[np.isfinite(errors)]


def print_confidence(confidence: dict) -> None:
    """One line: the confidence's AUROC for errors > 30 deg and MedErr of its surest half."""
    if not confidence:
        return
    area = confidence["auroc_err_gt_30"]
    half = next((row for row in confidence["risk_coverage"] if abs(row["coverage"] - 0.5) < 1e-9), None)
    text = f"  confidence: AUROC for error > 30 deg {'-' if area is None else f'{area:.3f}'}"
    if half is not None:
        text += f"; MedErr of the most confident half {half['med_err_deg']:.2f} deg"
    print(text)


def print_diagnostics(diagnostics: dict) -> None:
    """A few lines summarising the --diagnostics block (the full numbers are in metrics.json)."""
    for latent, probe in diagnostics.get("probes", {}).items():
        print(f"  probe {latent:<6} MedErr {probe['med_err_deg']:.1f} deg "
              f"(chance {probe['chance']['med_err_deg']:.1f})")
    runtime = diagnostics.get("retrieval_runtime", {}).get("by_views", {})
    enrolled = diagnostics.get("retrieval_enrolled", {})
    for k, block in diagnostics.get("retrieval", {}).items():
        if block.get("top1") is not None:
            through = runtime.get(k, {}).get("top1")
            against = enrolled.get(k, {}).get("top1")
            print(f"  retrieval k={k:<2} top-1 {block['top1']:.3f} (chance {block['chance']:.3f})"
                  + ("" if through is None else f"; through ONNX Runtime {through:.3f}")
                  + ("" if against is None else f"; gallery enrolled from {k} view{'s' if k != '1' else ''} "
                                                 f"{against:.3f}"))
    grid = diagnostics.get("grid_scores")
    if grid:
        fov = grid["fov_regression"]
        print(f"  FactorVAE {grid['factor_vae']['eval_accuracy']:.3f} "
              f"({grid['factor_vae']['num_active_dims']} active dims)  "
              f"BetaVAE {grid['beta_vae']['eval_accuracy']:.3f}  "
              f"FoV R^2 azimuth {fov['azimuth_r2']:.3f} elevation {fov['elevation_r2']:.3f}")


def run(args: argparse.Namespace) -> int:
    from data_tools.atomic_write import atomic_write_json
    from eval.metrics import format_table
    from posenet_mlvae.evaluation.evaluate import EvalConfig, evaluate_checkpoint

    device = resolve_device(args.device)
    config = EvalConfig(split=args.split, batch_size=args.batch_size, device=device,
                        diagnostics=args.diagnostics, report=args.report, train_split=args.train_split,
                        max_probe_images=args.max_probe_images, probe=args.probe, seed=args.seed,
                        progress=not args.no_progress, onnx_model=args.onnx,
                        zoom_average=args.zoom_average)
    names = run_names(args.checkpoint)
    results: dict[str, dict] = {}
    out_dirs: dict[str, Path] = {}
    for name, checkpoint in zip(names, args.checkpoint):
        if args.out is None:
            out_dir = Path(checkpoint).resolve().parent / f"eval-{args.split}"
        else:
            out_dir = Path(args.out) if len(names) == 1 else Path(args.out) / name
        try:
            metrics = evaluate_checkpoint(checkpoint, args.data, out_dir, config)
        except ValueError as error:
            print(f"error: {error}")
            continue
        results[name], out_dirs[name] = metrics, out_dir
        zooms = f", zoom average {metrics['zoom_average']:g}" if metrics["zoom_average"] else ""
        print(format_table(metrics, title=f"{name} ({metrics['variant']}{zooms}) on {args.split}: {out_dir}"))
        print_confidence(metrics.get("confidence", {}))
        if metrics["crop_rule"]["note"]:
            print(f"note: {metrics['crop_rule']['note']}")
        print_diagnostics(metrics.get("diagnostics", {}))
    if len(results) > 1:
        print(comparison_table(results))
        if args.out is not None:
            atomic_write_json(Path(args.out) / "comparison.json", {"split": args.split, "runs": results})
            if args.report:
                from eval.plots import cumulative_error_curve

                curves = {name: read_errors(out_dirs[name] / "predictions.csv") for name in results}
                cumulative_error_curve(curves, Path(args.out) / "comparison_cumulative_error.png")
    print(f"evaluated {len(results)} of {len(names)} checkpoint(s) on {args.data} split {args.split}")
    return 0 if len(results) == len(names) else 1
