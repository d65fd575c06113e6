"""`posenet-mlvae image-folders`: a grouped dataset without pose labels from a folder per object.

    posenet-mlvae image-folders my_objects/ --out data/mine --category car [--boxes boxes.csv]
    posenet-mlvae train --data data/cars --data data/mine --label-fraction 0.1 --out runs/semi

Each sub-folder of the input (e.g. the frames of one video of an object) becomes one group of
split train with no pose labels: in training it feeds the ELBO, and the group latent, only.
Images are cut by the crop rule (--crop-mode, --crop-margin; default the render and pascal3d
rule, pad with margin 0.1) around their box from --boxes (CSV: file,x1,y1,x2,y2, file relative
to the input folder), else around the whole image. Unreadable images are reported, skipped and
counted. See data_tools/image_folders.py.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from data_tools.image.preprocess import CROP_MODES, DEFAULT_CROP_RULE

    parser.add_argument("root", metavar="DIR", help="folder with one sub-folder of images per object")
    parser.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write")
    parser.add_argument("--category", default="object", help="category of every object (default object)")
    parser.add_argument("--size", type=int, default=64, help="crop side in pixels (default 64)")
    parser.add_argument("--crop-mode", choices=CROP_MODES, default=DEFAULT_CROP_RULE.mode,
                        help=f"crop rule mode (default {DEFAULT_CROP_RULE.mode}, as render and pascal3d)")
    parser.add_argument("--crop-margin", type=float, default=DEFAULT_CROP_RULE.margin,
                        help=f"crop rule margin (default {DEFAULT_CROP_RULE.margin})")
    parser.add_argument("--boxes", default=None, metavar="CSV",
                        help="object boxes: CSV with columns file,x1,y1,x2,y2 (file relative to DIR)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from data_tools.image.preprocess import CropRule
    from data_tools.image_folders import build_from_image_folders

    if Path(args.out).exists() and any(Path(args.out).iterdir()):
        raise ValueError(f"--out {args.out} exists and is not empty; choose a new folder")
    result = build_from_image_folders(args.root, args.out, size=args.size, category=args.category,
                                      rule=CropRule(args.crop_mode, args.crop_margin), boxes_csv=args.boxes)
    print(f"wrote {result.root}: {result.groups} groups (objects), {result.images} images without pose labels "
          f"({len(result.skipped)} skipped)")
    return 0
