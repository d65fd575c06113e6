"""`posenet-mlvae train`: train the ML-VAE + pose head on grouped datasets.

    posenet-mlvae train --data /tmp/cars --out runs/cars --time-budget 7
    posenet-mlvae train --resume --out runs/cars                 # continue exactly from runs/cars/last.pt
    posenet-mlvae train --data /tmp/cars --data /tmp/p3d --init runs/cars/best.pt --out runs/ft --epochs 5
    torchrun --standalone --nproc_per_node=2 -m posenet_mlvae.cli train --data /tmp/cars --out runs/ddp --steps 2000

Flags left out keep the defaults of ModelConfig / TrainConfig / DataConfig (posenet_mlvae/config.py).
With --resume the run's saved config.json is used: only --steps/--epochs/--time-budget may
extend it, and any other flag given must repeat the run's value (a different one is an error
that lists every difference).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from pathlib import Path

from posenet_mlvae.commands.options import add_device_argument
from posenet_mlvae.config import (BACKBONES, DECODE_FROM, POSE_INPUT_NORMS, VARIANTS, DataConfig, ModelConfig,
                                  TrainConfig)

_SECTIONS = {"model": ModelConfig, "train": TrainConfig, "data": DataConfig}

# flag -> (config section, field, type, help); the help gets the field's real default appended.
_OPTIONS = [
    ("--variant", "model", "variant", str, "mlvae, vae (baseline: no groups) or direct (no decoder)"),
    ("--backbone", "model", "backbone", str, "conv (64 or 128 px), resnet18 or resnet34"),
    ("--image-size", "model", "image_size", int, "input size in px; the dataset must match"),
    ("--width", "model", "width", int, "conv channels of the first layer"),
    ("--obs-dim", "model", "obs_dim", int, "observation (pose) latent size"),
    ("--azimuth-bins", "model", "azimuth_bins", int, "azimuth classes of the pose head (360 / bins degrees each)"),
    ("--decoder-width", "model", "decoder_width", int, "channels of the decoder's last hidden layer"),
    ("--recon-downsample", "model", "recon_downsample", int,
     "reconstruct the image downsampled by this power of two (1 = full size): a cheaper step"),
    ("--content-downsample", "model", "content_downsample", int,
     "the content encoder reads the image downsampled by this factor (1 or 2): a cheaper step"),
    ("--content-width", "model", "content_width", int, "> 0: separate content conv encoder of this width"),
    ("--content-dim", "model", "content_dim", int, "content (identity) latent size"),
    ("--decode-from", "model", "decode_from", str,
     "group (ML-VAE: all members' evidence) or others (leave-one-out: group-mates' evidence only)"),
    ("--pose-input-norm", "model", "pose_input_norm", str,
     "the pose trunk's input normalisation: fixed (ImageNet statistics), image (each image's own mean "
     "and std) or channel (each channel's own)"),
    ("--zoom-average", "model", "zoom_average", float,
     "z > 0: at test time (validation, evaluation, the exported model) each pose also averages the image "
     "zoomed by 1 - z and 1 + z (0 = off)"),
    ("--imagenet-weights", "model", "imagenet_weights", str, "local torchvision ResNet .pth (never downloaded)"),
    ("--steps", "train", "steps", int, "optimizer steps"),
    ("--epochs", "train", "epochs", int, "epochs (one pass over every image), when --steps is not given"),
    ("--time-budget", "train", "time_budget_min", float, "minutes of training, when neither --steps nor --epochs"),
    ("--groups-per-batch", "train", "groups_per_batch", int, "K groups per batch"),
    ("--views-per-group", "train", "views_per_group", int, "M views per group"),
    ("--lr", "train", "lr", float, "peak AdamW learning rate"),
    ("--weight-decay", "train", "weight_decay", float, "AdamW weight decay"),
    ("--warmup-steps", "train", "warmup_steps", int, "linear LR warm-up steps"),
    ("--grad-clip", "train", "grad_clip", float, "gradient norm clip"),
    ("--ema-decay", "train", "ema_decay", float,
     "> 0: validate and save an exponential moving average of the weights with this decay per step (0 = off)"),
    ("--recon-weight", "train", "recon_weight", float, "weight of the summed squared pixel error"),
    ("--background-weight", "train", "background_weight", float,
     "reconstruction weight of pixels outside the object mask (datasets with masks; 1 = no masking)"),
    ("--beta-obs", "train", "beta_obs", float, "weight of the observation KL"),
    ("--beta-content", "train", "beta_content", float, "weight of the group content KL"),
    ("--lambda-pose", "train", "lambda_pose", float, "weight of the pose loss"),
    ("--content-contrast", "train", "lambda_contrast", float,
     "weight of a contrastive term pulling a group's content means together and other groups' apart "
     "(0 = the paper's ML-VAE objective)"),
    ("--contrast-temperature", "train", "contrast_temperature", float,
     "temperature of that term: its similarity is minus the squared distance over this"),
    ("--offset-bins", "train", "azimuth_offset_bins", int,
     "azimuth offsets trained per image: 3 = the true bin and its two neighbours, 1 = the true bin only"),
    ("--kl-warmup-steps", "train", "kl_warmup_steps", int, "linear KL warm-up steps (0 = off)"),
    ("--label-fraction", "train", "label_fraction", float,
     "keep pose labels on this fraction of the labelled training groups, chosen by --seed; the others "
     "train the ELBO only (semi-supervised)"),
    ("--labelled-share", "train", "labelled_share", float,
     "repeat the labelled groups until they fill about this share of the batches"),
    ("--seed", "train", "seed", int, "random seed"),
    ("--threads", "train", "num_threads", int, "torch CPU threads (0 = torch default)"),
    ("--val-max-images", "train", "val_max_images", int, "images used for validation each epoch"),
    ("--checkpoint-every", "train", "checkpoint_every_steps", int, "steps between last.pt checkpoints"),
    ("--validate-every", "train", "validate_every_steps", int,
     "validate at an epoch's end only once this many steps passed since the last validation (0 = every epoch)"),
    ("--color-jitter", "data", "color_jitter", float, "brightness/contrast/saturation jitter"),
    ("--grayscale", "data", "grayscale", float,
     "probability that a group's training images turn grey (for grey cameras; default 0)"),
    ("--random-conv", "data", "random_conv", float,
     "probability that the pose trunk reads a group's training images through a random convolution "
     "(colours and textures randomised, the shape kept; default 0.25, 0 = off)"),
    ("--scale-jitter", "data", "scale_jitter", float, "zoom jitter fraction"),
    ("--shift-jitter", "data", "shift_jitter", float, "shift jitter fraction of the side"),
]
_CHOICES = {"variant": VARIANTS, "backbone": BACKBONES, "decode_from": DECODE_FROM,
            "pose_input_norm": POSE_INPUT_NORMS}
_LENGTH_FIELDS = {"steps", "epochs", "time_budget_min"}  # may extend a resumed run


def _default(section: str, field: str):
    return next(f.default for f in fields(_SECTIONS[section]) if f.name == field)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", action="append", default=[], metavar="DIR",
                        help="grouped dataset directory (repeat to mix several)")
    parser.add_argument("--out", required=True, metavar="RUN", help="run folder (checkpoints, metrics, config)")
    parser.add_argument("--resume", action="store_true", help="continue RUN exactly from RUN/last.pt")
    parser.add_argument("--init", metavar="CKPT", help="start from these model weights (fine-tuning)")
    parser.add_argument("--categories", nargs="+", help="train on these categories only (default: all)")
    parser.add_argument("--no-flip", action="store_true", help="no horizontal-flip augmentation")
    parser.add_argument("--asymmetric-categories", nargs="+", default=None,
                        help="categories never flipped (not left-right symmetric)")
    parser.add_argument("--no-amp", action="store_true", help="train in float32: no float16 autocast on CUDA, "
                        "no bfloat16 autocast on a CPU with AMX")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the forward pass and loss: steps 1.1-1.2x as fast on a "
                        "2-core CPU after a one-off compilation of about a minute (worth it for runs of "
                        "7 minutes or more; without a C++ compiler the run goes on uncompiled)")
    add_device_argument(parser, default="auto")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    for flag, section, field, kind, text in _OPTIONS:
        default = _default(section, field)
        shown = repr(default) if default == "" else default
        parser.add_argument(flag, dest=field, type=kind, default=None, choices=_CHOICES.get(field),
                            metavar=None if field in _CHOICES else flag[2:].upper().replace("-", "_"),
                            help=f"{text} (default {shown})")


def flag_names(message: str) -> str:
    """A config error in CLI words: 'ModelConfig.image_size=224' -> '--image-size 224'."""
    flags = {f"{_SECTIONS[section].__name__}.{field}": flag for flag, section, field, _, _ in _OPTIONS}

    def spell(match: re.Match) -> str:
        name = f"{match.group(1)}.{match.group(2)}"
        return flags[name] + (" " if match.group(3) else "") if name in flags else match.group(0)

    return re.sub(r"\b(ModelConfig|TrainConfig|DataConfig)\.(\w+)(=?)", spell, message)


def _given_data_config(args: argparse.Namespace) -> dict:
    """The DataConfig / TrainConfig fields that the non-numeric flags given on the line set."""
    values: dict = {}
    if args.data:
        values["data_dirs"] = tuple(str(Path(d)) for d in args.data)
    if args.categories:
        values["categories"] = tuple(args.categories)
    if args.no_flip:
        values["hflip"] = False
    if args.asymmetric_categories:
        values["asymmetric_categories"] = tuple(args.asymmetric_categories)
    return values


def resume_conflicts(args: argparse.Namespace, model: ModelConfig, train: TrainConfig,
                     data: DataConfig) -> list[str]:
    """Flags given with --resume whose value differs from the run's config.json, one text each."""
    saved = {"model": model, "train": train, "data": data}
    conflicts = []
    for flag, section, field, _, _ in _OPTIONS:
        value = getattr(args, field)
        if value is not None and field not in _LENGTH_FIELDS and value != getattr(saved[section], field):
            conflicts.append(f"{flag} {value} (the run has {getattr(saved[section], field)})")
    given = _given_data_config(args)
    if "data_dirs" in given and not _same_folders(given["data_dirs"], data.data_dirs):
        conflicts.append(f"--data {' '.join(given['data_dirs'])} (the run has "
                         f"{' '.join(data.data_dirs) or 'none'})")
    for key, flag in (("categories", "--categories"), ("asymmetric_categories", "--asymmetric-categories")):
        if key in given and sorted(given[key]) != sorted(getattr(data, key)):
            conflicts.append(f"{flag} {' '.join(given[key])} (the run has "
                             f"{' '.join(getattr(data, key)) or ('all' if key == 'categories' else 'none')})")
    if args.no_flip and data.hflip:
        conflicts.append("--no-flip (the run flips images)")
    if args.no_amp and train.amp:
        conflicts.append("--no-amp (the run uses mixed precision)")
    if args.init and not _same_folders((args.init,), (train.init_checkpoint,)):
        conflicts.append(f"--init {args.init} (the run started from "
                         f"{train.init_checkpoint or 'random weights'})")
    return conflicts


