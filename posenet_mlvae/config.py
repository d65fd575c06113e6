"""Frozen, one-level configuration objects for the model, the training run and the data.

`ModelConfig` is also what a checkpoint stores to rebuild the network (as nanoGPT's GPTConfig);
all three are saved as JSON beside the weights (`config.json`) and read back with `from_dict`.
Defaults are the demo settings: a 64 px conv ML-VAE trained for minutes on two CPU cores.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from data_tools.atomic_write import atomic_write_json

VARIANTS = ("mlvae", "vae", "direct")
DECODE_FROM = ("group", "others")
BACKBONES = ("conv", "resnet18", "resnet34")
POSE_INPUT_NORMS = ("fixed", "image", "channel")
#: ModelConfig.zoom_average must lie in [0, MAX_ZOOM_AVERAGE).
MAX_ZOOM_AVERAGE = 0.5


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network.

    variant: "mlvae" (group evidence accumulation, the product), "vae" (same encoder/decoder,
        one content latent per image: the baseline), "direct" (encoder + pose head only, no
        decoder or KL: a plain CNN regressor baseline).
    backbone: "conv" (small conv net for 64 or 128 px) or "resnet18"/"resnet34" (torchvision).
    imagenet_weights: path to a local torchvision ResNet state dict ("" = random init); only
        read when the model is first built for training, never downloaded.
    decode_from: in training, each member is decoded from a sample of "group" (the product of all
        its group's content posteriors, the ML-VAE of the paper) or "others" (the product of its
        group-mates' posteriors only, leave-one-out; a group of one uses its own), which makes the
        content a view-invariant description of the instance. Test time always uses the means.
    pose_input_norm: how the pose trunk's input is normalised: "fixed" (ImageNet mean and std,
        the same for every image), "image" (each image by its own mean and std over pixels and
        channels: blind to exposure and contrast) or "channel" (each colour channel by its own:
        also blind to a colour cast). A separate content encoder (content_width > 0) always reads
        the "fixed" input, since an instance's colours are part of its identity. "image" is the
        default: our renders are darker and flatter than photographs (median luminance 0.32 vs
        0.40 on sim2real_dev's crops, luminance std 0.14 vs 0.20), and at 3000 steps on the
        demo's renders, seeds 0 / 1, it scored 4.43 / 4.34 deg on unseen renders against 4.60 /
        4.71 with "fixed", and 23 / 33 front/rear flips on sim2real_dev against 34 / 58 ("channel":
        4.47 / 4.35 deg, 41 / 29 flips). In the whole demo at seeds 0 / 1 / 2 it scored the same
        on cars (crops 6.64 against 6.56 deg on average, renders 3.88 against 3.85) and better on
        chairs (5.43 against 5.98 deg, seed 0). Stored configs without the field keep "fixed".
    mirror_average: at test time (evaluation, validation, the exported model) each pose averages
        the image's with its horizontal mirror's by the flip rule (posenet_mlvae.network.pose_head). Right
        for left-right symmetric objects (cars, chairs); `train` turns it off with --no-flip or
        --asymmetric-categories.
    zoom_average: z > 0: at test time (validation, evaluation, the exported model) each pose also
        averages the image zoomed about its centre by 1 - z and 1 + z (with their mirrors when
        mirror_average), as views of the same object framed a little differently
        (posenet_mlvae.inference.averaged_views); 0 = off. 0.1 is the default: on the same
        checkpoints (six car models: demos and 3000-step runs at several seeds) it lowered the
        sim2real_dev MedErr by 0.26 deg on average (five of six lower, by 0.09-0.67 deg; one 0.15
        deg higher), raised its Acc@pi/18 for all six (by 1.3-5.6 points) and left the front/rear
        flips where they were; the car renders' MedErr fell by 0.08 deg on average and the chair
        demos' by 0.19 and 0.22 deg (README, model section). It runs the encoder on six views
        instead of two: ONNX Runtime's CPU latency at batch 1 goes from 0.7 to 1.35 ms. Stored
        configs without the field keep 0; `evaluate`, `bench sim2real` and `export` take
        --zoom-average to override any checkpoint's.
    recon_downsample: the decoder reconstructs the image area-downsampled by this factor (a power
        of two; 1 = full size; image_size / factor >= 16), and the likelihood is that of the
        downsampled image (losses.reconstruction_sse). 2 (64 px images: a 32 px reconstruction)
        is the default: measured on the demo's renders at 1500 steps, seeds 0 / 1, it keeps the
        pose (unseen renders 6.50 / 7.28 deg vs 6.71 / 7.26 at full size; sim2real_dev 10.00 /
        14.64 vs 9.56 / 15.77) and identity retrieval (24.0 / 20.4 % vs 20.7 / 22.2 %) in 0.71-0.82x
        the training time. Checkpoints from before the option reconstruct at full size
        (`model_config_from_dict`).
    content_downsample: the separate content encoder (content_width > 0) reads the image
        area-downsampled by this factor (1 or 2): a cheaper encoder for what is a whole-object
        description (shape, colours, livery). Off by default: at 1500 steps, seeds 0 / 1, it kept
        the pose (unseen renders 6.93 / 6.91 deg) in 0.89x the step time, but identified
        instances worse (16.8 / 19.9 % from one view against 24.0 / 20.4 %).
    content_dim is small (8) on purpose: the group objective charges the content KL once per
    group, so a wide content latent also soaks up per-view detail (the average over a group of
    per-image codes can superpose several views); with 8 dimensions an MLP probe recovers the
    viewpoint from the content latent at 62-69 deg MedErr (near chance, 93) vs 49-57 with 32.
    """

    variant: str = "mlvae"
    backbone: str = "conv"
    image_size: int = 64
    width: int = 16  # channels of the first conv layer; doubles per stride-2 stage
    decoder_width: int = 8  # channels of the decoder's last hidden layer (doubling toward its input)
    recon_downsample: int = 2  # reconstruct the image downsampled by this factor (see the class docstring)
    content_downsample: int = 1  # the content encoder sees the image area-downsampled by this factor (1 or 2)
    content_width: int = 8  # > 0: the content posterior gets its own small conv encoder of this width
    obs_dim: int = 16  # observation (style) latent: carries the viewpoint
    content_dim: int = 8  # group (content) latent: carries the instance identity (small: see config docs)
    hidden_dim: int = 256  # encoder feature and pose-head hidden width
    azimuth_bins: int = 24
    imagenet_weights: str = ""
    decode_from: str = "group"
    pose_input_norm: str = "image"
    mirror_average: bool = True
    zoom_average: float = 0.1

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"ModelConfig.variant={self.variant!r}; choose one of {VARIANTS}")
        if self.decode_from not in DECODE_FROM:
            raise ValueError(f"ModelConfig.decode_from={self.decode_from!r}; choose one of {DECODE_FROM}")
        if self.pose_input_norm not in POSE_INPUT_NORMS:
            raise ValueError(f"ModelConfig.pose_input_norm={self.pose_input_norm!r}; choose one of {POSE_INPUT_NORMS}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"ModelConfig.backbone={self.backbone!r}; choose one of {BACKBONES}")
        for name in ("width", "obs_dim", "content_dim", "hidden_dim", "decoder_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name}={getattr(self, name)} must be >= 1")
        if self.content_width < 0:
            raise ValueError(f"ModelConfig.content_width={self.content_width} must be >= 0 (0 = none)")
        problem = image_size_problem(self)
        if problem:
            raise ValueError(f"ModelConfig.image_size={self.image_size} {problem}; sizes that work: "
                             f"{working_image_sizes(self)}")
        if self.azimuth_bins < 4:
            raise ValueError(f"ModelConfig.azimuth_bins={self.azimuth_bins} must be >= 4")
        if not 0.0 <= self.zoom_average < MAX_ZOOM_AVERAGE:
            raise ValueError(f"ModelConfig.zoom_average={self.zoom_average} must be in [0, {MAX_ZOOM_AVERAGE}) (0 = off)")
        if self.content_downsample not in (1, 2):
            raise ValueError(f"ModelConfig.content_downsample={self.content_downsample} must be 1 or 2")
        factor = self.recon_downsample
        if factor < 1 or factor & (factor - 1) or self.image_size // factor < 16:
            raise ValueError(f"ModelConfig.recon_downsample={factor} must be a power of two (1 = full size) "
                             f"that leaves at least 16 px of image_size={self.image_size}")

    @property
    def reconstruction_size(self) -> int:
        """Side of the decoder's output in pixels."""
        return self.image_size // self.recon_downsample


def _decoder_size(size: int) -> bool:
    """The conv decoder doubles 4 px up to 64 x 2^k px."""
    return size >= 64 and size % 64 == 0 and (size // 64) & (size // 64 - 1) == 0


def image_size_problem(config: ModelConfig) -> str:
    """Why `config.image_size` cannot be built with its backbone, variant and content encoder
    ("" when it can): the conv encoders take 64 or 128 px, ResNets a multiple of 32, and the
    decoder of the generative variants draws 64 x 2^k px."""
    size, generative = config.image_size, config.variant != "direct"
    if config.backbone == "conv" and size not in (64, 128):
        return "does not fit backbone 'conv' (64 or 128 px only)"
    if size < 32 or size % 32:
        return f"does not fit backbone {config.backbone!r} (a multiple of 32 px)"
    if generative and config.content_width > 0 and size not in (64, 128):
        return (f"does not fit the content encoder (ModelConfig.content_width={config.content_width}: "
                "a conv net of 64 or 128 px)")
    if generative and not _decoder_size(size):
        return f"does not fit the decoder of variant {config.variant!r} (64 x 2^k px)"
    return ""


def working_image_sizes(config: ModelConfig) -> str:
    """The image sizes that `config`'s backbone and variant can use, with what would widen them."""
    if config.backbone == "conv":
        return "64 or 128 (or another size with ModelConfig.backbone='resnet18')"
    if config.variant == "direct":
        return "any multiple of 32"
    alternatives = "any multiple of 32 with ModelConfig.variant='direct'"
    if config.content_width > 0:
        return f"64 or 128 (256, 512, ... with ModelConfig.content_width=0; {alternatives})"
    return f"64, 128, 256, 512, ... (64 x 2^k; {alternatives})"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and loss weights. Length: `steps` > 0, else `epochs` > 0, else `time_budget_min`.

    The loss is  -ELBO / mean group size + lambda_pose * pose  (see `losses.mlvae_loss`). The
    defaults were chosen on 300 procedural cars x 24 views at 64 px, 1000-step runs on 2 CPU cores:
    lambda_pose / recon_weight = 300 lets the pose head learn about as fast as a pose-only
    regressor (ratio 30: 49 deg MedErr after 360 steps; 300: 10 deg; pose-only: 9.5 deg).
    lambda_contrast adds a contrastive term that makes a single view's content code identify its
    instance; lambda_contrast=0 is the paper's objective. Measured on the demo's renders, 1000
    steps, seeds 0 and 1: unseen-render MedErr 7.76 / 8.52 deg with the term (1000) against
    7.81 / 8.48 without, identity top-1 from one view 18.6 / 18.1 % against 2.5 / 2.1 %.
    """

    groups_per_batch: int = 16  # K
    views_per_group: int = 4  # M
    steps: int = 0
    epochs: int = 0
    time_budget_min: float = 0.0
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 150
    min_lr_ratio: float = 0.02  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 5.0
    recon_weight: float = 10.0  # multiplies the per-image sum of squared pixel errors (= 1/(2 sigma^2))
    background_weight: float = 0.05  # pixel weight outside the object mask (1 = whole image alike)
    beta_obs: float = 1.0
    beta_content: float = 1.0
    lambda_pose: float = 3000.0
    lambda_contrast: float = 1000.0  # contrastive term on the content means (losses.content_contrast); 0 = the paper's ML-VAE
    contrast_temperature: float = 1.0  # the term's similarity is -squared distance / temperature
    kl_warmup_steps: int = 0  # linear KL warm-up from 0 to beta over this many steps
    azimuth_smoothing: float = 0.2  # label mass moved to the two neighbouring azimuth bins
    azimuth_offset_bins: int = 3  # in-bin offsets trained per image: 3 = the true bin and its neighbours, 1 = the true bin
    ema_decay: float = 0.0  # > 0: validate and save an EMA of the weights with this decay per step (training.weight_average)
    seed: int = 0
    amp: bool = True  # float16 autocast + GradScaler on CUDA, bfloat16 autocast on a CPU with AMX (train.autocast_dtype)
    compile: bool = False  # torch.compile the forward pass and loss (train.forward_loss): faster steps after a one-off compile
    num_threads: int = 0  # torch intra-op threads; 0 = torch's default
    val_max_images: int = 4096  # validation subset size (whole groups, deterministic)
    checkpoint_every_steps: int = 500
    validate_every_steps: int = 0  # > 0: skip an epoch end's validation until this many steps since the last
    init_checkpoint: str = ""  # weights that started this run (fine-tuning); "" = random init
    label_fraction: float = 1.0  # share of the labelled training groups that keep their labels (training.labels)
    labelled_share: float = 0.5  # labelled groups are repeated to fill about this share of a batch (0.25: 2x the error at 10 % labels)

    def __post_init__(self) -> None:
        for name in ("groups_per_batch", "views_per_group", "checkpoint_every_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)} must be >= 1")
        for name in ("steps", "epochs", "time_budget_min", "warmup_steps", "kl_warmup_steps",
                     "weight_decay", "recon_weight", "background_weight", "beta_obs", "beta_content",
                     "lambda_pose", "lambda_contrast", "num_threads", "val_max_images", "validate_every_steps"):
            if getattr(self, name) < 0:  # NaN passes: tests inject it to check the non-finite stop
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)} must be >= 0")
        for name in ("lr", "grad_clip", "contrast_temperature"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)} must be > 0")
        for name in ("min_lr_ratio", "azimuth_smoothing"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)} must be in [0, 1]")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"TrainConfig.ema_decay={self.ema_decay} must be in [0, 1) (0 = no weight average)")
        if self.azimuth_offset_bins not in (1, 3):
            raise ValueError(f"TrainConfig.azimuth_offset_bins={self.azimuth_offset_bins} must be 1 or 3")
        if not 0.0 < self.label_fraction <= 1.0:
            raise ValueError(f"TrainConfig.label_fraction={self.label_fraction} must be in (0, 1]")
        if not 0.0 <= self.labelled_share < 1.0:
            raise ValueError(f"TrainConfig.labelled_share={self.labelled_share} must be in [0, 1)")


@dataclass(frozen=True)
class DataConfig:
    """Which grouped datasets to read and how to augment them (label-preserving only).

    No zoom or shift by default: renders are already the crop rule's cut around a jittered box
    (RenderForCNN-style), as `pascal3d --jitter` training crops are, and test crops are cut by
    the same rule, so a second framing jitter only teaches framings no test image has. Measured
    at 2000 steps on the demo's renders, seeds 0 / 1: unseen renders 5.09 / 5.11 deg without it
    against 5.36 / 5.67 with zoom 0.08 and shift 0.05; sim2real_dev 7.46 / 8.42 against 8.90 / 9.60.
    """

    data_dirs: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # empty = all categories in the datasets
    train_split: str = "train"
    val_split: str = "val"
    hflip: bool = True
    asymmetric_categories: tuple[str, ...] = ()  # never flipped: flipping would change the object
    color_jitter: float = 0.2  # brightness/contrast/saturation factors in [1-j, 1+j]
    grayscale: float = 0.0  # probability that a group's images turn grey (for grey cameras)
    random_conv: float = 0.25  # probability that the pose trunk reads a group's images through a random convolution
    scale_jitter: float = 0.0  # zoom factor in [1-s, 1+s] (off: see the class docstring)
    shift_jitter: float = 0.0  # translation as a fraction of the image side

    def __post_init__(self) -> None:
        for name in ("color_jitter", "scale_jitter", "shift_jitter"):
            value = getattr(self, name)
            if not 0.0 <= value < 0.5:
                raise ValueError(f"DataConfig.{name}={value} must be in [0, 0.5)")
        if not 0.0 <= self.grayscale <= 1.0:
            raise ValueError(f"DataConfig.grayscale={self.grayscale} must be in [0, 1]")
        if not 0.0 <= self.random_conv <= 1.0:
            raise ValueError(f"DataConfig.random_conv={self.random_conv} must be in [0, 1]")


C = TypeVar("C", ModelConfig, TrainConfig, DataConfig)


def to_dict(config: ModelConfig | TrainConfig | DataConfig) -> dict[str, Any]:
    """Plain JSON-able dict (tuples become lists)."""
    out = dataclasses.asdict(config)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a config from `to_dict` output; unknown keys raise (a stale or foreign file)."""
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {unknown}; known keys are {sorted(names)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """`from_dict` for a stored ModelConfig (checkpoint, ONNX metadata). Options added since keep
    the stored model's behaviour: a config without `recon_downsample` reconstructed at full size,
    one without `content_downsample` encoded the content at full size, one without
    `pose_input_norm` normalised by fixed statistics, one without `zoom_average` averaged no zooms."""
    return from_dict(ModelConfig, {"recon_downsample": 1, "content_downsample": 1, "pose_input_norm": "fixed",
                                   "zoom_average": 0.0, **data})


def save_configs(path: str | Path, model: ModelConfig, train: TrainConfig, data: DataConfig,
                 extra: dict[str, Any] | None = None) -> None:
    """Write {"model":..., "train":..., "data":..., **extra} as JSON atomically and durably."""
    payload = {"model": to_dict(model), "train": to_dict(train), "data": to_dict(data)}
    payload.update(extra or {})
    atomic_write_json(path, payload, sort_keys=True)


def load_configs(path: str | Path) -> tuple[ModelConfig, TrainConfig, DataConfig]:
    """Read the three configs written by `save_configs`. A run saved before `random_conv` existed
    trained without it, and resumes so."""
    payload = json.loads(Path(path).read_text())
    return (model_config_from_dict(payload["model"]), from_dict(TrainConfig, payload["train"]),
            from_dict(DataConfig, {"random_conv": 0.0, **payload["data"]}))
