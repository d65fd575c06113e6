"""Label-preserving image augmentations for viewpoint training, vectorised over the batch in torch.

`augment_batch` turns a uint8 batch (N, H, W, 3) into the model input (N, 3, H, W) float32 in
[0, 1] (the contract of data_tools.image.preprocess.to_model_input) with, per image:

- horizontal flip (p = 0.5, only where `flip_allowed`): the labels follow the flip rule of
  `data_tools.geometry.flip_viewpoint` (a, e, theta) -> (360 - a, e, -theta), true for
  left-right symmetric objects only, so callers disable it for asymmetric categories;
- scale and shift jitter (one affine resample per image: OpenCV on uint8 for CPU batches,
  grid_sample otherwise; edge pixels replicated):
  a small zoom/translation of the crop leaves the viewpoint label unchanged to within a degree;
- colour jitter: brightness, contrast and saturation factors drawn in [1 - j, 1 + j], per
  group when group ids are given (the group's shared appearance stays shared), and optionally
  grey images (saturation 0) for a fraction of the groups, for models that must also read grey
  cameras (the demo's models lean on colour to tell a car's front from its rear; README).

`random_convolution` randomises colours and local textures while keeping the shape (RandConv);
training applies it last, to a copy that only the model's pose trunk reads
(posenet_mlvae.training.data.make_batch).

Object masks, when given, are flipped and resampled with their images (not colour-jittered).
All randomness comes from the given torch.Generator, so a training run can save and restore it.
Torch is imported inside the functions (data_tools stays importable without it).
"""

from __future__ import annotations

from typing import NamedTuple

from data_tools.geometry import flip_viewpoint
from data_tools.image.moments import mean_and_std

# Rec. 601 luma weights for the grey image used by contrast and saturation jitter.
LUMA = (0.299, 0.587, 0.114)


class Augmented(NamedTuple):
    images: "torch.Tensor"  # (N, 3, H, W) float32 in [0, 1]
    azimuth: "torch.Tensor"  # (N,) degrees
    elevation: "torch.Tensor"
    theta: "torch.Tensor"
    masks: "torch.Tensor | None"  # (N, 1, H, W) float in [0, 1], moved with the image; None if not given


def _uniform(n: int, low: float, high: float, generator, device):
    import torch

    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def color_jitter(images, strength: float, generator, groups=None, grayscale: float = 0.0):
    """Brightness, contrast, saturation jitter of float images (N, 3, H, W) in [0, 1].

    Factors b, c, s are drawn in [1 - strength, 1 + strength]. The three steps
    x -> b x,  x -> g + s (x - g) (g = grey value, Rec. 601),  x -> m + c (x - m) (m = mean grey)
    are all affine in the RGB vector, so they are applied as one per-image 3x3 matrix and offset
    (one pass over the pixels):  x' = c b S x + (1 - c) m,  S = s I + (1 - s) 1 luma^T.
    groups: optional (N,) int64 group ids; images of one group then share their factors, so the
    appearance an ML-VAE must find common to a group stays common (a per-image jitter would make
    every view's colour differ, and the per-image latent would have to carry the colour).
    grayscale: probability that an image (a group, with group ids) turns grey (saturation 0),
    drawn after the factors so that grayscale=0 leaves the random stream as it was.
    """
    import torch

    if strength <= 0 and grayscale <= 0:
        return images
    n, device, dtype = images.shape[0], images.device, images.dtype
    index = torch.arange(n, device=device)
    if groups is not None:
        _, index = torch.unique(groups, return_inverse=True)  # (N,) in [0, n_groups)
        n = int(index.max()) + 1
    brightness = _uniform(n, 1 - strength, 1 + strength, generator, device)[index]  # (N,)
    contrast = _uniform(n, 1 - strength, 1 + strength, generator, device)[index]
    saturation = _uniform(n, 1 - strength, 1 + strength, generator, device)[index]
    if grayscale > 0:
        grey = (torch.rand(n, generator=generator, device=device) < grayscale)[index]
        saturation = torch.where(grey, torch.zeros_like(saturation), saturation)
    luma = torch.tensor(LUMA, device=device, dtype=dtype)  # (3,)
    eye = torch.eye(3, device=device, dtype=dtype)
    s = saturation.view(-1, 1, 1)
    matrix = (contrast * brightness).view(-1, 1, 1) * (s * eye + (1 - s) * luma.view(1, 1, 3))  # (N, 3, 3)
    mean_grey = brightness * (images.mean(dim=(2, 3)) @ luma)  # (N,) grey mean after brightness
    offset = ((1 - contrast) * mean_grey).view(-1, 1, 1)  # (N, 1, 1), the same for R, G, B
    n_img, _, h, w = images.shape
    out = torch.baddbmm(offset, matrix, images.reshape(n_img, 3, h * w))  # (N, 3, H*W)
    return out.view(n_img, 3, h, w).clamp_(0.0, 1.0)


