"""`posenet-mlvae bench train`: training speed, group-machinery overhead, data loading, peak memory.

Prints four figures for the default model at 64 px (`--image-size 128`: at 128 px) on this machine:
1. training images/s of `fit`'s own step (train.train_step: gather, augment, forward, loss with
   the training weights, backward, GradScaler unscale, clip, AdamW);
2. ML-VAE step time / plain-VAE step time on the same batches, steps interleaved A/B so load
   changes hit both alike (the group machinery must cost < 5 %: ratio < 1.05);
3. data loading images/s from the on-disk dataset (memory-mapped .npy files, page cache): random
   K x M group batches gathered with GroupedDataset.images, with and without the augmentations
   (target >= 20,000 images/s at 64 px);
4. peak resident memory of a demo-sized training run (a child process running `train` for a few
   steps on the dataset; target < 4 GB);
5. with --breakdown, where the ML-VAE's step time goes: the steps of a ladder of models timed
   interleaved (direct CNN; + decoder and ELBO on a shared trunk; + the separate content
   encoder, reconstructing the full image; the same with a half-width decoder; the same
   reconstructing half the side = the default, ModelConfig.recon_downsample 2), each as a ratio to the direct
   CNN, and the batch building (gather + augment) alone;
6. with --compile, the compiled step (`train --compile`): the first step's seconds (compilation,
   which the inductor's cache in /tmp shortens for later runs) and the median step against the eager one.
Without --data a toy grouped set (posenet_mlvae.toy_data) is written to a temporary folder.
Figures on a machine shared with other jobs are pessimistic.
"""

from __future__ import annotations

import argparse
from typing import Callable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="grouped dataset (default: a toy set in a temp folder)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    parser.add_argument("--image-size", type=int, default=64, choices=(64, 128),
                        help="input side of the timed models; --data must be rendered at it (default 64)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak-memory child run")
    parser.add_argument("--compile", action="store_true",
                        help="also time the compiled step (train --compile) and its compilation")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time a ladder of models to show where the ML-VAE step's time goes")


def endless_batches(sampler):
    """The sampler's batches epoch after epoch (a benchmark times more steps than one epoch holds)."""
    while True:
        yield from sampler
        sampler.set_epoch(sampler.epoch + 1)


def _training_step_timer(data, model_config, seed: int = 0, amp: bool = True,
                         random_conv: float | None = None, compile_: bool = False) -> Callable[[], float]:
    """A function that runs one training step exactly as `fit` does and returns its seconds.

    The step is train.train_step on a batch from train.training_batch: the default TrainConfig
    and DataConfig (loss weights, pixel weights, augmentations, GradScaler, clip, AdamW), the
    sampler's next K x M batch (a new epoch when it runs out). Only the LR schedule is left out.
    amp=False: in float32 even where the default trains in mixed precision (train.autocast_dtype).
    random_conv: DataConfig.random_conv instead of the default (the pose trunk's random convolutions).
    compile_: TrainConfig.compile (the first call compiles).
    """
    import time
    from dataclasses import replace

    import torch

    from posenet_mlvae.config import DataConfig, TrainConfig
    from posenet_mlvae.training.distributed import DistInfo
    from posenet_mlvae.training.train import build_train_state, train_step, training_batch

    train_config, data_config = replace(TrainConfig(), seed=seed, amp=amp, compile=compile_), DataConfig()
    if random_conv is not None:
        data_config = replace(data_config, random_conv=random_conv)
    state = build_train_state(model_config, train_config, data, DistInfo(0, 1, 0, torch.device("cpu")))
    state.net.train()
    batches = endless_batches(state.sampler)

    def step() -> float:
        start = time.perf_counter()
        indices = next(batches)
        train_step(state, training_batch(data, indices, state, data_config, train_config), train_config)
        return time.perf_counter() - start

    return step


