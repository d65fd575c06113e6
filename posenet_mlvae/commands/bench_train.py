"""`posenet-mlvae bench train`: training speed, group-machinery overhead, data loading, peak memory.

Prints four figures for the default 64 px model on this machine:
1. training images/s (a full step: gather, augment, forward, loss, backward, clip, AdamW);
2. ML-VAE step time / plain-VAE step time on the same batches, steps interleaved A/B so load
   changes hit both alike (the group machinery must cost < 5 %: ratio < 1.05);
3. data loading images/s from the on-disk dataset (memory-mapped shards, page cache): random
   K x M group batches gathered with GroupedDataset.images, with and without the augmentations
   (target >= 20,000 images/s at 64 px);
4. peak resident memory of a demo-sized training run (a child process running `train` for a few
   steps on the dataset; target < 4 GB).
Without --data a toy grouped set (posenet_mlvae.toy_data) is written to a temporary folder.
Figures on a machine shared with other jobs are pessimistic.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="grouped dataset (default: a toy set in a temp folder)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak-memory child run")


def _time_training(data, model_config, steps: int, seed: int = 0) -> list[float]:
    import time

    import torch

    from data_tools.sampler import GroupBatchSampler
    from posenet_mlvae.config import TrainConfig
    from posenet_mlvae.data import make_batch
    from posenet_mlvae.losses import mlvae_loss
    from posenet_mlvae.model import build_model

    tc = TrainConfig()
    torch.manual_seed(seed)
    model = build_model(model_config).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    sampler = GroupBatchSampler(data.group, tc.groups_per_batch, tc.views_per_group, seed)
    generator = torch.Generator().manual_seed(seed)
    batches = iter(sampler)

    def step() -> float:
        nonlocal batches
        start = time.perf_counter()
        indices = next(batches, None)
        if indices is None:
            sampler.set_epoch(sampler.epoch + 1)
            batches = iter(sampler)
            indices = next(batches)
        batch = make_batch(data, indices, torch.device("cpu"), generator, 0.2, 0.08, 0.05, True)
        output = model(batch.images, batch.group)
        terms = mlvae_loss(output, batch.images, batch.azimuth, batch.elevation, batch.theta, batch.has_pose,
                           model.pose_head.angle_mean, model.pose_head.angle_std, lambda_pose=tc.lambda_pose)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        return time.perf_counter() - start

    return step


def _loading_rate(root: str, batch_size: int, augment: bool, seconds: float = 2.0) -> float:
    import time

    import numpy as np
    import torch

    from data_tools.augment import augment_batch
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


def _peak_memory_gb(data_dir: str, steps: int) -> float:
    import resource
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "posenet_mlvae.cli", "train", "--data", data_dir, "--out", out,
                        "--steps", str(steps), "--no-progress", "--val-max-images", "512"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # kB -> GB on Linux


def run(args: argparse.Namespace) -> int:
    import statistics
    import tempfile

    import torch

    from posenet_mlvae.config import ModelConfig
    from posenet_mlvae.data import load_split
    from posenet_mlvae.model import build_model, count_parameters
    from posenet_mlvae.toy_data import write_toy_dataset

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    temp = None
    root = args.data
    if root is None:
        temp = tempfile.TemporaryDirectory()
        root = str(write_toy_dataset(f"{temp.name}/toy", groups=64, views=24, seed=0))
        print(f"no --data: wrote a toy set of 64 groups x 24 views to {root}")
    config = ModelConfig()
    data = load_split([root], "train", config.image_size)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; default model "
          f"{count_parameters(build_model(config)) / 1e6:.2f}M params, batch 16 groups x 4 views, 64 px")

    mlvae_step = _time_training(data, config, args.steps)
    vae_step = _time_training(data, ModelConfig(variant="vae"), args.steps)
    for _ in range(3):  # warm-up
        mlvae_step(), vae_step()
    times_mlvae, times_vae = [], []
    for _ in range(args.steps):  # interleaved so machine load hits both alike
        times_mlvae.append(mlvae_step())
        times_vae.append(vae_step())
    median_mlvae, median_vae = statistics.median(times_mlvae), statistics.median(times_vae)
    print(f"training: {64 / median_mlvae:,.0f} images/s (ML-VAE, median step {1000 * median_mlvae:.1f} ms)")
    print(f"ML-VAE / plain VAE step time: {median_mlvae / median_vae:.3f} "
          f"(VAE {1000 * median_vae:.1f} ms; target < 1.05)")
    raw = _loading_rate(root, 64, augment=False)
    augmented = _loading_rate(root, 64, augment=True)
    print(f"data loading from disk (mmap, page cache, images + masks): {raw:,.0f} images/s gather only, "
          f"{augmented:,.0f} images/s with augmentations (target >= 20,000)")
    if not args.skip_memory:
        peak = _peak_memory_gb(root, steps=30)
        print(f"peak memory of a demo-sized training run (30 steps): {peak:.2f} GB (target < 4 GB)")
    if temp is not None:
        temp.cleanup()
    return 0
