"""`posenet-mlvae predict`: viewpoints of objects in images with an exported ONNX model.

    posenet-mlvae predict --model model.onnx car1.jpg car2.png [--box 10,20,200,150]
    posenet-mlvae predict --model model.onnx photos/ --json > poses.jsonl   # a whole folder
    posenet-mlvae predict --model model.onnx --group car_views/ --json       # views of ONE object

Runs `export.runtime.PoseEstimator` (ONNX Runtime; no torch on this path). A folder stands for
its image files (recursively, sorted). Images are read, predicted and printed `--batch-size` at a
time, so memory stays flat over any number of files; --json prints one JSON object per line and
image (a prediction, or {"source", "error"} for a skipped one). An unreadable, oversized or
corrupt image or a bad box is reported on one line, skipped and counted; the exit code is
non-zero only when no image could be predicted.

--group treats all the images given as views of one object (PoseEstimator.predict_group): it
prints each view's pose and then the group's content posterior, the product of the views'
Gaussians, as an instance embedding (`content_mean`, `content_logvar`); the views are held
together in memory (64 px crops: 48 KB each).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterator, Sequence

NPY_SUFFIX = ".npy"


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


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from data_tools.image.preprocess import DEFAULT_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS_ENV

    parser.add_argument("--model", required=True, help="ONNX file from `posenet-mlvae export`")
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files or folders of them (PNG, JPEG, BMP, WebP, TIFF, GIF, "
                             "PNM; .npy = an (H, W, 3) uint8 array)")
    parser.add_argument("--box", type=parse_box, action="append", default=None,
                        metavar="x1,y1,x2,y2",
                        help="object box in pixels; give it once for all images or once per image")
    parser.add_argument("--json", action="store_true",
                        help="print JSON lines (one object per image) instead of a table")
    parser.add_argument("--overlay", metavar="DIR", default=None,
                        help="write IMAGE_pose.png with the predicted axes and 3-D box to DIR")
    parser.add_argument("--bgr", action="store_true",
                        help=".npy arrays store BGR (OpenCV order); image files are always "
                             "decoded as RGB")
    parser.add_argument("--providers", default=None,
                        help="comma-separated ONNX Runtime providers (default: GPU if present)")
    parser.add_argument("--batch-size", type=positive_int, default=32,
                        help="images read and run together (default 32)")
    parser.add_argument("--max-image-pixels", type=positive_int, default=None, metavar="PIXELS",
                        help="refuse image files larger than this, read from their header before "
                             f"decoding (default ${MAX_IMAGE_PIXELS_ENV} or "
                             f"{DEFAULT_MAX_IMAGE_PIXELS:,})")
    parser.add_argument("--group", action="store_true",
                        help="the images are views of ONE object: also print the group's content "
                             "posterior (instance embedding)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """The files to predict: each argument as given, a folder replaced by its image files.

    A folder contributes its files with an image or .npy suffix, recursively, sorted by path;
    anything else (a file, or a path that does not exist) is kept and reported when read.
    """
    from data_tools.image.header import IMAGE_SUFFIXES

    suffixes = set(IMAGE_SUFFIXES) | {NPY_SUFFIX}
    files: list[str] = []
    for item in inputs:
        folder = Path(item)
        if not folder.is_dir():
            files.append(item)
            continue
        found = sorted(str(p) for p in folder.rglob("*")
                       if p.suffix.lower() in suffixes and p.is_file())
        if not found:
            raise ValueError(f"IMAGE {item}: the folder holds no image files "
                             f"({', '.join(sorted(suffixes))})")
        files += found
    return files


def _load(estimator, path: str, color_order: str):
    """One input as an (H, W, 3) uint8 RGB image; ValueError naming the file when unusable."""
    import numpy as np

    if not path.lower().endswith(NPY_SUFFIX):
        return estimator.load(path)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)  # header only: no allocation yet
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable .npy array ({error})") from None
    pixels = int(np.prod(array.shape[:2])) if array.ndim >= 2 else 0
    if pixels > estimator.max_image_pixels:
        raise ValueError(f"{path}: array of shape {array.shape} is over the "
                         f"{estimator.max_image_pixels:,}-pixel decode limit (--max-image-pixels)")
    return estimator.load(np.array(array), color_order, name=path)


def _write_overlay(directory: str, source: str, image, prediction, box, category) -> str:
    import cv2

    from data_tools.atomic_write import atomic_write_bytes
    from data_tools.image.draw import draw_pose, typical_extent

    drawn = draw_pose(image, prediction.azimuth, prediction.elevation, prediction.theta, box=box,
                      extent=typical_extent(category))
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{source}: OpenCV could not encode the overlay")
    out = Path(directory) / f"{Path(source).stem}_pose.png"
    atomic_write_bytes(out, encoded.tobytes())
    return str(out)


def read_inputs(estimator, paths: Sequence[str], boxes: Sequence, color_order: str
                ) -> tuple[list[list], list]:
    """Rows [path, image, box, None, None] for each readable input and [path, None, box, None,
    message] for each skipped one, in input order, and the model input of each readable one."""
    rows, crops = [], []
    for path, box in zip(paths, boxes):
        try:
            image = _load(estimator, path, color_order)
            batch, _ = estimator.preprocess(image, None if box is None else [box], sources=[path])
        except (ValueError, TypeError) as error:
            message = str(error) if str(error).startswith(path) else f"{path}: {error}"
            rows.append([path, None, box, None, message])
            continue
        rows.append([path, image, box, None, None])
        crops.append(batch)
    return rows, crops


def predict_in_batches(estimator, paths: Sequence[str], boxes: Sequence, color_order: str,
                       batch_size: int) -> Iterator[list[tuple]]:
    """Per batch of inputs, in input order: (path, image, box, prediction, None) for each image
    predicted and (path, None, box, None, message) for each skipped one. Only one batch of
    images is held at a time."""
    import numpy as np

    for start in range(0, len(paths), batch_size):
        rows, crops = read_inputs(estimator, paths[start:start + batch_size], boxes[start:start + batch_size],
                                  color_order)
        if crops:
            kept = [row for row in rows if row[4] is None]
            predictions = estimator.predict_preprocessed(np.concatenate(crops),
                                                         [row[0] for row in kept])
            for row, prediction in zip(kept, predictions):
                row[3] = prediction
        yield [tuple(row) for row in rows]


class _NoBar:
    """Stands in for tqdm where it is not installed (it comes with the `train` extra)."""

    def update(self, count: int) -> None:
        pass

    def write(self, line: str, file=None) -> None:
        print(line, file=file)

    def close(self) -> None:
        pass


def progress_bar(total: int, enabled: bool):
    """A tqdm bar on stderr when tqdm is installed and `enabled`; otherwise no bar, lines only."""
    import importlib.util

    if not enabled or importlib.util.find_spec("tqdm") is None:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="image", file=sys.stderr, dynamic_ncols=True)


def run(args: argparse.Namespace) -> int:
    import json
    import logging

    from export.runtime import PoseEstimator

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    paths = expand_inputs(args.images)
    boxes = args.box or [None]
    if len(boxes) not in (1, len(paths)):
        raise ValueError(f"--box: {len(boxes)} boxes for {len(paths)} images; give one box for "
                         "all images or one per image")
    boxes = boxes * len(paths) if len(boxes) == 1 else boxes
    providers = args.providers.split(",") if args.providers else None
    estimator = PoseEstimator(args.model, providers=providers,
                              max_image_pixels=args.max_image_pixels)
    category = estimator.categories[0] if len(estimator.categories) == 1 else None
    if args.group:
        return predict_one_group(estimator, paths, boxes, "bgr" if args.bgr else "rgb", args.json)
    width = max(len("image"), *(len(p) for p in paths))
    if not args.json:
        print(f"{'image':<{width}}  {'azimuth':>8}  {'elevation':>9}  {'theta':>7}  {'conf':>5}")
    predicted = skipped = 0
    bar = progress_bar(len(paths), enabled=not args.no_progress and len(paths) > 1)
    for rows in predict_in_batches(estimator, paths, boxes, "bgr" if args.bgr else "rgb",
                                   args.batch_size):
        for path, image, box, prediction, error in rows:
            if error is not None:
                skipped += 1
                bar.write(f"skipped {error}", file=sys.stderr)
                if args.json:
                    print(json.dumps({"source": path, "error": error}))
                continue
            predicted += 1
            row = prediction.to_dict()
            if args.overlay:
                row["overlay"] = _write_overlay(args.overlay, path, image, prediction, box,
                                                category)
            if args.json:
                print(json.dumps(row))
            else:
                print(f"{path:<{width}}  {prediction.azimuth:8.1f}  {prediction.elevation:9.1f}  "
                      f"{prediction.theta:7.1f}  {prediction.confidence:5.2f}")
        sys.stdout.flush()
        bar.update(len(rows))
    bar.close()
    print(f"predicted {predicted} of {len(paths)} images ({skipped} skipped) with "
          f"{estimator.provider}" + (f"; overlays in {args.overlay}" if args.overlay else ""),
          file=sys.stderr)
    return 0 if predicted else 1


def predict_one_group(estimator, paths: Sequence[str], boxes: Sequence, color_order: str, as_json: bool) -> int:
    """`--group`: every readable input is a view of one object; print each view's pose, then the
    group's content posterior. Unreadable inputs are reported, skipped and counted."""
    import json

    import numpy as np

    rows, crops = read_inputs(estimator, paths, boxes, color_order)
    skipped = [row for row in rows if row[4] is not None]
    for row in skipped:
        print(f"skipped {row[4]}", file=sys.stderr)
        if as_json:
            print(json.dumps({"source": row[0], "error": row[4]}))
    if not crops:
        print(f"predicted no group: none of the {len(paths)} images could be read", file=sys.stderr)
        return 1
    group = estimator.predict_group_preprocessed(np.concatenate(crops), [r[0] for r in rows if r[4] is None])
    if as_json:
        print(json.dumps(group.to_dict()))
    else:
        width = max(len("image"), *(len(p.source) for p in group.poses))
        print(f"{'image':<{width}}  {'azimuth':>8}  {'elevation':>9}  {'theta':>7}  {'conf':>5}")
        for p in group.poses:
            print(f"{p.source:<{width}}  {p.azimuth:8.1f}  {p.elevation:9.1f}  {p.theta:7.1f}  {p.confidence:5.2f}")
        print("group content mean   " + " ".join(f"{v:+.3f}" for v in group.content_mean))
        print("group content logvar " + " ".join(f"{v:+.3f}" for v in group.content_logvar))
    print(f"predicted one group of {len(group.poses)} views ({len(skipped)} skipped) with {estimator.provider}",
          file=sys.stderr)
    return 0
