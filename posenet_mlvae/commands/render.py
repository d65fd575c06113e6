"""`posenet-mlvae render`: build a synthetic grouped dataset (procedural or the user's meshes).

    posenet-mlvae render --category car --instances 500 --views 24 --size 64 --out data/cars64
    posenet-mlvae render ... --shard 3 --num-shards 8      # one machine's share, e.g. machine 3
    posenet-mlvae render ... --merge                       # join the finished shards
    posenet-mlvae render --category car --meshes 'shapenet/02958343/*/model.obj' \
        --axes shapenet-v1 --views 24 --out data/shapenet_cars --backgrounds photos/

Same arguments and seed give byte-identical output, sharded or not; an interrupted build resumes
where it stopped (run the same command again). Writes DIR/contact_sheet.png when the dataset is
complete.
"""

from __future__ import annotations

import argparse

from data_tools.image.preprocess import CROP_MODES, DEFAULT_CROP_RULE
from data_tools.render.camera_effects import EFFECT_PROBABILITIES
from data_tools.render.plan import APPEARANCE_FACTORS
from data_tools.render.viewpoints import BOX_JITTER
from posenet_mlvae.commands.options import add_workers_argument, resolve_workers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--category", default="car", choices=("car", "chair"))
    parser.add_argument("--instances", type=int, default=500,
                        help="object instances (groups); with --meshes at most this many files (0 = all)")
    parser.add_argument("--views", type=int, default=24, help="images per instance")
    parser.add_argument("--size", type=int, default=64, choices=(64, 128, 224), help="image side in pixels")
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset folder (created or resumed)")
    parser.add_argument("--distribution", default="pascal", choices=("pascal", "uniform", "grid"),
                        help="viewpoint distribution: PASCAL3D+-like, uniform on the sphere, or Cars3D's 24x4 grid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--splits", type=float, nargs=3, default=(0.8, 0.1, 0.1),
                        metavar=("TRAIN", "VAL", "TEST"), help="fractions of INSTANCES per split")
    parser.add_argument("--backgrounds", metavar="DIR", default=None,
                        help="folder of photos to crop backgrounds from (default: procedural only)")
    parser.add_argument("--meshes", metavar="DIR_OR_GLOB", default=None,
                        help="render these mesh files (OBJ, GLB/glTF, OFF, PLY) instead of procedural ones")
    parser.add_argument("--axes", default="pascal",
                        help="axis convention of --meshes: pascal, shapenet-v1, shapenet-v2, gltf or 'up=+y,front=-z'")
    parser.add_argument("--supersample", type=int, default=2, choices=(1, 2, 3, 4),
                        help="anti-aliasing: draw at k x size and average down (1 = off)")
    parser.add_argument("--shard", type=int, default=0, help="which shard to build (0-based)")
    parser.add_argument("--num-shards", type=int, default=1, help="number of shards of the whole build")
    parser.add_argument("--merge", action="store_true",
                        help="only join the finished shards into DIR/records.csv and manifest.json "
                             "(with --num-shards > 1: build --shard first, then merge)")
    add_workers_argument(parser, "rendering processes")
    parser.add_argument("--instances-per-chunk", type=int, default=0,
                        help="instances per resumable chunk (0 = about 512 images per chunk)")
    parser.add_argument("--crop-mode", default=DEFAULT_CROP_RULE.mode, choices=CROP_MODES,
                        help="the crop rule's mode (the same rule `pascal3d` crops and `predict` applies): "
                             f"pad (square around the box) or stretch; default {DEFAULT_CROP_RULE.mode}")
    parser.add_argument("--crop-margin", type=float, default=DEFAULT_CROP_RULE.margin,
                        help="the crop rule's margin around the object box, a fraction of its side "
                             f"(default {DEFAULT_CROP_RULE.margin:g})")
    parser.add_argument("--appearance-off", action="append", default=[], choices=APPEARANCE_FACTORS,
                        metavar="FACTOR",
                        help="switch an appearance factor off (repeatable, for ablations): "
                             + ", ".join(APPEARANCE_FACTORS))
    parser.add_argument("--small-objects", type=float, default=EFFECT_PROBABILITIES["low_resolution"], metavar="P",
                        help="share of the views drawn as the crop of a small object in a photo: shrunk 1.5-4x "
                             "and upscaled back, as the crop rule upscales a small box (camera factor; "
                             f"default {EFFECT_PROBABILITIES['low_resolution']:g}, 0 = none)")
    parser.add_argument("--box-jitter", type=float, default=BOX_JITTER, metavar="S",
                        help="standard deviation of each box side's shift, a fraction of the box side, for the "
                             "80 %% of views whose box fits the object closely (RenderForCNN's outliers keep "
                             f"0.1); default {BOX_JITTER:g}")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def print_summary(summary: dict) -> None:
    """The final summary: images, instances per split, seconds, images/s."""
    splits = summary["instances_per_split"]
    print(f"rendered {summary['images']} images of {sum(splits.values())} instances "
          f"(train {splits['train']}, val {splits['val']}, test {splits['test']}) in "
          f"{summary['seconds']:.1f} s = {summary['images_per_second']:.0f} images/s; "
          f"chunks built {summary['chunks_built']}, already done {summary['chunks_skipped']}, "
          f"total {summary['chunks_total']}")
    if summary["skipped_meshes"]:
        print(f"skipped {summary['skipped_meshes']} broken mesh files")
    if summary["skipped_backgrounds"]:
        print(f"skipped {summary['skipped_backgrounds']} unreadable background images")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from data_tools.image.contact_sheet import dataset_contact_sheet, write_png
    from data_tools.render.build import build_synthetic
    from data_tools.render.plan import SyntheticConfig

    workers = resolve_workers(args.workers)
    merge_only = args.merge and args.num_shards == 1
    try:
        config = SyntheticConfig(
            category=args.category, instances=args.instances, views=args.views, size=args.size,
            distribution=args.distribution, splits=tuple(args.splits), seed=args.seed,
            backgrounds=args.backgrounds, meshes=args.meshes, axes=args.axes,
            supersample=args.supersample, instances_per_chunk=args.instances_per_chunk,
            crop_mode=args.crop_mode, crop_margin=args.crop_margin,
            appearance_off=tuple(args.appearance_off), small_objects=args.small_objects,
            box_jitter=args.box_jitter)
        summary = build_synthetic(
            config, Path(args.out), shard=args.shard, num_shards=args.num_shards,
            progress=not args.no_progress, workers=workers, merge=args.merge or args.num_shards == 1,
            build=not merge_only, report=lambda line: print(line, file=sys.stderr))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print_summary(summary)
    if summary["merged"]:
        sheet = write_png(Path(args.out) / "contact_sheet.png", dataset_contact_sheet(Path(args.out)))
        print(f"dataset: {args.out} (contact sheet {sheet})")
    elif summary["chunks_total"]:
        print(f"shard {args.shard} of {args.num_shards} done; join all shards with --merge")
    nothing_usable = summary["chunks_built"] > 0 and summary["images"] == 0
    return 1 if nothing_usable else 0
