"""`posenet-mlvae bench sim2real`: score a checkpoint on a PASCAL3D+-format tree, failures laid bare.

    posenet-mlvae bench sim2real --root ../shared/sim2real_dev --checkpoint runs/demo/run/best.pt \
        [--category car] [--size N] [--out DIR] [--zoom-average Z] [--colour-test] [--smaller-objects F ...] \
        [--box-noise S ... [--box-draws N]]

The ordinary path, end to end: the tree is cropped into a grouped dataset by the library code of
`posenet-mlvae pascal3d` (data_tools.pascal3d.build), framed by the checkpoint's `crop_rule` (else
the pascal3d default) at the checkpoint's input size, and cached in
OUT/data-<category>-<size>px-<mode>-margin<m>/ so a second run reuses it; split test is then scored
by the runner of `posenet-mlvae evaluate` (posenet_mlvae.evaluation.evaluate.evaluate_split). Prints n,
MedErr, Acc@pi/6, Acc@pi/18, front/rear flips (error > 150 deg), errors in (60, 150] deg, the
confidence's AUROC for error > 30 deg and the same figures per 45-degree bin of the TRUE azimuth
(with --colour-test also the headline figures of the same crops grey and with hues turned by 120 deg;
with --smaller-objects F also those of the crops as if each object were F times smaller in its
photo, shrunk and upscaled back as the crop rule upscales a small box; with --box-noise S also
those of the objects cut around noisy boxes, each side moved by N(0, S) x the box side, as a
detector's boxes differ from the annotated ones, with the boxes' median IoU; with --box-draws N
the mean over N draws of the boxes per S, with each figure's range over the draws);
writes them to OUT/eval-<run name>/sim2real.json beside the runner's metrics.json and
predictions.csv. Default OUT: <checkpoint folder>/sim2real.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posenet_mlvae.commands.options import add_device_argument, add_workers_argument, add_zoom_average_argument


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
    add_zoom_average_argument(parser)
    parser.add_argument("--colour-test", action="store_true",
                        help="also score the crops grey and with their hues turned by 120 deg: how much "
                             "of the model's answer rests on colour")
    parser.add_argument("--smaller-objects", type=float, nargs="+", default=[], metavar="F",
                        help="also score the crops as if each object were F times smaller in its photo "
                             "(e.g. 2 3: shrunk and upscaled back, as small PASCAL objects are): how the "
                             "model reads small objects")
    parser.add_argument("--box-noise", type=float, nargs="+", default=[], metavar="S",
                        help="also score the objects cut around noisy boxes, each side moved by N(0, S) x "
                             "the box side (e.g. 0.05 0.1: median IoU about 0.86 and 0.75 with the annotated "
                             "boxes), as an app's detector gives them: how the model copes with loose boxes")
    parser.add_argument("--box-draws", type=int, default=1, metavar="N",
                        help="draws of the noisy boxes per --box-noise S (default 1): the figures are their "
                             "mean, printed with their range over the draws (one draw's figures move from "
                             "draw to draw, more so at larger S)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def run(args: argparse.Namespace) -> int:
    """Build (or reuse) the crops, score split test, print and write the figures.

    User errors (a --size that differs from the checkpoint's, an unusable tree) raise ValueError,
    which the console script turns into one line and exit code 2.
    """
    from posenet_mlvae.commands.options import resolve_device, resolve_workers
    from posenet_mlvae.evaluation.sim2real import format_figures, score_tree

    out = Path(args.out) if args.out else Path(args.checkpoint).resolve().parent / "sim2real"
    figures = score_tree(args.checkpoint, args.root, out, category=args.category, size=args.size,
                         device=resolve_device(args.device), workers=resolve_workers(args.workers),
                         batch_size=args.batch_size, progress=not args.no_progress,
                         zoom_average=args.zoom_average, colour_tests=args.colour_test,
                         smaller_objects=args.smaller_objects, box_noises=args.box_noise,
                         box_draws=args.box_draws)
    print(f"{args.checkpoint} on {args.root} ({args.category}, split test):")
    print(format_figures(figures))
    print(f"wrote {figures['json']} (runner output: metrics.json, predictions.csv)")
    return 0
