"""`posenet-mlvae predict`: viewpoints of objects in images with an exported ONNX model.

    posenet-mlvae predict --model model.onnx car1.jpg car2.png [--box 10,20,200,150] [--json]
                          [--overlay out_dir] [--bgr]

Runs `export.runtime.PoseEstimator` (ONNX Runtime; no torch on this path). An unreadable image
or a bad box is reported on one line, skipped and counted; the exit code is non-zero only when
no image could be predicted.
"""

from __future__ import annotations

import argparse
import sys


def parse_box(text: str) -> tuple[float, float, float, float]:
    """'x1,y1,x2,y2' -> 4 floats (argparse type)."""
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"--box {text!r}: expected 4 numbers x1,y1,x2,y2 "
                                         "(pixels, x2/y2 exclusive), e.g. 10,20,200,150")
    return values  # type: ignore[return-value]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="ONNX file from `posenet-mlvae export`")
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files (any OpenCV format; .npy = an (H, W, 3) uint8 array)")
    parser.add_argument("--box", type=parse_box, action="append", default=None,
                        metavar="x1,y1,x2,y2",
                        help="object box in pixels; give it once for all images or once per image")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--overlay", metavar="DIR", default=None,
                        help="write IMAGE_pose.png with the predicted axes and 3-D box to DIR")
    parser.add_argument("--bgr", action="store_true",
                        help=".npy arrays store BGR (OpenCV order); image files are always "
                             "decoded as RGB")
    parser.add_argument("--providers", default=None,
                        help="comma-separated ONNX Runtime providers (default: GPU if present)")


def _load(estimator, path: str, color_order: str):
    import numpy as np

    if path.lower().endswith(".npy"):
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: not a readable .npy array ({error})") from None
        return estimator.load(array, color_order, name=path)
    return estimator.load(path)


def _write_overlay(directory: str, source: str, image, prediction, box, category) -> str:
    import cv2
    from pathlib import Path

    from data_tools.dataset import atomic_write_bytes
    from data_tools.draw import draw_pose, typical_extent

    drawn = draw_pose(image, prediction.azimuth, prediction.elevation, prediction.theta, box=box,
                      extent=typical_extent(category))
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{source}: OpenCV could not encode the overlay")
    out = Path(directory) / f"{Path(source).stem}_pose.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, encoded.tobytes())
    return str(out)


def run(args: argparse.Namespace) -> int:
    import json
    import logging

    import numpy as np

    from export.runtime import PoseEstimator

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    boxes = args.box or [None]
    if len(boxes) not in (1, len(args.images)):
        print(f"error: {len(boxes)} --box values for {len(args.images)} images; give one box "
              "for all images or one per image", file=sys.stderr)
        return 2
    boxes = boxes * len(args.images) if len(boxes) == 1 else boxes
    providers = args.providers.split(",") if args.providers else None
    try:
        estimator = PoseEstimator(args.model, providers=providers)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    color_order = "bgr" if args.bgr else "rgb"
    kept, batches, skipped = [], [], []
    for path, box in zip(args.images, boxes):
        try:
            image = _load(estimator, path, color_order)
            batch, _ = estimator.preprocess(image, None if box is None else [box],
                                            sources=[path])
        except (ValueError, TypeError) as error:
            message = str(error) if str(error).startswith(path) else f"{path}: {error}"
            print(f"skipped {message}", file=sys.stderr)
            skipped.append({"source": path, "error": message})
            continue
        kept.append((path, image, box))
        batches.append(batch)
    predictions = []
    if kept:
        predictions = estimator.predict_preprocessed(np.concatenate(batches),
                                                     [path for path, _, _ in kept])
    category = estimator.categories[0] if len(estimator.categories) == 1 else None
    overlays = {}
    if args.overlay:
        for (path, image, box), prediction in zip(kept, predictions):
            overlays[path] = _write_overlay(args.overlay, path, image, prediction, box, category)
    if args.json:
        rows = [{**p.to_dict(), **({"overlay": overlays[p.source]} if p.source in overlays else {})}
                for p in predictions]
        print(json.dumps({"model": str(args.model), "provider": estimator.provider,
                          "predictions": rows, "skipped": skipped}, indent=2))
    elif predictions:
        width = max([len("image")] + [len(p.source) for p in predictions])
        print(f"{'image':<{width}}  {'azimuth':>8}  {'elevation':>9}  {'theta':>7}  {'conf':>5}")
        for p in predictions:
            print(f"{p.source:<{width}}  {p.azimuth:8.1f}  {p.elevation:9.1f}  {p.theta:7.1f}  "
                  f"{p.confidence:5.2f}")
    print(f"predicted {len(predictions)} of {len(args.images)} images ({len(skipped)} skipped) "
          f"with {estimator.provider}" + (f"; overlays in {args.overlay}" if overlays else ""),
          file=sys.stderr)
    return 0 if predictions else 1
