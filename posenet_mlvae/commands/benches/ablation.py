"""`posenet-mlvae bench ablation`: what each appearance factor of the renders buys, on photographs.

    posenet-mlvae bench ablation --seeds 0 1 --steps 3000 --pascal-root ../shared/sim2real_dev [--out DIR]

For each seed, renders the 12-minute demo's build (its instances, views, size and splits) with
every appearance factor on and with each of `--factors` (default: all of them) off in turn,
trains each build `--steps` steps (`posenet-mlvae train --data BUILD --steps N --seed S`), and
scores each run's best.pt on its own unseen renders, on the default build's unseen renders (the
column that compares across rows) and, with --pascal-root, on that PASCAL3D+-format tree's test
objects (e.g. ../shared/sim2real_dev) by the `bench sim2real` path. Prints the table (mean and
max - min over seeds) and writes OUT/ablation.md, OUT/ablation.json and the plot OUT/ablation.png.
Runs already finished in OUT are reused, so an interrupted study resumes; each factor's build is
deleted once scored unless --keep-data. Default OUT: runs/ablation-<category>. Budget: (factors
+ 1) x seeds runs of 5-7 min each on a 2-core Xeon (render 80 s, 3,000 steps in 3.4-4.6 min,
scoring under a minute; measured in round 33); a machine that renders and trains 1.5-2x as
slowly (round 32's AMD EPYC on a slow day) takes that much longer.
"""

from __future__ import annotations

import argparse

from posenet_mlvae.commands.options import add_device_argument, add_workers_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from data_tools.render.plan import APPEARANCE_FACTORS

    parser.add_argument("--category", default="car", choices=("car", "chair"), help="what to render (default car)")
    parser.add_argument("--factors", nargs="+", default=list(APPEARANCE_FACTORS), choices=list(APPEARANCE_FACTORS),
                        help=f"appearance factors switched off in turn (default: {' '.join(APPEARANCE_FACTORS)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="render and training seeds (default 0)")
    parser.add_argument("--steps", type=int, default=3000, help="training steps per run (default 3000)")
    parser.add_argument("--instances", type=int, default=None,
                        help="training instances per build (default: the 12-minute demo's, 3,072)")
    parser.add_argument("--val-instances", type=int, default=24, help="validation instances (default 24)")
    parser.add_argument("--test-instances", type=int, default=72, help="unseen test instances (default 72)")
    parser.add_argument("--views", type=int, default=24, help="views per instance (default 24)")
    parser.add_argument("--pascal-root", default="", metavar="DIR",
                        help="also score on this PASCAL3D+-format tree's test objects")
    parser.add_argument("--out", default=None, metavar="DIR", help="study folder (default runs/ablation-<category>)")
    parser.add_argument("--keep-data", action="store_true", help="keep each factor's build after its run")
    add_workers_argument(parser, "processes for rendering and cropping --pascal-root")
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    from posenet_mlvae.commands.options import resolve_device, resolve_workers
    from posenet_mlvae.evaluation.ablation_study import (AblationConfig, aggregate, format_table, run_study,
                                                         write_outputs)

    config = AblationConfig(out=args.out or f"runs/ablation-{args.category}", category=args.category,
                            factors=tuple(args.factors), seeds=tuple(args.seeds), steps=args.steps,
                            instances=args.instances, val_instances=args.val_instances,
                            test_instances=args.test_instances, views=args.views, pascal_root=args.pascal_root,
                            device=resolve_device(args.device), workers=resolve_workers(args.workers),
                            keep_data=args.keep_data)
    results = run_study(config)
    paths = write_outputs(config, results)
    print(format_table(aggregate(results, config.variants)))
    print(f"wrote {paths['table']}, {paths['json']} and the plot {paths['plot']}")
    return 0