def random_convolution(images, probability: float, generator, groups=None, kernel_sizes=(1, 3, 5)):
    """Random-convolution texture and colour randomisation (RandConv, Xu et al. ICLR 2021) of float
    images (N, 3, H, W) in [0, 1], for a `probability` of the images (of the groups, with ids).

    A chosen image becomes a x + (1 - a) f * x: f a random 3 -> 3 channel filter (one kernel side
    per batch from `kernel_sizes`, weights N(0, 1 / (3 k^2)), drawn per group like the colour
    jitter's factors), a ~ U(0, 1); the filtered image is rescaled to the image's own mean and
    standard deviation, then clamped to [0, 1]. Colours and local textures change, the outline
    and the layout stay, so a model must read the shape (a car's front from its rear) more than
    its colours. probability 0 returns the images untouched and draws nothing.
    """
    import torch
    import torch.nn.functional as F

    if probability <= 0:
        return images
    n_img, _, h, w = images.shape
    device, dtype = images.device, images.dtype
    index = torch.arange(n_img, device=device)
    if groups is not None:
        _, index = torch.unique(groups, return_inverse=True)
    n = int(index.max()) + 1
    chosen = (torch.rand(n, generator=generator, device=device) < probability)[index]  # (N,)
    k = kernel_sizes[int(torch.randint(len(kernel_sizes), (1,), generator=generator, device=device))]
    # every group's filter and mix are drawn, chosen or not: the draws a batch takes do not
    # depend on which groups are chosen
    weights = torch.randn(n, 3, 3, k, k, generator=generator, device=device, dtype=dtype) / (3 * k * k) ** 0.5
    mix = torch.rand(n, generator=generator, device=device, dtype=dtype)[index].view(-1, 1, 1, 1)
    rows = torch.nonzero(chosen).flatten()
    if len(rows) == 0:
        return images
    picked = images[rows]  # only the chosen images are filtered (one grouped convolution)
    filtered = F.conv2d(F.pad(picked.reshape(1, 3 * len(rows), h, w), (k // 2,) * 4, mode="replicate"),
                        weights[index[rows]].reshape(3 * len(rows), 3, k, k), groups=len(rows))
    filtered = filtered.view(len(rows), 3, h, w)
    mean, std = mean_and_std(picked)
    f_mean, f_std = mean_and_std(filtered)
    filtered = (filtered - f_mean) * (std / f_std.clamp_min(1e-6)) + mean
    out = images.clone()
    out[rows] = (mix[rows] * picked + (1 - mix[rows]) * filtered).clamp_(0.0, 1.0)
    return out


def _zoom_shift(n: int, scale: float, shift: float, generator, device, flip=None):
    """Per-image sampling transform in grid units (the side spans 2): x_in = sx x_out + tx, y likewise.

    Zoom in [1 - scale, 1 + scale] (> 1 zooms in), shift up to `shift` of the side; flip mirrors x.
    """
    import torch

    zoom = _uniform(n, 1 - scale, 1 + scale, generator, device)
    tx = _uniform(n, -2 * shift, 2 * shift, generator, device)
    ty = _uniform(n, -2 * shift, 2 * shift, generator, device)
    sx = 1.0 / zoom if flip is None else torch.where(flip, -1.0, 1.0) / zoom
    return sx, 1.0 / zoom, tx, ty


def scale_shift_jitter(images, scale: float, shift: float, generator, flip=None):
    """Zoom by a factor in [1 - scale, 1 + scale] and shift by up to `shift` of the side, per image.

    images: float (N, C, H, W). flip: optional bool (N,): mirror those images horizontally in the
    same resampling (x -> -x maps pixel centres exactly onto each other, so a pure flip is exact).
    Bilinear, edge pixels replicated (grid_sample, align_corners=False).
    """
    import torch
    import torch.nn.functional as F

    if scale <= 0 and shift <= 0:
        return images if flip is None else torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    n, _, h, w = images.shape
    device, dtype = images.device, images.dtype
    sx, sy, tx, ty = _zoom_shift(n, scale, shift, generator, device, flip)
    base_x = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1  # pixel centres in (-1, 1)
    base_y = (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h - 1
    grid_x = (sx.view(n, 1, 1) * base_x.view(1, 1, w) + tx.view(n, 1, 1)).expand(n, h, w)
    grid_y = (sy.view(n, 1, 1) * base_y.view(1, h, 1) + ty.view(n, 1, 1)).expand(n, h, w)
    grid = torch.stack([grid_x, grid_y], dim=-1)  # (N, H, W, 2), x first as grid_sample expects
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def scale_shift_jitter_uint8(images, scale: float, shift: float, generator, flip=None):
    """The same transform as `scale_shift_jitter` on uint8 (N, H, W, C) CPU images, with OpenCV.

    cv2.warpAffine per image is several times faster than grid_sample on 2 CPU cores and keeps
    uint8 (its bilinear weights are fixed-point, so values differ from the float path by ~1/255).
    In pixels, x_src = sx x_dst + (sx (1 - W) + tx W + W - 1) / 2 (align_corners=False centres).
    """
    import cv2
    import numpy as np
    import torch

    if scale <= 0 and shift <= 0:
        return images if flip is None else torch.where(flip.view(-1, 1, 1, 1), images.flip(2), images)
    n, h, w, _ = images.shape
    sx, sy, tx, ty = (v.double().numpy() for v in _zoom_shift(n, scale, shift, generator, images.device, flip))
    source = images.numpy()
    out = np.empty_like(source)
    for i in range(n):
        matrix = np.array([[sx[i], 0.0, (sx[i] * (1 - w) + tx[i] * w + w - 1) / 2],
                           [0.0, sy[i], (sy[i] * (1 - h) + ty[i] * h + h - 1) / 2]])
        out[i] = cv2.warpAffine(source[i], matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REPLICATE).reshape(out[i].shape)
    return torch.from_numpy(out)


def augment_batch(images_uint8, azimuth, elevation, theta, flip_allowed, generator, *,
                  hflip: bool = True, color: float = 0.2, scale: float = 0.08, shift: float = 0.05,
                  masks_uint8=None, groups=None, grayscale: float = 0.0) -> Augmented:
    """Augment a uint8 batch, its viewpoint labels and (optionally) its object masks.

    images_uint8: torch uint8 (N, H, W, 3); azimuth/elevation/theta: float tensors (N,) in
    degrees (NaN for unlabelled images is fine: they stay NaN); flip_allowed: bool (N,);
    masks_uint8: optional uint8 (N, H, W), 255 = object: flipped and resampled with the image.
    groups: optional (N,) group ids: colour jitter shared within each group (see color_jitter).
    grayscale: the probability of a grey image (per group with group ids; see color_jitter).
    """
    import torch

    if masks_uint8 is not None:  # ride along as a 4th channel through the geometric transforms
        images_uint8 = torch.cat([images_uint8, masks_uint8[..., None]], dim=3)  # (N, H, W, 4)
    n, device = images_uint8.shape[0], images_uint8.device
    if hflip:
        flip = (torch.rand(n, generator=generator, device=device) < 0.5) & flip_allowed
        labelled = torch.isfinite(azimuth) & torch.isfinite(elevation) & torch.isfinite(theta)
        flipped = flip_viewpoint(torch.nan_to_num(azimuth), torch.nan_to_num(elevation), torch.nan_to_num(theta))
        swap = flip & labelled
        azimuth, elevation, theta = (torch.where(swap, new, old) for new, old in
                                     zip(flipped, (azimuth, elevation, theta)))
    else:
        flip = None
    def to_float(channels_last_uint8):  # (N, H, W, C) uint8 -> contiguous (N, C, H, W) in [0, 1]
        nchw = channels_last_uint8.permute(0, 3, 1, 2)
        return nchw.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)

    if device.type == "cpu":  # geometry on uint8 with OpenCV (fast on CPU), then to float
        warped = scale_shift_jitter_uint8(images_uint8, scale, shift, generator, flip)
        images = to_float(warped[..., :3])
        masks = to_float(warped[..., 3:]) if masks_uint8 is not None else None
    else:
        warped = scale_shift_jitter(to_float(images_uint8), scale, shift, generator, flip)
        images = warped[:, :3].contiguous()
        masks = warped[:, 3:].contiguous() if masks_uint8 is not None else None
    # Colour last, on the 3 image channels only (it is affine per pixel, so the order with the
    # linear resampling above matters only through the image mean it uses).
    images = color_jitter(images, color, generator, groups, grayscale)
    return Augmented(images, azimuth, elevation, theta, masks)