def _same_folders(given, saved) -> bool:
    """Paths equal as written or after resolving (relative ones against the current folder)."""
    return len(given) == len(saved) and all(
        str(Path(a)) == str(Path(b)) or (b and Path(a).resolve() == Path(b).resolve())
        for a, b in zip(given, saved))


def build_configs(args: argparse.Namespace) -> tuple[ModelConfig, TrainConfig, DataConfig]:
    """(ModelConfig, TrainConfig, DataConfig) from the defaults or RUN/config.json, plus the flags given.

    ValueError in flag words for a config that cannot train, or, with --resume, for flags that
    contradict the run.
    """
    from dataclasses import replace

    from posenet_mlvae.config import load_configs

    overrides: dict[str, dict] = {"model": {}, "train": {}, "data": {}}
    for flag, section, field, _, _ in _OPTIONS:
        if getattr(args, field) is not None:
            overrides[section][field] = getattr(args, field)
    if args.resume:
        config_path = Path(args.out) / "config.json"
        configs = dict(zip(("model", "train", "data"), load_configs(config_path)))
        conflicts = resume_conflicts(args, **configs)
        if conflicts:
            raise ValueError(f"--resume: {'; '.join(conflicts)}. A resumed run keeps its "
                             f"{config_path}: leave these flags out (only --steps, --epochs and "
                             "--time-budget may extend it), or start a new run with another --out")
        overrides = {"model": {}, "data": {},
                     "train": {k: v for k, v in overrides["train"].items() if k in _LENGTH_FIELDS}}
        if args.compile:  # how the steps run, the same objective: a resumed run may turn it on
            overrides["train"]["compile"] = True
    else:
        configs = {"model": ModelConfig(), "train": TrainConfig(), "data": DataConfig()}
        overrides["data"].update(_given_data_config(args))
        if args.no_amp:
            overrides["train"]["amp"] = False
        if args.compile:
            overrides["train"]["compile"] = True
        if args.init:
            overrides["train"]["init_checkpoint"] = str(Path(args.init))
        if args.no_flip or args.asymmetric_categories:  # the flip rule may not hold at test time
            overrides["model"]["mirror_average"] = False
    train = overrides["train"]
    if _LENGTH_FIELDS & set(train):  # the length flags given replace each other
        train = {"steps": 0, "epochs": 0, "time_budget_min": 0.0, **train}
    try:
        return (replace(configs["model"], **overrides["model"]), replace(configs["train"], **train),
                replace(configs["data"], **overrides["data"]))
    except ValueError as error:
        raise ValueError(flag_names(str(error))) from None


