"""`posenet-mlvae bench labels`: the label-efficiency study, ML-VAE against the baselines at few labels.

    posenet-mlvae bench labels --data data/cars --minutes 3 --seeds 2 [--pascal-root DIR] [--out DIR]

Trains `--variants` (default mlvae, vae, direct) at each `--fractions` of labelled training groups
(default 0.01 0.1 1: 1 %, 10 %, 100 %) for each of `--seeds` seeds, every run for the same
training time (`--minutes`, or `--steps` for a quick check), scores each run's last.pt on the
unseen test instances of --data and, with --pascal-root, on that PASCAL3D+-format tree's test
objects (e.g. ../shared/sim2real_dev), and prints the table (mean and max - min over seeds).
Writes OUT/labels.json, OUT/labels.md and the plot OUT/labels.png (MedErr against the label
fraction). Runs already finished in OUT are reused, so an interrupted study resumes.
Default OUT: <data folder>/label-study. Budget: variants x fractions x seeds x (minutes + ~0.3 min).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posenet_mlvae.commands.options import add_device_argument, add_workers_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from posenet_mlvae.evaluation.label_study import DEFAULT_FRACTIONS, DEFAULT_VARIANTS

    parser.add_argument("--data", required=True, metavar="DIR",
                        help="grouped dataset with train/val/test splits (e.g. from `posenet-mlvae render`)")
    parser.add_argument("--minutes", type=float, default=3.0, help="training minutes per run (default 3)")
    parser.add_argument("--steps", type=int, default=0,
                        help="train each run this many steps instead of --minutes (quick checks)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per (variant, fraction) (default 2)")
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS),
                        choices=list(DEFAULT_VARIANTS), help="models to compare")
    parser.add_argument("--fractions", nargs="+", type=float, default=list(DEFAULT_FRACTIONS),
                        help="fractions of labelled training groups, each in (0, 1]")
    parser.add_argument("--pascal-root", default="", metavar="DIR",
                        help="also score on this PASCAL3D+-format tree's test objects")
    parser.add_argument("--category", default="car", help="class scored on --pascal-root (default car)")
    parser.add_argument("--out", default=None, metavar="DIR", help="study folder (default <data>/label-study)")
    add_workers_argument(parser, "processes for cropping --pascal-root")
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    from posenet_mlvae.commands.options import resolve_device, resolve_workers
    from posenet_mlvae.evaluation.label_study import StudyConfig, format_table, aggregate, run_study, write_outputs

    if not Path(args.data).is_dir():
        raise ValueError(f"--data {args.data}: no such folder; render one with `posenet-mlvae render`")
    if args.pascal_root and not Path(args.pascal_root).is_dir():
        raise ValueError(f"--pascal-root {args.pascal_root}: no such folder")
    out = args.out or str(Path(args.data) / "label-study")
    config = StudyConfig(data=str(args.data), out=out, variants=tuple(args.variants),
                         fractions=tuple(sorted(set(args.fractions))), seeds=args.seeds, minutes=args.minutes,
                         steps=args.steps, pascal_root=args.pascal_root, category=args.category,
                         device=resolve_device(args.device), workers=resolve_workers(args.workers))
    results = run_study(config)
    paths = write_outputs(config, results)
    print(format_table(aggregate(results)))
    print(f"wrote {paths['table']}, {paths['json']} and the plot {paths['plot']}")
    return 0
