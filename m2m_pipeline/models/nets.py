"""The architectures of the paper's Appendix A, plus a small CNN for the embedded default."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Normalize, classifier_head


class MLP(nn.Module):
    """2-layer fully-connected network (Twitter, Reuters: hidden 256, ReLU)."""

    def __init__(self, in_dim: int, num_classes: int, hidden: int = 256, norm_last: bool = False):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(in_dim, hidden), nn.ReLU(inplace=True))
        self.head = classifier_head(hidden, num_classes, norm_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class SmallCNN(nn.Module):
    """Two conv blocks and a linear head: enough for 8x8 digits, fast on a CPU."""

    def __init__(self, in_ch: int, num_classes: int, width: int = 32, norm_last: bool = False):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = classifier_head(2 * width, num_classes, norm_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


SHORTCUTS = ("A", "projection")


class _BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a skip connection (He et al. 2016, Sec. 4.2).

    Where the block changes width or resolution, the skip is either He et al.'s option A
    (``shortcut="A"``: keep every second pixel, append zero channels; no parameters, the CIFAR
    ResNets of He et al. and of the paper's release) or a 1x1 conv + BN projection
    (``shortcut="projection"``, option B).
    """

    def __init__(self, cin: int, cout: int, stride: int, shortcut: str = "A"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.stride = stride
        self.extra_channels = 0
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != cout:
            if shortcut == "A":
                if cout < cin:
                    raise ValueError(f"option-A shortcut cannot shrink channels ({cin} -> {cout})")
                self.extra_channels = cout - cin
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def skip(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut is not None:
            return self.shortcut(x)
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.extra_channels:
            # zero channels split evenly before and after the input's (He et al.'s option A)
            before = self.extra_channels // 2
            x = F.pad(x, (0, 0, 0, 0, before, self.extra_channels - before))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.skip(x))


class ResNetCifar(nn.Module):
    """ResNet-(6n+2) for 32x32 inputs (He et al. 2016, Sec. 4.2); n = 5 gives ResNet-32, the
    paper's CIFAR and CelebA model (Sec. 3.1). Widths 16/32/64, option-A shortcuts by default
    (464,154 parameters for 10 classes, He et al.'s 0.46M), Kaiming-normal init of every conv and
    of the linear head."""

    def __init__(self, in_ch: int, num_classes: int, depth: int = 32, norm_last: bool = False,
                 shortcut: str = "A"):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {shortcut!r}")
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        layers, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(n):
                layers.append(_BasicBlock(cin, cout, stride if i == 0 else 1, shortcut))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = classifier_head(64, num_classes, norm_last)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(self.stem(x))
        return self.head(F.adaptive_avg_pool2d(out, 1).flatten(1))


class _PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + skip


class PreActResNet18(nn.Module):
    """Pre-activation ResNet-18 for 32x32 inputs (SUN397 in Appendix A)."""

    def __init__(self, in_ch: int, num_classes: int, width: int = 64, norm_last: bool = False):
        super().__init__()
        self.stem = nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)
        layers, cin = [], width
        for mult, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
            for i in range(2):
                layers.append(_PreActBlock(cin, width * mult, stride if i == 0 else 1))
                cin = width * mult
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(cin)
        self.head = classifier_head(cin, num_classes, norm_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.layers(self.stem(x))))
        return self.head(F.adaptive_avg_pool2d(out, 1).flatten(1))


class ResNet50(nn.Module):
    """torchvision's ResNet-50 (ImageNet-LT, Appendix C), randomly initialised."""

    def __init__(self, in_ch: int, num_classes: int, norm_last: bool = False):
        super().__init__()
        from torchvision.models import resnet50

        net = resnet50(weights=None)
        if in_ch != 3:
            net.conv1 = nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False)
        feat = net.fc.in_features
        net.fc = nn.Identity()
        self.body = net
        self.head = classifier_head(feat, num_classes, norm_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class Classifier(nn.Module):
    """Normalisation followed by a network: the input is the raw float input of the dataset."""

    def __init__(self, normalize: Normalize, net: nn.Module):
        super().__init__()
        self.normalize = normalize
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))
