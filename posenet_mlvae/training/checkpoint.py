"""Checkpoints: tensors and plain data only, written atomically, loaded with weights_only=True.

A checkpoint is one dict saved with torch.save:

    format, version          "posenet-mlvae-checkpoint", 1
    model_config             ModelConfig as a dict (rebuilds the network)
    train_config, data_config  the run's other configs as dicts
    metadata                 {"image_size": int, "categories": [...]}
    model                    the unwrapped model's state_dict (its EMA when training kept one)
    training_model, average_updates  with an EMA: the optimizer's own weights and the EMA's update count
    optimizer, scaler, schedule, sampler, rng, epoch, step, ...  resume state (training only)

Writing goes through `data_tools.atomic_write` (temporary name in the same folder, fsync, rename,
folder fsync): a reader sees the old file or the new one, never half of one, even after kill -9;
a failed write (a full disk) leaves the previous checkpoint intact and raises an OSError naming
the path. Stale temporary files of a killed writer are never read (readers open final names only;
`remove_temporaries` deletes them).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from data_tools.atomic_write import atomic_open
from posenet_mlvae.config import model_config_from_dict

CHECKPOINT_FORMAT = "posenet-mlvae-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """torch.save `checkpoint` (with format and version) to `path` atomically and durably."""
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **checkpoint}, handle)
    return path


def read_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict with torch.load(weights_only=True); ValueError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which and why
        raise ValueError(f"{path}: not a readable checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a posenet-mlvae checkpoint (format "
                         f"{checkpoint.get('format') if isinstance(checkpoint, dict) else type(checkpoint)})")
    if checkpoint.get("version", 0) > CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {checkpoint['version']} is newer than this code; upgrade")
    return checkpoint


def load_state_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """model.load_state_dict(strict) with a ValueError that names every missing/unexpected key."""
    expected, given = set(model.state_dict()), set(state_dict)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise ValueError(f"{source}: weights do not match the model: missing keys {missing}, "
                         f"unexpected keys {unexpected}; was it trained with another ModelConfig?")
    shapes = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} vs model {tuple(shapes[k].shape)}" for k, v in state_dict.items()
             if tuple(v.shape) != tuple(shapes[k].shape)]
    if wrong:
        raise ValueError(f"{source}: weights do not match the model: shapes differ for {wrong[:5]}"
                         f"{' ...' if len(wrong) > 5 else ''}; was it trained with another ModelConfig?")
    model.load_state_dict(state_dict, strict=True)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model stored in a checkpoint and load its weights strictly.

    Returns (model in eval mode, the checkpoint dict). ImageNet weights are never re-read: the
    checkpoint's own weights replace them.
    """
    from dataclasses import replace

    from posenet_mlvae.network.model import build_model

    checkpoint = read_checkpoint(path, map_location)
    config = replace(model_config_from_dict(checkpoint["model_config"]), imagenet_weights="")
    model = build_model(config)
    load_state_strict(model, checkpoint["model"], str(path))
    return model.to(map_location).eval(), checkpoint


def capture_rng_state() -> dict[str, Any]:
    """torch, numpy (legacy global) and python RNG states as tensors and plain data."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": [keys.tolist(), int(pos), int(has_gauss), float(cached)],
             "python": list(random.getstate()[1]), "python_gauss": random.getstate()[2]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate((3, tuple(state["python"]), state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
