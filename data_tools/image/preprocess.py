"""Image preprocessing shared by training, evaluation, PASCAL3D+ crops and the ONNX predictor.

The model's input contract, also written into every exported ONNX model's metadata:
float32 (N, 3, H, W), RGB, values uint8 / 255 in [0, 1]. Any further normalisation happens inside
the model, so an app in any language only crops, resizes and divides by 255. numpy + OpenCV only:
no torch on this path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

CROP_MODES = ("pad", "stretch")
#: Human-readable contract, stored in the ONNX metadata and the README.
INPUT_CONTRACT = "float32 NCHW RGB, pixel/255 in [0,1]; normalisation is inside the model"


#: Largest image (width x height) decoded by default: 100 megapixels (a 12,000 x 8,000 photo
#: is 96 MP; decoded as 16-bit RGBA that is 800 MB). Raise it with the environment variable
#: below, the `max_pixels` argument, or `posenet-mlvae predict --max-image-pixels`.
DEFAULT_MAX_IMAGE_PIXELS = 100_000_000
MAX_IMAGE_PIXELS_ENV = "POSENET_MLVAE_MAX_IMAGE_PIXELS"
#: Bytes a file may have per allowed pixel (uncompressed 16-bit RGBA) plus room for metadata.
_BYTES_PER_PIXEL, _METADATA_BYTES = 8, 64 * 2**20


def max_image_pixels(override: int | None = None) -> int:
    """The decode limit in pixels: `override`, else $POSENET_MLVAE_MAX_IMAGE_PIXELS, else 100 MP."""
    import os

    if override is not None:
        value, origin = override, "max_pixels"
    elif os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip():
        text, origin = os.environ[MAX_IMAGE_PIXELS_ENV].strip(), MAX_IMAGE_PIXELS_ENV
        try:
            value = int(float(text))
        except ValueError:
            raise ValueError(f"{MAX_IMAGE_PIXELS_ENV}={text!r} is not a number of pixels, "
                             "e.g. 200000000") from None
    else:
        return DEFAULT_MAX_IMAGE_PIXELS
    if int(value) != value or value < 1:
        raise ValueError(f"{origin}={value!r} must be a positive whole number of pixels")
    return int(value)


def load_image_rgb(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as uint8 (H, W, 3) RGB; grayscale, RGBA/palette and 16-bit are converted.

    The size is read from the file's header first (`data_tools.image.header`) and an image over
    `max_pixels` (default: `max_image_pixels()`, 100 MP) is refused before anything is decoded.
    Raises ValueError("<path>: <cause>") for a missing, unreadable, empty, truncated, corrupt,
    oversized or unknown-format file, so a batch can skip it with one line and go on.
    """
    import cv2

    from data_tools.image.header import ImageTooLarge, read_image_header

    path = Path(path)
    limit = max_image_pixels(max_pixels)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise ValueError(f"{path}: not a file")
        if size > limit * _BYTES_PER_PIXEL + _METADATA_BYTES:
            raise ValueError(f"{path}: {size / 1e6:.0f} MB is more than any image within the "
                             f"{limit:,}-pixel decode limit can take; {_limit_hint()}")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror or error})") from None
    try:
        header = read_image_header(data, max_pixels=limit)
    except ImageTooLarge as error:
        raise ValueError(f"{path}: {error}; {_limit_hint()}") from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:  # e.g. OpenCV's own size limit (OPENCV_IO_MAX_IMAGE_PIXELS)
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else "cv2.error"
        raise ValueError(f"{path}: OpenCV could not decode this {header.format} ({reason})") from None
    if image is None:
        raise ValueError(f"{path}: corrupt {header.format} data (OpenCV could not decode it)")
    return to_rgb_uint8(image, channel_order="bgr", name=str(path))


def _limit_hint() -> str:
    return (f"raise the limit with {MAX_IMAGE_PIXELS_ENV}=PIXELS (or `predict "
            "--max-image-pixels`) if the file is trusted")


def to_rgb_uint8(image: np.ndarray, channel_order: str = "rgb", name: str = "image") -> np.ndarray:
    """Convert gray (H, W) / (H, W, 1), RGB(A) or BGR(A), uint8 or uint16 or float, to uint8 RGB."""
    import cv2

    image = np.asarray(image)
    if channel_order not in ("rgb", "bgr"):
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"{name}: expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")
    if min(image.shape[:2]) == 0:
        raise ValueError(f"{name}: empty image of shape {image.shape}")
    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(image.dtype, np.floating):
        scale = 255.0 if image.max(initial=0.0) <= 1.0 else 1.0
        image = np.clip(image * scale + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ValueError(f"{name}: unsupported pixel type {image.dtype}; use uint8, uint16 or float")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        code = cv2.COLOR_BGRA2RGB if channel_order == "bgr" else cv2.COLOR_RGBA2RGB
        return cv2.cvtColor(image, code)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if channel_order == "bgr" else np.ascontiguousarray(image)


@dataclass(frozen=True)
class CropRule:
    """How an object box becomes the model's square input: one rule for renders, PASCAL3D+ crops,
    `predict` and the ONNX metadata, so a model sees objects framed the same way everywhere.

    mode: 'pad' cuts a square around the box centre (its longer side), replicating the image
    border where the square leaves the image; 'stretch' resizes the box anisotropically
    (RenderForCNN). margin: context added on each side, as a fraction of the box side.
    """

    mode: str = "pad"
    margin: float = 0.1

    def __post_init__(self) -> None:
        if self.mode not in CROP_MODES:
            raise ValueError(f"crop mode {self.mode!r} is not one of {CROP_MODES}")
        if not 0.0 <= float(self.margin) <= 2.0:
            raise ValueError(f"crop margin {self.margin} must be a fraction in [0, 2], e.g. 0.1")
        object.__setattr__(self, "margin", float(self.margin))

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "margin": self.margin}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "CropRule | None":
        """The rule stored by `to_json`, or None for data made before rules were recorded."""
        if not data:
            return None
        return cls(str(data["mode"]), float(data["margin"]))

    def describe(self) -> str:
        return f"{self.mode} with margin {self.margin:g}"


