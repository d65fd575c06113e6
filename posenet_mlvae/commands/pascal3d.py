"""`posenet-mlvae pascal3d`: crop PASCAL3D+ (or ObjectNet3D) objects into a grouped dataset.

    posenet-mlvae pascal3d --root PASCAL3D+_release1.1 --category car --category chair \
        --size 64 --out data/pascal3d [--grouping cad_index|singletons] [--margin 0.1] \
        [--resize pad|stretch] [--jitter N] [--flip] [--box-noise S] [--workers N]

Splits follow the standard protocol (data_tools/pascal3d/protocol.py): test = clean VOC2012 val objects,
train = VOC2012 train + ImageNet train/val. Prints one line per bad input, then the counts per
split and per skip reason. Exits 1 only when no object could be written.
"""

from __future__ import annotations

import argparse

from data_tools.image.preprocess import CROP_MODES, DEFAULT_CROP_RULE
from posenet_mlvae.commands.options import add_workers_argument, resolve_workers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", required=True, metavar="DIR",
                        help="PASCAL3D+_release1.1 folder (or an ObjectNet3D folder)")
    parser.add_argument("--category", action="append", required=True, metavar="CLS",
                        help="class to extract; repeat for several (car, chair, aeroplane, ...)")
    parser.add_argument("--out", required=True, metavar="DIR", help="new dataset folder")
    parser.add_argument("--size", type=int, default=64, help="crop side in pixels")
    parser.add_argument("--grouping", default="cad_index", choices=("cad_index", "singletons"),
                        help="ML-VAE groups: objects sharing (split, class, CAD sub-type), or one per object")
    parser.add_argument("--margin", type=float, default=DEFAULT_CROP_RULE.margin,
                        help="context around the box, as a fraction of its side on each side "
                             f"(default {DEFAULT_CROP_RULE.margin:g}, the crop rule `render` uses)")
    parser.add_argument("--resize", default=DEFAULT_CROP_RULE.mode, choices=CROP_MODES,
                        help="pad: square crop, border replicated; stretch: anisotropic resize "
                             f"(RenderForCNN); default {DEFAULT_CROP_RULE.mode}")
    parser.add_argument("--jitter", type=int, default=0, metavar="N",
                        help="extra crops per training object with each box side moved by up to 1/6")
    parser.add_argument("--flip", action="store_true",
                        help="add mirrored training crops labelled (360-a, e, -theta)")
    parser.add_argument("--box-noise", type=float, default=0.0, metavar="S",
                        help="cut each test object around a noisy box, every side moved by N(0, S) x the "
                             "box side, as a detector's boxes differ from the annotated ones (0.1: median "
                             "IoU about 0.75); default 0, the annotated box")
    add_workers_argument(parser, "processes for indexing and cropping")
    parser.add_argument("--layout", default="auto", choices=("auto", "pascal3d", "objectnet3d"),
                        help="dataset layout (auto: ObjectNet3D when ROOT has Image_sets/train.txt and no PASCAL/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the box jitter and box noise")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def format_counts(result) -> str:
    """Per split: objects and images written, then every skip reason with its count."""
    lines = []
    for split in ("train", "test", "unassigned"):
        skipped = result.skipped.get(split, {})
        if split not in result.objects and not skipped:
            continue
        if split == "unassigned":
            lines.append("unassigned (annotation files in no split list):")
        else:
            lines.append(f"{split}: {result.objects.get(split, 0)} objects -> "
                         f"{result.images.get(split, 0)} images")
        for reason, n in sorted(skipped.items()):
            unit = "files" if reason.startswith("file_") else "objects"
            lines.append(f"  skipped {reason}: {n} {unit}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import sys
    import time

    from data_tools.pascal3d.protocol import index_dataset
    from data_tools.pascal3d.build import CropConfig, build_dataset
    from posenet_mlvae import __version__

    start = time.perf_counter()
    try:
        config = CropConfig(size=args.size, margin=args.margin, resize=args.resize, jitter=args.jitter,
                            flip=args.flip, grouping=args.grouping, seed=args.seed, box_noise=args.box_noise)
        workers = resolve_workers(args.workers)
        index = index_dataset(args.root, args.category, workers=workers,
                              progress=not args.no_progress, layout=args.layout)
        result = build_dataset(index, args.out, config, workers=workers, progress=not args.no_progress,
                               created_by={"command": "posenet-mlvae pascal3d", "version": __version__,
                                           "categories": list(index.categories)})
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for problem in result.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    print(format_counts(result))
    total = sum(result.images.values())
    print(f"wrote {total} images ({sum(result.objects.values())} objects, {len(result.problems)} "
          f"bad inputs) to {args.out} in {time.perf_counter() - start:.1f} s")
    if total == 0:
        print("error: no usable object; check --root and --category", file=sys.stderr)
        return 1
    return 0
