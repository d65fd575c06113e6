"""Pose head: observation latent -> (azimuth, elevation, theta), rotation matrix and confidence.

Representation, and why:
- Azimuth: classification into `bins` bins (default 24 x 15 deg, bin k centred on k * 15 deg)
  plus a regressed in-bin offset (one offset output per bin; the chosen bin's offset is used).
  A classifier over a circular set of bins has no wrap-around discontinuity at 0/360 deg, and it
  can hold two hypotheses at once (front vs rear of a near-symmetric car, 180 deg apart) instead
  of averaging them into a side view as a (cos, sin) or raw-degree regressor would. Training
  uses cross-entropy with label smoothing onto the two neighbouring bins (see
  `losses.pose_loss`), so nearby bins are not punished like opposite ones. It also fits the
  offsets of the true bin's two neighbours to the same angle (targets offset +- 1), so that an
  argmax one bin off, common near a bin's border, still decodes the right angle.
- Elevation and theta: plain regression of standardised values (value - mean) / std, with the
  mean and std of the training labels stored as buffers. These angles live in small ranges
  without wrap-around for cameras around an upright object, and in a prototype on this problem
  (cos, sin)-MSE heads for them learned nothing where plain normalised regression worked.
- Confidence: the softmax probability mass of the chosen azimuth bin and its two neighbours,
  in [0, 1]: near 1 when the head is sure of the azimuth within +-22.5 deg, near 0.5 when it
  hesitates between front and rear.
- Mirror averaging (`average_with_mirror`, a case of `average`): the head's outputs for an image
  and for its horizontal mirror, the mirror's mapped back by the flip rule (a, e, theta) ->
  (360 - a, e, -theta), averaged (azimuth as probabilities); `average` also takes other views,
  such as the zoomed crops of ModelConfig.zoom_average. For a left-right symmetric object both are
  estimates of one pose; their average is more accurate, and the confidence of the average
  ranks errors far better off-domain (on photo-like crops a single view's softmax is sure of
  many front/rear flips; the mirror often disagrees).
The rotation matrix is `data_tools.geometry.viewpoint_to_rotation` of the decoded angles.
All decode ops (argmax, gather, softmax, sin/cos) export to ONNX.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

from data_tools.geometry import viewpoint_to_rotation


class PoseLogits(NamedTuple):
    azimuth_logits: torch.Tensor  # (N, bins)
    azimuth_offset: torch.Tensor  # (N, bins) offset within each bin, in bin widths
    angles_std: torch.Tensor  # (N, 2) standardised (elevation, theta)


class PoseDecoded(NamedTuple):
    azimuth: torch.Tensor  # (N,) degrees in [0, 360)
    elevation: torch.Tensor  # (N,) degrees
    theta: torch.Tensor  # (N,) degrees
    rotation: torch.Tensor  # (N, 3, 3) object-to-camera
    confidence: torch.Tensor  # (N,) in [0, 1]


class PoseHead(nn.Module):
    """Two-layer MLP on the observation latent with azimuth-bin, offset and angle outputs."""

    def __init__(self, obs_dim: int, hidden_dim: int, bins: int) -> None:
        super().__init__()
        self.bins = bins
        self.mlp = nn.Sequential(nn.Linear(obs_dim, hidden_dim), nn.ReLU(inplace=True),
                                 nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True))
        self.azimuth_logits = nn.Linear(hidden_dim, bins)
        self.azimuth_offset = nn.Linear(hidden_dim, bins)
        self.angles = nn.Linear(hidden_dim, 2)
        # Label statistics (elevation, theta) for the standardised regression; set from the
        # training data by `set_angle_statistics` and saved with the weights.
        self.register_buffer("angle_mean", torch.tensor([10.0, 0.0]))
        self.register_buffer("angle_std", torch.tensor([20.0, 10.0]))

    @property
    def bin_width(self) -> float:
        return 360.0 / self.bins

    def set_angle_statistics(self, elevation: torch.Tensor, theta: torch.Tensor) -> None:
        """Store mean and std (floored at 1 deg) of the training labels, in degrees."""
        labels = torch.stack([torch.as_tensor(elevation, dtype=torch.float32),
                              torch.as_tensor(theta, dtype=torch.float32)], dim=1)  # (N, 2)
        self.angle_mean.copy_(labels.mean(0))
        self.angle_std.copy_(labels.std(0, unbiased=False).clamp_min(1.0))

    def forward(self, mu_obs: torch.Tensor) -> PoseLogits:
        h = self.mlp(mu_obs)  # (N, hidden)
        return PoseLogits(self.azimuth_logits(h), self.azimuth_offset(h), self.angles(h))

    def average_with_mirror(self, logits: PoseLogits, mirrored: PoseLogits) -> PoseLogits:
        """The outputs for images averaged with those for their horizontal mirrors (`average`)."""
        return self.average([logits, mirrored], [False, True])

    def average(self, outputs: Sequence[PoseLogits], mirrored: Sequence[bool]) -> PoseLogits:
        """The outputs for several test-time views of the same images averaged into one: azimuth
        bins as probabilities (returned as log-probabilities, which `decode` treats like logits),
        offsets and standardised angles as means. The outputs of a horizontally mirrored view
        (`mirrored[i]`) are first mapped back by the flip rule: bin k <-> bin -k with its offset
        negated, elevation kept, theta negated."""
        device = outputs[0].azimuth_logits.device
        mirror_bins = torch.remainder(-torch.arange(self.bins, device=device), self.bins)
        mean, std = self.angle_mean[1], self.angle_std[1]
        probs, offsets, angles = [], [], []
        for output, flipped in zip(outputs, mirrored, strict=True):
            view_probs = torch.softmax(output.azimuth_logits.float(), dim=1)
            view_offset, view_angles = output.azimuth_offset.float(), output.angles_std.float()
            if flipped:
                view_probs, view_offset = view_probs[:, mirror_bins], -view_offset[:, mirror_bins]
                # theta -> -theta in standardised units: x' = (-(mean + std x) - mean) / std
                theta_back = (-(mean + std * view_angles[:, 1]) - mean) / std
                view_angles = torch.stack([view_angles[:, 0], theta_back], dim=1)
            probs.append(view_probs)
            offsets.append(view_offset)
            angles.append(view_angles)
        views = float(len(probs))
        return PoseLogits(torch.log(sum(probs) / views + 1e-12), sum(offsets) / views, sum(angles) / views)

    def decode(self, logits: PoseLogits) -> PoseDecoded:
        """Angles in degrees, the rotation matrix and the confidence from the raw outputs."""
        azimuth_logits = logits.azimuth_logits.float()
        probs = torch.softmax(azimuth_logits, dim=1)  # (N, bins)
        best = torch.argmax(azimuth_logits, dim=1, keepdim=True)  # (N, 1)
        offset = torch.gather(logits.azimuth_offset.float(), 1, best)  # (N, 1)
        azimuth = torch.remainder((best.float() + offset) * self.bin_width, 360.0).squeeze(1)
        neighbours = torch.cat([torch.remainder(best - 1, self.bins), best,
                                torch.remainder(best + 1, self.bins)], dim=1)  # (N, 3)
        confidence = torch.gather(probs, 1, neighbours).sum(1)
        angles = self.angle_mean + self.angle_std * logits.angles_std.float()  # (N, 2)
        elevation, theta = angles[:, 0].clamp(-90.0, 90.0), angles[:, 1]
        rotation = viewpoint_to_rotation(azimuth, elevation, theta)  # (N, 3, 3)
        return PoseDecoded(azimuth, elevation, theta, rotation, confidence)