#: The default rule of `render`, `pascal3d`, `export` and `predict` (each can override it).
DEFAULT_CROP_RULE = CropRule()


def crop_box(box: Sequence[float], margin: float, mode: str) -> tuple[float, float, float, float]:
    """The region `crop_to_square` cuts: the box grown by `margin` of its side, squared for 'pad'."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    if mode == "pad":
        w = h = max(w, h)
    w, h = w * (1.0 + 2.0 * margin), h * (1.0 + 2.0 * margin)
    return cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0


def crop_to_square(image: np.ndarray, box: Sequence[float] | None = None, margin: float = 0.0,
                   mode: str = "pad", size: int = 64) -> np.ndarray:
    """Crop `box` from an RGB uint8 image and resize it to (size, size, 3).

    box: (x1, y1, x2, y2) in pixels, 0-based, x2/y2 exclusive; None = the whole image. The box
    grows by `margin` x its side on each side. mode 'pad' crops a square around the box centre
    (the longer side) and fills what lies outside the image by replicating its border; 'stretch'
    resizes the box anisotropically (RenderForCNN). INTER_AREA when shrinking, else INTER_LINEAR.
    The crop is one affine warp, so sub-pixel boxes are honoured exactly.
    """
    import cv2

    if mode not in CROP_MODES:
        raise ValueError(f"mode must be one of {CROP_MODES}, got {mode!r}")
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    height, width = image.shape[:2]
    if box is None:
        box = (0.0, 0.0, float(width), float(height))
    box = tuple(float(v) for v in box)
    if len(box) != 4 or not all(np.isfinite(box)):
        raise ValueError(f"box must be 4 finite numbers (x1, y1, x2, y2), got {box}")
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        raise ValueError(f"box {box} is empty: need x2 > x1 and y2 > y1")
    if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
        raise ValueError(f"box {box} lies outside the {width}x{height} image")
    cx1, cy1, cx2, cy2 = crop_box(box, margin, mode)
    sx, sy = size / (cx2 - cx1), size / (cy2 - cy1)
    # Map crop pixel centres to image pixel centres: x_img + 0.5 = cx1 + (x_out + 0.5) / sx.
    matrix = np.array([[sx, 0.0, -cx1 * sx + 0.5 * sx - 0.5], [0.0, sy, -cy1 * sy + 0.5 * sy - 0.5]])
    shrinking = min(sx, sy) < 1.0
    if shrinking:  # INTER_AREA is only honoured by resize: crop at full resolution first
        ix1, iy1 = int(np.floor(cx1)), int(np.floor(cy1))
        ix2, iy2 = int(np.ceil(cx2)), int(np.ceil(cy2))
        patch = cv2.copyMakeBorder(
            image[max(iy1, 0):min(iy2, height), max(ix1, 0):min(ix2, width)],
            max(-iy1, 0), max(iy2 - height, 0), max(-ix1, 0), max(ix2 - width, 0), cv2.BORDER_REPLICATE)
        if (ix1, iy1, ix2, iy2) == (cx1, cy1, cx2, cy2):
            return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
        patch = cv2.resize(patch, (max(1, round((ix2 - ix1) * sx)), max(1, round((iy2 - iy1) * sy))),
                           interpolation=cv2.INTER_AREA)
        psx, psy = patch.shape[1] / (ix2 - ix1), patch.shape[0] / (iy2 - iy1)
        matrix = np.array([[sx / psx, 0.0, (ix1 - cx1) * sx + 0.5 * sx / psx - 0.5],
                           [0.0, sy / psy, (iy1 - cy1) * sy + 0.5 * sy / psy - 0.5]])
        return cv2.warpAffine(patch, matrix, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) or (H, W, 3) RGB -> float32 (N, 3, H, W) in [0, 1], the model's input."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3) or (H, W, 3) RGB, got shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}; use to_rgb_uint8 first")
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)


__all__ = ["CROP_MODES", "DEFAULT_CROP_RULE", "DEFAULT_MAX_IMAGE_PIXELS", "INPUT_CONTRACT",
           "MAX_IMAGE_PIXELS_ENV", "max_image_pixels", "CropRule", "crop_box", "crop_to_square", "load_image_rgb",
           "to_model_input", "to_rgb_uint8"]