def interleaved_medians(timers: dict[str, Callable[[], float]], steps: int, warmup: int = 3) -> dict[str, float]:
    """Median seconds per call of each timer, calls interleaved round-robin so load hits all alike."""
    import statistics

    times: dict[str, list[float]] = {name: [] for name in timers}
    for round_ in range(warmup + steps):
        for name, timer in timers.items():
            seconds = timer()
            if round_ >= warmup:
                times[name].append(seconds)
    return {name: statistics.median(values) for name, values in times.items()}


#: (label, ModelConfig overrides) of the --breakdown ladder; each row adds one part to the one above.
BREAKDOWN_LADDER = (
    ("direct CNN (encoder + pose head)", {"variant": "direct"}),
    ("+ decoder (full size) and ELBO, shared trunk", {"content_width": 0, "recon_downsample": 1}),
    ("+ separate content encoder", {"recon_downsample": 1}),
    ("  with a half-width decoder", {"recon_downsample": 1, "decoder_width": 4}),
    ("  reconstructing half size (default)", {}),
)


def _batch_timer(data, image_size: int = 64) -> Callable[[], float]:
    """Seconds to build one training batch as `fit` does (train.training_batch on the sampler's
    next batch: gather, augmentations, pixel weights), without the step."""
    import time

    import torch

    from posenet_mlvae.config import DataConfig, ModelConfig, TrainConfig
    from posenet_mlvae.training.distributed import DistInfo
    from posenet_mlvae.training.train import build_train_state, training_batch

    train_config, data_config = TrainConfig(), DataConfig()
    state = build_train_state(ModelConfig(variant="direct", image_size=image_size), train_config, data,
                              DistInfo(0, 1, 0, torch.device("cpu")))
    batches = endless_batches(state.sampler)

    def build() -> float:
        indices = next(batches)
        start = time.perf_counter()
        training_batch(data, indices, state, data_config, train_config)
        return time.perf_counter() - start

    return build


def print_breakdown(data, steps: int, image_size: int = 64) -> None:
    """The --breakdown table (see the module docstring)."""
    from dataclasses import replace

    from posenet_mlvae.config import ModelConfig

    timers = {label: _training_step_timer(data, replace(ModelConfig(image_size=image_size), **overrides))
              for label, overrides in BREAKDOWN_LADDER}
    timers["batch building alone"] = _batch_timer(data, image_size)
    medians = interleaved_medians(timers, steps)
    base = medians[BREAKDOWN_LADDER[0][0]]
    print(f"where the step time goes (median of {steps} interleaved steps each):")
    for label, seconds in medians.items():
        print(f"  {label:<40} {1000 * seconds:7.1f} ms   {seconds / base:5.2f}x the direct CNN's step")


