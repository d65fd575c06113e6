"""`posenet-mlvae train`: train the ML-VAE + pose head on grouped datasets.

    posenet-mlvae train --data /tmp/cars --out runs/cars --time-budget 7
    posenet-mlvae train --resume --out runs/cars                 # continue exactly from runs/cars/last.pt
    posenet-mlvae train --data /tmp/cars --data /tmp/p3d --init runs/cars/best.pt --out runs/ft --epochs 5
    torchrun --standalone --nproc_per_node=2 -m posenet_mlvae.cli train --data /tmp/cars --out runs/ddp --steps 2000

Flags left out keep the defaults of ModelConfig / TrainConfig / DataConfig (posenet_mlvae/config.py);
with --resume the run's saved config.json is used, and only --steps/--epochs/--time-budget may
extend it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# flag -> (config section, field, type, help)
_OPTIONS = [
    ("--variant", "model", "variant", str, "mlvae (default), vae (baseline: no groups) or direct (no decoder)"),
    ("--backbone", "model", "backbone", str, "conv (default), resnet18 or resnet34"),
    ("--image-size", "model", "image_size", int, "input size in px (64 default; the dataset must match)"),
    ("--width", "model", "width", int, "conv channels of the first layer (default 32)"),
    ("--obs-dim", "model", "obs_dim", int, "observation (pose) latent size"),
    ("--decoder-width", "model", "decoder_width", int, "channels of the decoder's last hidden layer"),
    ("--content-width", "model", "content_width", int, "> 0: separate content conv encoder of this width"),
    ("--content-dim", "model", "content_dim", int, "content (identity) latent size"),
    ("--decode-from", "model", "decode_from", str,
     "group (ML-VAE: all members' evidence) or others (leave-one-out: group-mates' evidence only)"),
    ("--imagenet-weights", "model", "imagenet_weights", str, "local torchvision ResNet .pth (never downloaded)"),
    ("--steps", "train", "steps", int, "optimizer steps"),
    ("--epochs", "train", "epochs", int, "epochs (one pass over every image), when --steps is not given"),
    ("--time-budget", "train", "time_budget_min", float, "minutes of training, when neither --steps nor --epochs"),
    ("--groups-per-batch", "train", "groups_per_batch", int, "K groups per batch (default 16)"),
    ("--views-per-group", "train", "views_per_group", int, "M views per group (default 4)"),
    ("--lr", "train", "lr", float, "peak AdamW learning rate"),
    ("--weight-decay", "train", "weight_decay", float, "AdamW weight decay"),
    ("--warmup-steps", "train", "warmup_steps", int, "linear LR warm-up steps"),
    ("--grad-clip", "train", "grad_clip", float, "gradient norm clip"),
    ("--recon-weight", "train", "recon_weight", float, "weight of the summed squared pixel error"),
    ("--background-weight", "train", "background_weight", float,
     "reconstruction weight of pixels outside the object mask (datasets with masks; 1 = no masking)"),
    ("--beta-obs", "train", "beta_obs", float, "weight of the observation KL"),
    ("--beta-content", "train", "beta_content", float, "weight of the group content KL"),
    ("--lambda-pose", "train", "lambda_pose", float, "weight of the pose loss"),
    ("--kl-warmup-steps", "train", "kl_warmup_steps", int, "linear KL warm-up steps (0 = off)"),
    ("--seed", "train", "seed", int, "random seed"),
    ("--threads", "train", "num_threads", int, "torch CPU threads (0 = torch default)"),
    ("--val-max-images", "train", "val_max_images", int, "images used for validation each epoch"),
    ("--checkpoint-every", "train", "checkpoint_every_steps", int, "steps between last.pt checkpoints"),
    ("--color-jitter", "data", "color_jitter", float, "brightness/contrast/saturation jitter"),
    ("--scale-jitter", "data", "scale_jitter", float, "zoom jitter fraction"),
    ("--shift-jitter", "data", "shift_jitter", float, "shift jitter fraction of the side"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", action="append", default=[], metavar="DIR",
                        help="grouped dataset directory (repeat to mix several)")
    parser.add_argument("--out", required=True, metavar="RUN", help="run folder (checkpoints, metrics, config)")
    parser.add_argument("--resume", action="store_true", help="continue RUN exactly from RUN/last.pt")
    parser.add_argument("--init", metavar="CKPT", help="start from these model weights (fine-tuning)")
    parser.add_argument("--categories", nargs="+", help="train on these categories only")
    parser.add_argument("--no-flip", action="store_true", help="no horizontal-flip augmentation")
    parser.add_argument("--asymmetric-categories", nargs="+", default=None,
                        help="categories never flipped (not left-right symmetric)")
    parser.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    for flag, _, field, kind, text in _OPTIONS:
        parser.add_argument(flag, dest=field, type=kind, default=None, help=text)


def build_configs(args: argparse.Namespace):
    """(ModelConfig, TrainConfig, DataConfig) from the defaults or RUN/config.json, plus the flags given."""
    from dataclasses import replace

    from posenet_mlvae.config import DataConfig, ModelConfig, TrainConfig, load_configs

    if args.resume:
        configs = dict(zip(("model", "train", "data"), load_configs(Path(args.out) / "config.json")))
        allowed = {"steps", "epochs", "time_budget_min"}
    else:
        configs = {"model": ModelConfig(), "train": TrainConfig(), "data": DataConfig()}
        allowed = None
    overrides: dict[str, dict] = {"model": {}, "train": {}, "data": {}}
    for flag, section, field, _, _ in _OPTIONS:
        value = getattr(args, field)
        if value is None:
            continue
        if allowed is not None and field not in allowed:
            raise ValueError(f"{flag} cannot change a resumed run (its config.json is used); "
                             "only --steps, --epochs and --time-budget may extend it")
        overrides[section][field] = value
    if not args.resume:
        data = overrides["data"]
        data["data_dirs"] = tuple(str(Path(d)) for d in args.data)
        if args.categories:
            data["categories"] = tuple(args.categories)
        if args.no_flip:
            data["hflip"] = False
        if args.asymmetric_categories:
            data["asymmetric_categories"] = tuple(args.asymmetric_categories)
        if args.no_amp:
            overrides["train"]["amp"] = False
    train = overrides["train"]
    if {"steps", "epochs", "time_budget_min"} & set(train):  # the length flags given replace each other
        train = {"steps": 0, "epochs": 0, "time_budget_min": 0.0, **train}
    return (replace(configs["model"], **overrides["model"]), replace(configs["train"], **train),
            replace(configs["data"], **overrides["data"]))


def run(args: argparse.Namespace) -> int:
    from posenet_mlvae.train import fit

    if not args.resume and not args.data:
        print("train: give --data DIR (a grouped dataset, e.g. from `posenet-mlvae render`) or --resume")
        return 2
    if args.resume and not (Path(args.out) / "last.pt").is_file():
        print(f"train: --resume but {Path(args.out) / 'last.pt'} does not exist")
        return 2
    try:
        model_config, train_config, data_config = build_configs(args)
    except ValueError as error:
        print(f"train: {error}")
        return 2
    if not (train_config.steps or train_config.epochs or train_config.time_budget_min):
        print("train: give the run length with --steps N, --epochs N or --time-budget MIN")
        return 2
    summary = fit(model_config, train_config, data_config, args.out, resume=args.resume, init=args.init,
                  device=args.device, progress=not args.no_progress)
    return 1 if summary["status"] == "non-finite" else 0
