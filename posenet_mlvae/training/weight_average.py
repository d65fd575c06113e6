"""An exponential moving average (EMA, Polyak averaging) of the weights, kept beside training.

    average = weight_average(model, decay=0.999)   # None when decay is 0
    ...after each optimizer step: average.update_parameters(model)
    average.module                                # the averaged network: validate, checkpoint, export it

It is `torch.optim.swa_utils.AveragedModel` over parameters and buffers (BatchNorm statistics
included), with a warmed-up decay, min(decay, (1 + n) / (10 + n)) after n updates, so that a short
run's average is not dominated by the first steps' weights. Integer buffers (BatchNorm's batch
counters) are copied, not averaged. Off by default (TrainConfig.ema_decay 0): in the 12-minute
demo the average scored as the weights it averaged did, since the cosine schedule already ends
at 2 % of the peak learning rate (README, the model section).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def warmed_up_decay(decay: float, updates: int) -> float:
    """The decay applied at the update after `updates` updates: min(decay, (1 + n) / (10 + n))."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


def weight_average(model: nn.Module, decay: float) -> AveragedModel | None:
    """An EMA of `model`'s parameters and buffers with `decay` per step (0: no average, None)."""
    if decay == 0.0:
        return None
    if not 0.0 < decay < 1.0:
        raise ValueError(f"weight-average decay {decay} must be in [0, 1) (0 = off)")

    @torch.no_grad()
    def ema_update(averaged: list[torch.Tensor], current: list[torch.Tensor], updates: torch.Tensor) -> None:
        if not averaged[0].is_floating_point():  # BatchNorm's num_batches_tracked: a count, not a weight
            torch._foreach_copy_(averaged, current)
            return
        torch._foreach_lerp_(averaged, current, 1.0 - warmed_up_decay(decay, int(updates)))

    return AveragedModel(model, multi_avg_fn=ema_update, use_buffers=True)
