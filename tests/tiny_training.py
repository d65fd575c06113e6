"""A tiny model and a fast training setup, shared by the tests that train (seconds on a CPU).

`TINY` is the smallest ML-VAE the trainer accepts at 64 px; `FAST` trains it on K=4 groups x
M=4 views with a short warm-up, on one thread. Test files `replace` what they need on top.
"""

from __future__ import annotations

from pathlib import Path

from posenet_mlvae.config import ModelConfig, TrainConfig
from posenet_mlvae.toy_data import write_toy_dataset

TINY = ModelConfig(width=8, decoder_width=4, hidden_dim=64, obs_dim=8, content_dim=8)
FAST = TrainConfig(groups_per_batch=4, views_per_group=4, warmup_steps=5, lr=3e-3, num_threads=1)


def toy_dataset(tmp_path_factory, groups: int = 20, views: int = 12, val_groups: int = 4) -> Path:
    """A toy grouped dataset (`posenet_mlvae.toy_data`, seed 0) in a fresh temporary folder."""
    return write_toy_dataset(tmp_path_factory.mktemp("toy") / "data", groups=groups, views=views,
                             val_groups=val_groups, seed=0)