def _loading_rate(root: str, batch_size: int, augment: bool, seconds: float = 2.0) -> float:
    import time

    import numpy as np
    import torch

    from data_tools.image.augment import augment_batch
    from data_tools.dataset import GroupedDataset
    from data_tools.sampler import GroupBatchSampler

    dataset = GroupedDataset(root, split="train")
    sampler = GroupBatchSampler(dataset.records["group"], batch_size // 4, 4, seed=0, drop_last=False)
    generator = torch.Generator().manual_seed(0)
    flip = torch.ones(batch_size, dtype=torch.bool)
    images, start, epoch = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        sampler.set_epoch(epoch)
        for indices in sampler:
            batch = torch.from_numpy(dataset.images(indices))
            masks = torch.from_numpy(dataset.masks(indices)) if dataset.has_masks else None
            if augment:  # as in training: masks ride along, colour jitter shared per group
                angles = torch.from_numpy(dataset.records["azimuth"][indices].astype(np.float32))
                groups = torch.from_numpy(dataset.records["group"][indices])
                augment_batch(batch, angles, angles, angles, flip[: len(indices)], generator, masks_uint8=masks,
                              groups=groups)
            images += len(indices)
        epoch += 1
    return images / (time.perf_counter() - start)


def _peak_memory_gb(data_dir: str, steps: int, image_size: int = 64) -> float:
    import resource
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "posenet_mlvae.cli", "train", "--data", data_dir, "--out", out,
                        "--steps", str(steps), "--no-progress", "--val-max-images", "512",
                        "--image-size", str(image_size)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # kB -> GB on Linux


def run(args: argparse.Namespace) -> int:
    import tempfile

    import torch

    from posenet_mlvae.config import DataConfig, ModelConfig, TrainConfig
    from posenet_mlvae.training.data import load_split
    from posenet_mlvae.training.train import autocast_dtype
    from posenet_mlvae.network.model import build_model, count_parameters
    from posenet_mlvae.toy_data import write_toy_dataset

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    temp = None
    root = args.data
    if root is None:
        temp = tempfile.TemporaryDirectory()
        root = str(write_toy_dataset(f"{temp.name}/toy", groups=64, views=24, size=args.image_size, seed=0))
        print(f"no --data: wrote a toy set of 64 groups x 24 views at {args.image_size} px to {root}")
    config = ModelConfig(image_size=args.image_size)
    data = load_split([root], "train", config.image_size)
    train_config = TrainConfig()
    batch_size = train_config.groups_per_batch * train_config.views_per_group
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; default model "
          f"{count_parameters(build_model(config)) / 1e6:.2f}M params, batch {train_config.groups_per_batch} "
          f"groups x {train_config.views_per_group} views, {config.image_size} px")

    precision = autocast_dtype(train_config.amp, torch.device("cpu"))
    timers = {"mlvae": _training_step_timer(data, config),
              "vae": _training_step_timer(data, ModelConfig(variant="vae", image_size=args.image_size)),
              "no random conv": _training_step_timer(data, config, random_conv=0.0)}
    if precision is not None:
        timers["float32"] = _training_step_timer(data, config, amp=False)
    if args.compile:
        timers["compiled"] = _training_step_timer(data, config, compile_=True)
        print(f"compiling the training step (train --compile): the first step took {timers['compiled']():.1f} s")
    medians = interleaved_medians(timers, args.steps)
    median_mlvae, median_vae = medians["mlvae"], medians["vae"]
    print(f"training: {batch_size / median_mlvae:,.0f} images/s (ML-VAE, median step {1000 * median_mlvae:.1f} ms, "
          f"{str(precision or torch.float32).removeprefix('torch.')})")
    if precision is not None:
        print(f"  the same in float32 (--no-amp): median step {1000 * medians['float32']:.1f} ms; mixed precision "
              f"is {medians['float32'] / median_mlvae:.2f}x as fast")
    if args.compile:
        print(f"  compiled (train --compile): median step {1000 * medians['compiled']:.1f} ms; "
              f"{median_mlvae / medians['compiled']:.2f}x as fast as uncompiled")
    print(f"ML-VAE / plain VAE step time: {median_mlvae / median_vae:.3f} "
          f"(VAE {1000 * median_vae:.1f} ms; target < 1.05)")
    plain = medians["no random conv"]
    print(f"the pose trunk's random convolutions (--random-conv {DataConfig().random_conv:g}) cost "
          f"{median_mlvae / plain:.3f}x a step (without: {1000 * plain:.1f} ms)")
    raw = _loading_rate(root, 64, augment=False)
    augmented = _loading_rate(root, 64, augment=True)
    print(f"data loading from disk (mmap, page cache, images + masks): {raw:,.0f} images/s gather only, "
          f"{augmented:,.0f} images/s with augmentations (target >= 20,000)")
    if not args.skip_memory:
        peak = _peak_memory_gb(root, steps=30, image_size=args.image_size)
        print(f"peak memory of a demo-sized training run (30 steps): {peak:.2f} GB (target < 4 GB)")
    if args.breakdown:
        print_breakdown(data, args.steps, args.image_size)
    if temp is not None:
        temp.cleanup()
    return 0
