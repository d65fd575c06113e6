"""MixStyle (Zhou, Yang, Qiao & Xiang, "Domain Generalization with MixStyle", ICLR 2021).

A CNN's early feature statistics (each channel's mean and standard deviation over the image)
carry an image's style: lighting, colour cast, texture contrast. In training, MixStyle swaps
part of each image's statistics for another image's of the batch,

    y = (x - mu) / sigma * (lam sigma + (1 - lam) sigma[perm]) + lam mu + (1 - lam) mu[perm],

with lam ~ Beta(alpha, alpha) per image and the statistics detached, so the layers after it
learn to read content under styles no render had. It has no weights and is the identity outside
training (and in the exported graph).
"""

from __future__ import annotations

import torch
from torch import nn

#: Beta(alpha, alpha) concentration of the mixing weight (the paper's 0.1: mostly near 0 or 1).
MIXSTYLE_ALPHA = 0.1
#: Floor added to the variance, as in the paper.
MIXSTYLE_EPS = 1e-6


class MixStyle(nn.Module):
    """Mix per-channel feature statistics between the images of a training batch.

    probability: chance that a given training batch is mixed (the paper's 0.5); 0 = never.
    Randomness comes from torch's global generator, which training seeds and checkpoints.
    """

    def __init__(self, probability: float, alpha: float = MIXSTYLE_ALPHA) -> None:
        super().__init__()
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"MixStyle probability={probability} must be in [0, 1]")
        self.probability = probability
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.probability <= 0 or x.shape[0] < 2:
            return x
        if float(torch.rand(())) >= self.probability:
            return x
        n, features = x.shape[0], x.float()  # statistics in float32 under autocast too
        mean = features.mean(dim=(2, 3), keepdim=True).detach()  # (N, C, 1, 1)
        std = (features.var(dim=(2, 3), keepdim=True) + MIXSTYLE_EPS).sqrt().detach()
        weight = torch.distributions.Beta(self.alpha, self.alpha).sample((n, 1, 1, 1)).to(x.device)
        perm = torch.randperm(n, device=x.device)
        mixed_mean = weight * mean + (1 - weight) * mean[perm]
        mixed_std = weight * std + (1 - weight) * std[perm]
        return ((features - mean) / std * mixed_std + mixed_mean).to(x.dtype)

    def extra_repr(self) -> str:
        return f"probability={self.probability}, alpha={self.alpha}"


__all__ = ["MIXSTYLE_ALPHA", "MixStyle"]
