"""Per-image mean and sample standard deviation of float image batches, fast on CPU.

torch.std's CPU reduction over several dimensions (a Welford pass) takes several times as long
as a mean; the training step standardises every pose-trunk input and the random convolution
every filtered image, so both use this instead. Torch is imported inside (data_tools stays
importable without it).
"""

from __future__ import annotations


def mean_and_std(images, dims=(1, 2, 3)):
    """(mean, std) of `images` over `dims`, kept as size-1 dimensions; std is the sample standard
    deviation (n - 1 in the denominator), as torch.std gives, from the centred squares."""
    count = 1
    for dim in dims:
        count *= images.shape[dim]
    mean = images.mean(dim=dims, keepdim=True)
    variance = (images - mean).square().sum(dim=dims, keepdim=True) / (count - 1)
    return mean, variance.sqrt()
