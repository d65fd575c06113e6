"""Image encoders (conv net, torchvision ResNet) and the conv decoder of the ML-VAE.

Both encoders map a normalised image batch (N, 3, H, W) to a feature vector (N, hidden_dim);
the latent heads live in `model.py` (which may use a second, narrower ConvEncoder for the content
posterior). The conv net is sized for 64 px on a CPU: five convolutions
(four stride-2 stages, one extra 3x3 at 8x8 px), BatchNorm + ReLU, then one linear layer; at the
default width 16 a 64-image training step of the whole ML-VAE takes ~60 ms on 2 CPU cores.
At 128 px one more stride-2 stage is added in front.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# ImageNet statistics: the model normalises its [0, 1] input inside the graph with these, so
# apps only divide by 255 (contract: data_tools.image.preprocess.to_model_input).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    padding = (kernel - stride + 1) // 2 if stride == 2 else kernel // 2
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ConvEncoder(nn.Module):
    """64 px: 3 -> w (32 px) -> 2w (16) -> 4w (8) -> 4w (8, 3x3) -> 8w (4) -> linear(hidden).

    128 px adds a w -> w stride-2 stage after the first; 32 px (the content encoder of
    ModelConfig.content_downsample 2) starts at the 2w stage."""

    def __init__(self, image_size: int, width: int, hidden_dim: int) -> None:
        super().__init__()
        if image_size not in (32, 64, 128):
            raise ValueError(f"ConvEncoder supports image_size 32, 64 or 128, got {image_size}")
        w = width
        layers = [conv_bn_relu(3, w, 4, 2)] if image_size >= 64 else []
        if image_size == 128:
            layers.append(conv_bn_relu(w, w, 4, 2))
        layers += [conv_bn_relu(w if layers else 3, 2 * w, 4, 2), conv_bn_relu(2 * w, 4 * w, 4, 2),
                   conv_bn_relu(4 * w, 4 * w, 3, 1), conv_bn_relu(4 * w, 8 * w, 4, 2)]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(8 * w * 4 * 4, hidden_dim), nn.ReLU(inplace=True))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(images))  # (N, hidden_dim)


class ResNetEncoder(nn.Module):
    """torchvision ResNet-18/34 trunk (global-average pooled) -> linear(hidden)."""

    def __init__(self, depth: int, hidden_dim: int, imagenet_weights: str = "") -> None:
        super().__init__()
        from torchvision.models import resnet18, resnet34

        if depth not in (18, 34):
            raise ValueError(f"ResNetEncoder depth must be 18 or 34, got {depth}")
        trunk = (resnet18 if depth == 18 else resnet34)(weights=None)  # never downloads
        if imagenet_weights:
            path = Path(imagenet_weights)
            if not path.is_file():
                raise ValueError(
                    f"imagenet_weights={str(path)!r} is not a file; give the path of a local "
                    f"torchvision resnet{depth} state dict (.pth) or leave it empty for random init"
                )
            state = torch.load(path, map_location="cpu", weights_only=True)
            missing, unexpected = trunk.load_state_dict(state, strict=False)
            unexpected = [k for k in unexpected if not k.startswith("fc.")]
            missing = [k for k in missing if not k.startswith("fc.")]
            if missing or unexpected:
                raise ValueError(f"{path}: not a resnet{depth} state dict (missing {missing[:5]}, "
                                 f"unexpected {unexpected[:5]})")
        else:
            print(f"resnet{depth}: no --imagenet-weights given, random initialisation "
                  "(weights are never downloaded)")
        trunk.fc = nn.Identity()
        self.trunk = trunk
        self.fc = nn.Sequential(nn.Linear(512, hidden_dim), nn.ReLU(inplace=True))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.trunk(images))  # (N, hidden_dim)


class ConvDecoder(nn.Module):
    """(N, latent_dim) -> image (N, 3, S, S) in [0, 1], S = 4 x 2^k >= 16: linear to 8w x 4 x 4,
    then transposed convs doubling the size (4 -> 8 -> ... -> S), halving the channels down to w,
    and a sigmoid at the end (64 px: 8w, 4w, 2w, w -> 3; 32 px: 8w, 4w, 2w -> 3)."""

    def __init__(self, latent_dim: int, image_size: int, width: int) -> None:
        super().__init__()
        stages = int(image_size).bit_length() - 3  # doublings from 4 px
        if image_size < 16 or 4 << stages != image_size:
            raise ValueError(f"ConvDecoder draws 4 x 2^k >= 16 px, got {image_size}")
        w = width
        self.base_channels = 8 * w
        self.fc = nn.Sequential(nn.Linear(latent_dim, 8 * w * 4 * 4), nn.ReLU(inplace=True))
        channels = [max(8 * w >> k, w) for k in range(stages)]  # 8w, 4w, 2w, w, w, ...
        ups: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            ups += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True)]
        ups += [nn.ConvTranspose2d(channels[-1], 3, 4, 2, 1), nn.Sigmoid()]
        self.ups = nn.Sequential(*ups)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = self.fc(latent).view(latent.shape[0], self.base_channels, 4, 4)  # (N, 8w, 4, 4)
        return self.ups(x)  # (N, 3, S, S)


def build_encoder(backbone: str, image_size: int, width: int, hidden_dim: int,
                  imagenet_weights: str = "") -> nn.Module:
    if backbone == "conv":
        return ConvEncoder(image_size, width, hidden_dim)
    if backbone in ("resnet18", "resnet34"):
        return ResNetEncoder(int(backbone[6:]), hidden_dim, imagenet_weights)
    raise ValueError(f"backbone={backbone!r}; choose 'conv', 'resnet18' or 'resnet34'")