def check_inputs(args: argparse.Namespace) -> None:
    """The files the run needs exist: --data folders, --init, RUN/last.pt for --resume."""
    if not args.resume and not args.data:
        raise ValueError("--data: give a grouped dataset folder (e.g. from `posenet-mlvae render`) "
                         "or --resume")
    for folder in args.data:
        if not Path(folder).is_dir():
            raise ValueError(f"--data {folder}: no such folder; give a grouped dataset made by "
                             "`posenet-mlvae render` or `posenet-mlvae pascal3d`")
    if args.init and not args.resume and not Path(args.init).is_file():
        raise ValueError(f"--init {args.init}: no such checkpoint file")
    if args.resume:
        for name in ("last.pt", "config.json"):
            if not (Path(args.out) / name).is_file():
                raise ValueError(f"--resume: {Path(args.out) / name} does not exist; is --out "
                                 f"{args.out} a run folder made by `posenet-mlvae train`?")


def run(args: argparse.Namespace) -> int:
    from posenet_mlvae.commands.options import resolve_device

    check_inputs(args)
    model_config, train_config, data_config = build_configs(args)
    if not (train_config.steps or train_config.epochs or train_config.time_budget_min):
        raise ValueError("give the run length with --steps N, --epochs N or --time-budget MIN")
    device = resolve_device(args.device)

    from posenet_mlvae.training.train import fit

    summary = fit(model_config, train_config, data_config, args.out, resume=args.resume,
                  init=None if args.resume else (train_config.init_checkpoint or None),
                  device=device, progress=not args.no_progress)
    return 1 if summary["status"] == "non-finite" else 0
