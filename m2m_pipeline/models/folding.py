"""Eval-mode copies of a network for input-gradient work (translation, eq. 2 of the paper).

Translation differentiates g and f with respect to their input only, with both nets in eval mode.
Two things make that cheaper without changing the function computed:
- frozen parameters: autograd then neither keeps the activations that only weight gradients need
  nor builds graph nodes for them;
- batch norm folded into the convolution before it: in eval mode BN is the fixed affine map
  y = (x - mu) / sqrt(var + eps) * w + b per channel, so conv followed by BN equals one conv with
  weights W * w / sqrt(var + eps) and bias (c - mu) * w / sqrt(var + eps) + b. One pass over the
  activations instead of two, forward and backward. The result is the same function up to float
  rounding (measured in docs/performance.md, "Translation speed").

``inference_copy(model)`` builds the copy once per weights version and caches it, so a translator
that is called batch after batch with the same g and f folds them once.
"""

from __future__ import annotations

import copy
import weakref

from torch import nn

from .nets import Classifier

_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module]]" = weakref.WeakKeyDictionary()


def _weights_key(model: nn.Module) -> tuple:
    """Changes whenever any parameter or buffer is replaced or updated in place (an optimizer step,
    BN running statistics, load_state_dict, a move to another device)."""
    return tuple((t.data_ptr(), t._version, t.device.type) for t in model.state_dict(keep_vars=True).values())


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _fuse_conv_bn(module: nn.Module) -> nn.Module:
    from torch.fx.experimental.optimization import fuse

    if not has_batchnorm(module):
        return module
    try:
        return fuse(module, inplace=True)
    except Exception:  # not symbolically traceable (data-dependent control flow): keep it as is
        return module


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A frozen eval-mode copy of ``model`` computing the same function with fewer passes: every
    Conv2d -> BatchNorm2d pair folded into one Conv2d (torch.fx's conv-BN fusion). A network
    torch.fx cannot trace keeps its BNs. A :class:`Classifier` keeps its (normalize, net)
    structure, so translation can still normalise the input once for g and f.

    (Folding the MLP's input normalisation into its first linear layer was measured too: no
    measurable gain on Reuters, and larger x* differences; not kept, docs/performance.md.)"""
    model = copy.deepcopy(model).eval()
    if isinstance(model, Classifier):
        model.net = _fuse_conv_bn(model.net)
    else:
        model = _fuse_conv_bn(model)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def foldable(model: nn.Module) -> bool:
    """Whether :func:`fold_batchnorm` removes a pass from ``model``."""
    return has_batchnorm(model)


def inference_copy(model: nn.Module) -> nn.Module:
    """``model`` with frozen parameters and BN folded, for input-gradient work in eval mode.

    A model with nothing to fold is returned itself (freezing is then done by the caller around
    the call, see :class:`frozen`); others get a cached folded copy, rebuilt when their weights
    change.
    """
    if not foldable(model):
        return model
    key = _weights_key(model)
    hit = _CACHE.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    folded = fold_batchnorm(model)
    _CACHE[model] = (key, folded)
    return folded


class frozen:
    """Context manager: ``requires_grad`` off for the parameters of ``models`` (and restored after),
    so autograd builds no graph for weight gradients."""

    def __init__(self, *models: nn.Module):
        self.params = list({id(p): p for m in models for p in m.parameters()}.values())

    def __enter__(self) -> "frozen":
        self.flags = [p.requires_grad for p in self.params]
        for p in self.params:
            p.requires_grad_(False)
        return self

    def __exit__(self, *exc) -> None:
        for p, flag in zip(self.params, self.flags):
            p.requires_grad_(flag)


__all__ = ["fold_batchnorm", "foldable", "frozen", "has_batchnorm", "inference_copy"]
