"""Distributed training helpers (torchrun / DistributedDataParallel), in one small module.

Multi-process training is the same command under torchrun, e.g. two processes on one machine:

    torchrun --standalone --nproc_per_node=2 -m posenet_mlvae.cli train --data /tmp/cars --out runs/ddp

(or `torchrun --nproc_per_node=8 --nnodes=2 --rdzv-endpoint=HOST:29500 ...` across machines).
torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; we read them, start the
process group (NCCL on CUDA, gloo on CPU) and let only rank 0 write files; validation
metrics are gathered from every rank (`all_gather_objects`) before they are summarised. Decisions
that every rank must take alike (epoch length, stop, the time budget's clock) go through one
collective each, so no rank ever waits for a step that another skips. A plain
`posenet-mlvae train` (no WORLD_SIZE) starts nothing and spawns nothing, so a debugger works.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str | None = None) -> DistInfo:
    """Read torchrun's environment and start the process group when WORLD_SIZE > 1.

    device: "cpu", "cuda" or None (CUDA when available). Under torchrun on CUDA each process uses
    cuda:LOCAL_RANK.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device is None else device.startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available; use --device cpu")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        torch_device = torch.device("cuda", local_rank)
    else:
        torch_device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, torch_device)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def all_true(flag: bool, device: torch.device) -> bool:
    """True only if `flag` is true on every rank (e.g. "the loss is finite")."""
    if not (dist.is_available() and dist.is_initialized()):
        return flag
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return bool(tensor.item())


def main_value_and_any(value: float, flag: bool, device: torch.device) -> tuple[float, bool]:
    """(rank 0's `value`, whether `flag` is true on any rank) in one all_reduce.

    The training loop calls it after every step with the elapsed time and "stop requested": every
    rank then follows one clock (rank 0's), so the time-budget LR schedule and the budget's end are
    identical everywhere, and a signal to any rank stops every rank after the same step.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return value, flag
    tensor = torch.tensor([value if dist.get_rank() == 0 else 0.0, 1.0 if flag else 0.0], dtype=torch.float64,
                          device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)  # rank 0's value plus zeros: exact
    return float(tensor[0].item()), bool(tensor[1].item() > 0)


def min_max_over_ranks(value: int, device: torch.device) -> tuple[int, int]:
    """(smallest, largest) `value` over all ranks, e.g. to check that every rank has the same batch count."""
    if not (dist.is_available() and dist.is_initialized()):
        return value, value
    tensor = torch.tensor([value, -value], dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor[0].item()), -int(tensor[1].item())


def all_gather_objects(obj: Any) -> list[Any]:
    """[obj of rank 0, obj of rank 1, ...] (a one-element list in a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
