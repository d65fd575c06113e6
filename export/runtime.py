"""The app-side pose predictor: an exported ONNX model run with ONNX Runtime, without torch.

Only onnxruntime, numpy, OpenCV and `data_tools` are imported, so an app can ship this file and
`export/model_files.py` with the .onnx model and nothing of the training stack. Preprocessing is
read from the model's metadata (`preprocessing_metadata` writes it at export) and done by the
same `data_tools.image.preprocess` functions that training and evaluation use:

    image (H, W, 3) uint8 RGB --crop_to_square(box, margin, mode, size)--> (size, size, 3) uint8
        --to_model_input--> float32 (N, 3, size, size) in [0, 1]     (the model normalises inside)

Example::

    from export.runtime import PoseEstimator
    estimator = PoseEstimator("model.onnx")          # logs which execution provider runs it
    [pred] = estimator.predict("car.jpg", boxes=(40, 60, 300, 220))
    print(pred.azimuth, pred.elevation, pred.theta, pred.confidence)
    group = estimator.predict_group(["front.jpg", "side.jpg", "rear.jpg"])  # views of ONE object
    print([p.azimuth for p in group.poses], group.content_mean)   # the instance embedding

One estimator may serve several threads at once (ONNX Runtime sessions are thread-safe and the
estimator keeps no state between calls). Angles come out wrapped: azimuth in [0, 360), theta in
(-180, 180]. Image files are checked against a pixel limit before decoding
(`data_tools.image.preprocess.max_image_pixels`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np

from data_tools.gaussians import product_of_gaussians
from data_tools.image import preprocess
from data_tools.geometry import wrap_azimuth, wrap_theta
from export.model_files import check_external_data

logger = logging.getLogger(__name__)

ImageInput = Union[str, os.PathLike, np.ndarray]

#: Graph outputs a pose model must have (angles in degrees, rotation (N, 3, 3), confidence (N,)).
POSE_OUTPUTS = ("azimuth", "elevation", "theta", "rotation", "confidence")

#: Each image's own content latent mean (N, D_c): the output is called so from model format 2
#: on (metadata `model_format_version`); format-1 models (no such key) called it `mu_group`,
#: and `PoseEstimator.run` returns theirs under the new name.
CONTENT_OUTPUT = "mu_content"
FORMAT_1_CONTENT_OUTPUT = "mu_group"
#: Each image's content latent log-variance (N, D_c), from model format 3 on: what
#: `PoseEstimator.predict_group` needs to weigh the views (precisions add).
CONTENT_LOGVAR_OUTPUT = "logvar_content"

#: Metadata keys the predictor reads; `preprocessing_metadata` writes them.
REQUIRED_METADATA = ("input_size", "color_order", "normalization", "crop_mode", "crop_margin")

#: The only normalisation the predictor applies (checked against the metadata, prefix match).
NORMALIZATION = "x/255 (model normalises inside)"

COLOR_ORDERS = ("rgb", "bgr")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
CPU_PROVIDER = "CPUExecutionProvider"


def preprocessing_metadata(image_size: int, crop_mode: str, crop_margin: float) -> dict[str, str]:
    """The metadata entries that tell any app (Python here, or C++ etc.) how to build the input.

    Written into the ONNX file at export; `PoseEstimator` reads exactly these keys back.
    """
    if crop_mode not in ("pad", "stretch"):
        raise ValueError(f"crop_mode must be 'pad' or 'stretch', got {crop_mode!r}")
    return {
        "input_name": "images",
        "input_layout": "NCHW float32, batch axis dynamic",
        "input_size": str(int(image_size)),
        "color_order": "RGB",
        "normalization": NORMALIZATION,
        "crop_mode": crop_mode,
        "crop_margin": repr(float(crop_margin)),
        "crop_rule": (
            f"box (x1, y1, x2, y2), pixels, 0-based, x2/y2 exclusive; whole image if none; "
            f"enlarge by crop_margin={float(crop_margin)} of the box side on each side; "
            + ("pad: square of the larger side around the box centre, outside-image pixels "
               "edge-replicated (cv2.BORDER_REPLICATE)" if crop_mode == "pad" else
               "stretch: resize the box anisotropically to a square")
            + f"; resize to {int(image_size)}x{int(image_size)} with cv2.INTER_AREA when "
            "shrinking, cv2.INTER_LINEAR when enlarging"
        ),
    }


@dataclass(frozen=True)
class PosePrediction:
    """One image's viewpoint in the PASCAL3D+ convention (DESIGN.md section 2), degrees.

    rotation is the object-to-camera matrix R = Rz(theta) Rx(elevation - 90) Rz(-azimuth), (3, 3).
    confidence is the model's own score in [0, 1]; source names the input (path or "array[i]").
    """

    azimuth: float
    elevation: float
    theta: float
    rotation: np.ndarray = field(compare=False, repr=False)
    confidence: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {"source": self.source, "azimuth": self.azimuth, "elevation": self.elevation,
                "theta": self.theta, "confidence": self.confidence,
                "rotation": np.asarray(self.rotation).tolist()}


@dataclass(frozen=True)
class GroupPrediction:
    """Several views of one object: each view's pose and the group's content posterior.

    content_mean / content_logvar (D_c,) are the product of the views' content Gaussians
    (precisions add), as the ML-VAE accumulates a group: an embedding of the instance that
    sharpens with every view (compare instances by Euclidean distance between means).
    """

    poses: list[PosePrediction]
    content_mean: np.ndarray = field(compare=False, repr=False)
    content_logvar: np.ndarray = field(compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"views": [p.to_dict() for p in self.poses],
                "content_mean": self.content_mean.tolist(), "content_logvar": self.content_logvar.tolist()}


def _cuda_device_count() -> int:
    """Number of CUDA devices seen by the driver (0 without driver or GPU), without torch."""
    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            driver = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    return 0


def choose_providers(available: Sequence[str], requested: Sequence[str] | None = None) -> list[str]:
    """Execution providers to ask for, best first, always ending with the CPU one.

    With `requested` None: TensorRT (when its libraries are found) and CUDA when this
    onnxruntime build has them and a GPU is present, then CPU. A requested provider that this
    build lacks is a ValueError listing the available ones.
    """
    if requested is not None:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ValueError(f"execution provider(s) {missing} not in this onnxruntime build; "
                             f"available: {list(available)} (install onnxruntime-gpu for CUDA)")
        return list(requested)
    chosen: list[str] = []
    if any(p in available for p in GPU_PROVIDERS) and _cuda_device_count() > 0:
        if "TensorrtExecutionProvider" in available and ctypes.util.find_library("nvinfer"):
            chosen.append("TensorrtExecutionProvider")
        if "CUDAExecutionProvider" in available:
            chosen.append("CUDAExecutionProvider")
    return chosen + [CPU_PROVIDER]


def create_session(model_path: str | os.PathLike, providers: Sequence[str] | None = None,
                   threads: int | None = None):
    """An ONNX Runtime session with full graph optimisation; clear ValueError for bad files.

    threads: intra-op threads (None: ONNX Runtime's default, one per physical core).
    """
    import onnxruntime

    path = Path(model_path)
    if not path.is_file():
        raise ValueError(f"{path}: no such model file; export one with `posenet-mlvae export`")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the model file is empty; export it again")
    check_external_data(path)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only; PoseEstimator logs the provider it got
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    chosen = choose_providers(onnxruntime.get_available_providers(), providers)
    try:
        return onnxruntime.InferenceSession(str(path), sess_options=options, providers=chosen)
    # ONNX Runtime's pybind errors (InvalidProtobuf, InvalidArgument, Fail, ...) share no base
    # class below Exception; each becomes one readable line naming the file.
    except Exception as error:  # noqa: BLE001
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        reason = reason.split("failed:", 1)[-1].strip()
        raise ValueError(f"{path}: not a loadable ONNX model ({reason}); the file may be "
                         "truncated or not an ONNX file: export it again") from None


def _as_list(images: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    if isinstance(images, (str, os.PathLike)):
        return [images]
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    return list(images)


def _as_boxes(boxes, count: int) -> list[Sequence[float] | None]:
    """One box (or None) per image; a single box is accepted for a single image."""
    if boxes is None:
        return [None] * count
    boxes = list(boxes) if not isinstance(boxes, np.ndarray) else list(boxes.tolist())
    if boxes and isinstance(boxes[0], (int, float, np.integer, np.floating)):
        if count != 1:
            raise ValueError(f"one box {boxes} was given for {count} images; pass one box (or "
                             "None) per image")
        boxes = [boxes]
    if len(boxes) != count:
        raise ValueError(f"got {len(boxes)} boxes for {count} images; pass one box (or None) "
                         "per image")
    return boxes


def _model_format_version(model_path: Path, metadata: dict[str, str]) -> int:
    """The exported graph's format version: metadata `model_format_version`, 1 when absent."""
    text = metadata.get("model_format_version", "1")
    if not text.isdigit():
        raise ValueError(f"{model_path}: metadata model_format_version {text!r} is not a whole "
                         "number; export the model again with `posenet-mlvae export`")
    return int(text)


class PoseEstimator:
    """Viewpoint of objects in images with an exported pose model (ONNX Runtime, no torch).

    Args:
        model_path: .onnx file written by `posenet-mlvae export` (its metadata says how to
            preprocess).
        providers: ONNX Runtime execution providers, e.g. ["CPUExecutionProvider"]. None picks
            TensorRT/CUDA when onnxruntime-gpu and a GPU are present, else CPU, and logs which.
        threads: intra-op CPU threads (None: one per physical core).
        max_image_pixels: largest image file decoded (width x height); None: the default of
            `data_tools.image.preprocess.max_image_pixels` (100 MP, or $POSENET_MLVAE_MAX_IMAGE_PIXELS).
    """

    def __init__(self, model_path: str | os.PathLike, providers: Sequence[str] | None = None,
                 threads: int | None = None, max_image_pixels: int | None = None):
        import onnxruntime

        self.model_path = Path(model_path)
        self.max_image_pixels = preprocess.max_image_pixels(max_image_pixels)
        self._requested = choose_providers(onnxruntime.get_available_providers(), providers)
        self.session = create_session(self.model_path, self._requested, threads)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        missing = [k for k in REQUIRED_METADATA if k not in self.metadata]
        if missing:
            raise ValueError(f"{self.model_path}: refused: the model's metadata lacks the "
                             f"preprocessing contract ({', '.join(missing)} missing), so its input "
                             "cannot be built as in training; export it with `posenet-mlvae "
                             "export`, which records it")
        self.image_size = int(self.metadata["input_size"])
        self.model_format_version = _model_format_version(self.model_path, self.metadata)
        self.crop_mode = self.metadata["crop_mode"]
        self.crop_margin = float(self.metadata["crop_margin"])
        if self.metadata["color_order"].upper() != "RGB":
            raise ValueError(f"{self.model_path}: color_order {self.metadata['color_order']!r} "
                             "is not supported; this predictor feeds RGB")
        if not self.metadata["normalization"].startswith("x/255"):
            raise ValueError(f"{self.model_path}: normalization {self.metadata['normalization']!r}"
                             f" is not supported; expected {NORMALIZATION!r}")
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        expected = [3, self.image_size, self.image_size]
        if list(model_input.shape[1:]) != expected:
            raise ValueError(f"{self.model_path}: input shape {model_input.shape} does not match "
                             f"the metadata input_size {self.image_size} (want [N, {expected}])")
        self.dynamic_batch = not isinstance(model_input.shape[0], int)
        outputs = [o.name for o in self.session.get_outputs()]
        absent = [name for name in POSE_OUTPUTS if name not in outputs]
        if absent:
            raise ValueError(f"{self.model_path}: graph outputs {outputs} lack {absent}; "
                             "this is not a pose model")
        self.categories = json.loads(self.metadata.get("categories", "[]"))
        self.provider = self.session.get_providers()[0]
        wanted = self._requested[0]
        if self.provider != wanted:
            logger.warning("ONNX Runtime runs %s on %s: %s could not start (see the ONNX Runtime "
                           "GPU requirements)", self.model_path.name, self.provider, wanted)
        else:
            logger.info("ONNX Runtime runs %s on %s", self.model_path.name, self.provider)

    def load(self, image: ImageInput, color_order: str = "rgb", name: str | None = None
             ) -> np.ndarray:
        """One input as an (H, W, 3) uint8 RGB array: a file path (read as RGB) or an array."""
        if color_order not in COLOR_ORDERS:
            raise ValueError(f"color_order must be one of {COLOR_ORDERS}, got {color_order!r}")
        if isinstance(image, (str, os.PathLike)):
            return preprocess.load_image_rgb(image, self.max_image_pixels)
        return preprocess.to_rgb_uint8(image, channel_order=color_order, name=name or "array")

    def preprocess(self, images: ImageInput | Sequence[ImageInput], boxes=None,
                   color_order: str = "rgb", sources: Sequence[str] | None = None
                   ) -> tuple[np.ndarray, list[str]]:
        """Model input float32 (N, 3, S, S) in [0, 1] and the source names, one per image.

        sources: names used in errors and results (default: the path, or "array[i]").
        """
        items = _as_list(images)
        if not items:
            raise ValueError("no images given")
        if sources is not None and len(sources) != len(items):
            raise ValueError(f"{len(sources)} source names for {len(items)} images")
        crops, names = [], []
        for index, (item, box) in enumerate(zip(items, _as_boxes(boxes, len(items)))):
            name = str(item) if isinstance(item, (str, os.PathLike)) else f"array[{index}]"
            name = name if sources is None else str(sources[index])
            rgb = self.load(item, color_order, name)
            try:
                crops.append(preprocess.crop_to_square(rgb, box=box, margin=self.crop_margin,
                                                       mode=self.crop_mode, size=self.image_size))
            except ValueError as error:  # a bad box: say which image it belongs to
                raise ValueError(f"{name}: {error}") from None
            names.append(name)
        return preprocess.to_model_input(np.stack(crops)), names

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Graph outputs by name for a preprocessed float32 batch (N, 3, S, S).

        azimuth is wrapped into [0, 360) and theta into (-180, 180] (DESIGN.md section 2), so
        no output of the runtime leaves those ranges whatever the graph computes. The content
        latent mean is `mu_content` for every model (a format-1 model's `mu_group`).
        """
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        names = [o.name for o in self.session.get_outputs()]
        if self.dynamic_batch:
            out = dict(zip(names, self.session.run(names, {self.input_name: batch})))
        else:
            parts = [self.session.run(names, {self.input_name: batch[i:i + 1]})
                     for i in range(len(batch))]
            out = {name: np.concatenate([p[k] for p in parts]) for k, name in enumerate(names)}
        out["azimuth"] = wrap_azimuth(out["azimuth"])
        out["theta"] = wrap_theta(out["theta"])
        if FORMAT_1_CONTENT_OUTPUT in out and CONTENT_OUTPUT not in out:
            out[CONTENT_OUTPUT] = out.pop(FORMAT_1_CONTENT_OUTPUT)
        return out

    def predict(self, images: ImageInput | Sequence[ImageInput], boxes=None,
                color_order: str = "rgb") -> list[PosePrediction]:
        """Viewpoints of the object in each image, in input order, run as one batch.

        Args:
            images: a file path, an image array, a (N, H, W, C) array, or a list of these; sizes
                may differ. Arrays are (H, W, 3) uint8 in `color_order` (RGB by default); grayscale
                (H, W), 4-channel (alpha dropped), uint16 and float in [0, 1] are converted by
                `data_tools.image.preprocess.to_rgb_uint8`. Files are always read as RGB.
            boxes: None (whole images), one box (x1, y1, x2, y2) for one image, or one box or
                None per image; pixels, 0-based, x2/y2 exclusive.
            color_order: "rgb" (default) or "bgr" for arrays from OpenCV (cv2.imread).

        Raises ValueError (one line naming the input) for unreadable files, bad arrays and boxes
        outside the image.
        """
        batch, names = self.preprocess(images, boxes, color_order)
        return self.predict_preprocessed(batch, names)

    def predict_group(self, images: ImageInput | Sequence[ImageInput], boxes=None,
                      color_order: str = "rgb") -> GroupPrediction:
        """Views of ONE object: each view's pose and the group's content posterior (numpy only).

        Arguments as `predict`. The content posterior is the product of the views' Gaussians
        (data_tools.gaussians.product_of_gaussians): the same for any order of the views, and a
        group of one is the image's own. ValueError for models without a content latent (variant
        "direct") or exported before model format 3 (no `logvar_content`: export it again).
        """
        batch, names = self.preprocess(images, boxes, color_order)
        return self.predict_group_preprocessed(batch, names)

    def predict_group_preprocessed(self, batch: np.ndarray, sources: Sequence[str]) -> GroupPrediction:
        """`predict_group` for a batch already made by `preprocess`."""
        self._check_content_outputs()
        out = self.run(batch)
        mean, logvar = product_of_gaussians(out[CONTENT_OUTPUT], out[CONTENT_LOGVAR_OUTPUT], axis=0)
        return GroupPrediction(self._poses(out, sources), mean, logvar)

    def content_posteriors(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each image's own content posterior (mean, log-variance), float32 (N, D_c) each; for
        left-right symmetric objects the model multiplies it with its mirror's."""
        self._check_content_outputs()
        out = self.run(batch)
        return out[CONTENT_OUTPUT], out[CONTENT_LOGVAR_OUTPUT]

    def _check_content_outputs(self) -> None:
        variant = json.loads(self.metadata.get("model_config", "{}")).get("variant")
        if variant == "direct":
            raise ValueError(f"{self.model_path}: a 'direct' model has no content latent, so it gives no "
                             "group embedding; train the ML-VAE (variant mlvae) for group inference")
        names = {o.name for o in self.session.get_outputs()}
        if CONTENT_LOGVAR_OUTPUT not in names:
            raise ValueError(f"{self.model_path}: model format {self.model_format_version} has no "
                             f"{CONTENT_LOGVAR_OUTPUT!r} output, which group inference needs; export it "
                             "again with `posenet-mlvae export` (format 3)")

    def predict_preprocessed(self, batch: np.ndarray, sources: Sequence[str]
                             ) -> list[PosePrediction]:
        """Predictions for a batch already made by `preprocess` (float32 (N, 3, S, S))."""
        return self._poses(self.run(batch), sources)

    def _poses(self, out: dict[str, np.ndarray], sources: Sequence[str]) -> list[PosePrediction]:
        """One `PosePrediction` per row of the graph outputs `out`."""
        if len(out["azimuth"]) != len(sources):
            raise ValueError(f"{len(out['azimuth'])} images but {len(sources)} source names")
        rotations = np.array(out["rotation"], dtype=np.float64)  # (N, 3, 3)
        rotations.setflags(write=False)  # the predictions are frozen, their matrices too
        return [
            PosePrediction(azimuth=float(out["azimuth"][i]), elevation=float(out["elevation"][i]),
                           theta=float(out["theta"][i]), rotation=rotations[i],
                           confidence=float(out["confidence"][i]), source=str(sources[i]))
            for i in range(len(sources))
        ]
