"""Model registry: ``create_model(name, input_shape=..., num_classes=..., mean=..., std=...)``."""

from __future__ import annotations

import math
from typing import Any, Callable

from torch import nn

from ..utils import M2mError
from .layers import NormedLinear, Normalize
from .nets import MLP, Classifier, PreActResNet18, ResNet50, ResNetCifar, SmallCNN

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable:
    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


@register_model("mlp")
def _mlp(input_shape: tuple[int, ...], num_classes: int, **kw: Any) -> nn.Module:
    return MLP(math.prod(input_shape), num_classes, **kw)


@register_model("small_cnn")
def _small_cnn(input_shape: tuple[int, ...], num_classes: int, **kw: Any) -> nn.Module:
    return SmallCNN(input_shape[0], num_classes, **kw)


@register_model("resnet32")
def _resnet32(input_shape: tuple[int, ...], num_classes: int, **kw: Any) -> nn.Module:
    """He et al.'s ResNet-32 with the parameter-free option-A shortcut (the paper's release)."""
    return ResNetCifar(input_shape[0], num_classes, depth=32, shortcut="A", **kw)


@register_model("resnet32_proj")
def _resnet32_proj(input_shape: tuple[int, ...], num_classes: int, **kw: Any) -> nn.Module:
    """ResNet-32 with 1x1 conv + BN projection shortcuts (option B) where the shape changes."""
    return ResNetCifar(input_shape[0], num_classes, depth=32, shortcut="projection", **kw)


@register_model("preact_resnet18")
def _preact18(input_shape: tuple[int, ...], num_classes: int, **kw: Any) -> nn.Module:
    return PreActResNet18(input_shape[0], num_classes, **kw)


@register_model("resnet50")
def _resnet50(input_shape: tuple[int, ...], num_classes: int, **kw: Any) -> nn.Module:
    return ResNet50(input_shape[0], num_classes, **kw)


def create_model(name: str, *, input_shape: tuple[int, ...], num_classes: int, mean: list[float],
                 std: list[float], **kwargs: Any) -> nn.Module:
    """Build ``name`` behind an input-normalisation layer. ``norm_last=True`` gives LDAM's
    cosine-normalised last layer."""
    if name not in _REGISTRY:
        raise M2mError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    try:
        net = _REGISTRY[name](tuple(input_shape), int(num_classes), **kwargs)
    except TypeError as exc:
        raise M2mError(f"model {name!r}: bad model_args {kwargs}: {exc}") from None
    return Classifier(Normalize(mean, std, image=len(input_shape) == 3), net)


__all__ = ["NormedLinear", "create_model", "list_models", "register_model"]
