"""The training schemes the paper compares (Sec. 3.1 (a)-(i)), one spec each.

A spec says how f is trained; the loop reads nothing else. Deferred parts (DRS, DRW, M2m) switch
on at the preset's ``deferred_epoch`` and start from a shared warm checkpoint.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..utils import M2mError
from .options import FitOptions


@dataclass(frozen=True)
class MethodSpec:
    name: str
    loss: str = "ce"                   # ce | focal | ldam | la | balanced_softmax (losses.py)
    order: str = "shuffle"             # sampling order before the deferred epoch
    deferred_order: str | None = None  # sampling order from the deferred epoch on (None = unchanged)
    weighting: str = "none"            # class weights: none | inverse | effective
    deferred_weighting: str | None = None  # weights from the deferred epoch on (DRW)
    translate: bool = False            # M2m translation from the deferred epoch on
    smote: bool = False                # train on imbalanced-learn's SMOTE output
    warm: str | None = None            # the warm checkpoint a deferred method starts from: "ce" | "ldam"
    description: str = ""
    # -- what an M2m-style method takes from its pools (pools/rules.py); ablations differ only here --
    pool_rule: str = "accepted"        # accepted | clean | rand | no_reject | no_reject_no_gamma | no_gamma | gamma
    reuse: str | None = None           # read this method's pools instead of translating (no g, no translation)
    fresh: bool = False                # a re-deciding ablation in mode "fresh": it translates (see in_mode)
    generator: str = "g"               # translate with: g | self (f itself, M2m-Self) | ensemble (g + ERM f)
    m2m_overrides: tuple[tuple[str, Any], ...] = ()  # translation parameters fixed by the method (lam=0)
    seed_subset: int | None = None     # seeds of class k0 only from a fixed subset of this size (Table 3)
    online: bool = False               # translate each mini-batch with the current f (the paper's loop)
    paper_table: str = ""              # where the paper reports it ("Table 4", "Table 5", ...)
    variant_of: str = ""               # an ablation of ours with no paper row: the paper row it varies
    # -- baselines published after M2m (issue 19) --
    posthoc: bool = False              # predict argmax z - tau log pi (LA-posthoc): validation and test alike
    cmo: bool = False                  # CutMix minority-weighted images onto each batch (training/cmo.py)
    source: str = ""                   # the paper of a baseline published after M2m ("Menon et al., ICLR 2021")

    @property
    def norm_last(self) -> bool:
        return self.loss == "ldam"

    @property
    def deferred(self) -> bool:
        return self.warm is not None

    def order_at(self, epoch: int, deferred_epoch: int) -> str:
        if self.deferred_order is not None and epoch >= deferred_epoch:
            return self.deferred_order
        return self.order

    def weighting_at(self, epoch: int, deferred_epoch: int) -> str:
        if self.deferred_weighting is not None and epoch >= deferred_epoch:
            return self.deferred_weighting
        return self.weighting

    def translates_at(self, epoch: int, deferred_epoch: int) -> bool:
        """Whether epoch ``epoch`` trains with pool rows (its own translations or reused ones).
        Deferred methods start at the deferred epoch; M2m-RS (not deferred) from epoch 0."""
        if not (self.translate or self.reuse):
            return False
        return epoch >= deferred_epoch if self.deferred else True

    @property
    def uses_pools(self) -> bool:
        return self.translate or self.reuse is not None

    @property
    def redecides(self) -> bool:
        """An ablation defined by a rule over M2m's rows (M2m-Clean, M2m-Rand, M2m-No-Reject, ...):
        it has two modes, ``reuse`` and ``fresh`` (:data:`ABLATION_MODES`)."""
        return self.reuse is not None or self.fresh

    @property
    def mode(self) -> str | None:
        """``reuse`` / ``fresh`` for a re-deciding ablation, None for every other method."""
        return "fresh" if self.fresh else "reuse" if self.reuse is not None else None

    def in_mode(self, mode: str | None) -> "MethodSpec":
        """This re-deciding ablation in ``mode`` (None: as registered, i.e. ``reuse``).

        - ``reuse``: re-decide the stored rows of M2m's pools of the seed (no translation: the x*,
          their draws and g's outputs are M2m's, translated with M2m's f).
        - ``fresh``: translate each deferred epoch with the ablation's own f (as M2m translates),
          then apply the same rule to those rows: the paper's definition. The same spec with
          ``translate=True``, ``reuse=None``, so the translating run (jobs/m2m.py) trains it."""
        if mode is None or mode == self.mode:
            return self
        if mode not in ABLATION_MODES:
            raise M2mError(f"unknown ablation mode {mode!r} for {self.name}; known: {', '.join(ABLATION_MODES)}")
        if not self.redecides:
            raise M2mError(f"{self.name} does not re-decide M2m's rows: it has no {mode!r} mode "
                           f"(modes are for {', '.join(n for n, s in _METHODS.items() if s.redecides)})")
        if mode == "fresh":
            return replace(self, reuse=None, translate=True, fresh=True)
        return _METHODS[self.name]

    @property
    def is_ablation(self) -> bool:
        return bool(self.paper_table) or bool(self.variant_of) or self.online

    @property
    def after_paper(self) -> bool:
        """A baseline published after M2m (LA, LA-posthoc, BalancedSoftmax, CMO, LA-M2m): not one of
        the paper's rows, and not an ablation of M2m."""
        return bool(self.source)

    @property
    def uses_tau(self) -> bool:
        """Whether the method reads ``la_tau`` (the LA loss, or the post-hoc adjustment)."""
        return self.loss == "la" or self.posthoc


_METHODS: dict[str, MethodSpec] = {}
# How a re-deciding ablation gets its rows (MethodSpec.in_mode; params.yaml ``ablations.reuse`` /
# ``ablations.fresh``).
ABLATION_MODES = ("reuse", "fresh")


def register_method(spec: MethodSpec) -> MethodSpec:
    if spec.name in _METHODS:
        raise ValueError(f"method {spec.name!r} is already registered")
    _METHODS[spec.name] = spec
    return spec


def list_methods() -> list[str]:
    return list(_METHODS)


def get_method(name: str, mode: str | None = None) -> MethodSpec:
    """The registered spec of ``name``; with ``mode`` ("reuse" | "fresh", re-deciding ablations
    only), that ablation in that mode (:meth:`MethodSpec.in_mode`)."""
    try:
        spec = _METHODS[name]
    except KeyError:
        raise M2mError(f"unknown method {name!r}; known: {', '.join(_METHODS)}") from None
    return spec.in_mode(mode)


# ERM is deferred-compatible: its plan is a pure function of (seed, epoch), so continuing the warm
# checkpoint gives the same run as training from scratch, without repeating the ERM phase.
register_method(MethodSpec("ERM", warm="ce", description="empirical risk minimisation, no re-balancing"))
register_method(MethodSpec("RS", order="balanced", description="class-balanced re-sampling from epoch 0"))
register_method(MethodSpec("SMOTE", smote=True, description="imbalanced-learn SMOTE on the flattened inputs"))
register_method(MethodSpec("RW", weighting="inverse", description="loss weights 1/N_k"))
register_method(MethodSpec("CB-RW", weighting="effective", description="loss weights from the effective number"))
register_method(MethodSpec("DRS", warm="ce", deferred_order="balanced", description="deferred re-sampling"))
register_method(MethodSpec("DRW", warm="ce", deferred_weighting="effective", description="deferred re-weighting"))
register_method(MethodSpec("Focal", loss="focal", description="focal loss"))
register_method(MethodSpec("LDAM", loss="ldam", description="label-distribution-aware margin loss"))
register_method(MethodSpec("LDAM-DRW", loss="ldam", warm="ldam", deferred_weighting="effective",
                           description="LDAM with deferred re-weighting"))
register_method(MethodSpec("M2m", warm="ce", deferred_order="balanced", translate=True,
                           description="ERM + major-to-minor translation (deferred)"))
# LDAM+M2m (Table 1-2, row "LDAM | M2m"): the LDAM loss and normalised last layer, warm-started from
# the LDAM warm checkpoint (the LDAM-DRW run's first phase), with M2m as the deferred re-balancing in
# place of DRW. No DRW weights on top: M2m already balances the stream (balanced order plus
# translations), and weighting a balanced stream by (1-beta)/(1-beta^N_k) would re-balance twice.
# The release's M2m has no class weights either (its `-c` flag is off in its M2m command).
register_method(MethodSpec("LDAM-M2m", loss="ldam", warm="ldam", deferred_order="balanced", translate=True,
                           description="LDAM loss + major-to-minor translation (deferred)"))


# -- ablations (Sec. 3.4, Tables 3-5, Appendix B), each one rule away from M2m ---------------------------
# Reusing M2m's pools: the same warm start, plan, augmentation and draws as the M2m run of the seed; only
# the rule over the stored rows differs, and nothing is translated (pools/rules.py).
_REUSE = dict(warm="ce", deferred_order="balanced", reuse="M2m")
register_method(MethodSpec("M2m-Clean", pool_rule="clean", paper_table="Table 4", **_REUSE,
                           description="M2m's accepted slots filled with the clean seed x0, labelled k"))
# M2m-Rand is not the paper's row: Table 4's is M2m-RS-Rand (below); this is Rand labelling on the
# deferred M2m pools, a variant of it with no paper value.
register_method(MethodSpec("M2m-Rand", pool_rule="rand", variant_of="M2m-RS-Rand (Table 4)", **_REUSE,
                           description="M2m's accepted x* labelled with a random class other than k and k0"))
register_method(MethodSpec("M2m-No-Reject", pool_rule="no_reject", paper_table="Table 5", **_REUSE,
                           description="the rejection rule of eq. (3) dropped, the gamma threshold kept"))
register_method(MethodSpec("M2m-No-Reject-No-Gamma", pool_rule="no_reject_no_gamma",
                           variant_of="M2m-No-Reject (Table 5)", **_REUSE,
                           description="every finite attempted x* used: no beta test, no gamma threshold"))
register_method(MethodSpec("M2m-No-Gamma", pool_rule="no_gamma", paper_table="Table 5", **_REUSE,
                           description="beta test kept, gamma threshold dropped (gamma = infinity)"))
register_method(MethodSpec("M2m-Gamma", pool_rule="gamma", paper_table="Table 5", **_REUSE,
                           description="M2m's rows re-decided with another gamma (ablation_params.M2m-Gamma.gamma)"))
# With pools of their own (they translate).
_OWN = dict(warm="ce", deferred_order="balanced", translate=True)
register_method(MethodSpec("M2m-Lambda0", m2m_overrides=(("lam", 0.0),), paper_table="Table 4", **_OWN,
                           description="M2m with lambda = 0: no f_k0 term in eq. (2)"))
register_method(MethodSpec("M2m-Self", generator="self", paper_table="Table 5", **_OWN,
                           description="f translates for itself, no g"))
register_method(MethodSpec("M2m-Ensemble", generator="ensemble", paper_table="Table 5", **_OWN,
                           description="g = mean softmax of g and the ERM f of the seed, with a more lenient "
                                       "gamma (Algorithm 1's loss threshold doubled: prob threshold gamma^2)"))
for _n in (10, 50, 100, 200, 500):
    register_method(MethodSpec(f"M2m-Seeds{_n}", seed_subset=_n, paper_table="Table 3", **_OWN,
                               description=f"k0 ~ Q(.|k), then a uniform seed within k0's fixed random subset "
                                           f"of {_n} samples"))
register_method(MethodSpec("M2m-RS", order="balanced", translate=True, paper_table="Table 4",
                           description="M2m from epoch 0 (no deferral), balanced sampling throughout"))
register_method(MethodSpec("M2m-RS-Rand", order="balanced", translate=True, pool_rule="rand", paper_table="Table 4",
                           description="M2m-RS with each accepted x* labelled with a random class other than k, k0"))
register_method(MethodSpec("M2m-Online", online=True, **_OWN,
                           description="M2m translating every mini-batch with the current f (the paper's loop)"))


# -- baselines published after M2m (issue 19): what a user would compare M2m with today -------------
# pi_k = N_k / N is the training set's class prior; tau is train_f.la_tau (1 by default).
register_method(MethodSpec(
    "LA", loss="la", source="Menon et al., ICLR 2021",
    description="logit-adjusted cross entropy: -log softmax(z + tau log pi)_y, trained from scratch"))
# ERM's run (warm="ce": the same weights as ERM of the seed, as ERM is deferred-compatible), with
# every prediction (the validation selection of best.pt included) made from z - tau log pi.
register_method(MethodSpec(
    "LA-posthoc", warm="ce", posthoc=True, source="Menon et al., ICLR 2021",
    description="ERM predicted with post-hoc logit adjustment: argmax_k z_k - tau log pi_k"))
register_method(MethodSpec(
    "BalancedSoftmax", loss="balanced_softmax", source="Ren et al., NeurIPS 2020",
    description="balanced softmax: -log (N_y e^z_y / sum_k N_k e^z_k), trained from scratch"))
register_method(MethodSpec(
    "CMO", cmo=True, source="Park et al., CVPR 2022",
    description="CE + minority-weighted images CutMixed onto the natural-order batch (images only)"))
# LA+M2m, as LDAM-M2m combines LDAM with M2m: the LA loss throughout, warm-started from an LA warm
# phase (warm_f with loss "la"), M2m's balanced order and translations from the deferred epoch on.
# The LA offsets keep the training prior pi, as LDAM-M2m keeps its margins from N_k.
register_method(MethodSpec(
    "LA-M2m", loss="la", warm="la", deferred_order="balanced", translate=True, source="Menon et al. + M2m",
    description="LA loss + major-to-minor translation (deferred)"))


def list_ablations() -> list[str]:
    """The registered ablations of M2m, in registration order."""
    return [name for name, spec in _METHODS.items() if spec.is_ablation]


def available_memory_bytes(meminfo: str = "/proc/meminfo") -> int | None:
    """Memory the OS reports as available now (Linux ``MemAvailable`` of ``meminfo``, in kB), else
    free pages times the page size, else None."""
    try:
        with open(meminfo) as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def smote_bytes(class_counts: np.ndarray, input_shape: tuple[int, ...]) -> int:
    """Size of SMOTE's output as float32: every class over-sampled to N_1, so K * N_1 rows of
    prod(input_shape) features, 4 bytes each (the flattened copy that imbalanced-learn returns)."""
    counts = np.asarray(class_counts, dtype=np.int64)
    return int(len(counts)) * int(counts.max()) * int(math.prod(input_shape)) * 4


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def check_method(method: str | MethodSpec, preset: Any, *, class_counts: np.ndarray | None = None,
                 input_shape: tuple[int, ...] | None = None, options: Any = None,
                 memory_limit: int | None = None, input_kind: str | None = None) -> MethodSpec:
    """Validate a method against the preset, the data and its parameters before any training.

    Returns the spec; raises a one-line M2mError for: an unknown method; a deferred method whose
    deferred epoch leaves no epoch to train (``deferred_epoch >= epochs``) or no warm-up epoch
    (``deferred_epoch == 0``: its warm checkpoint would hold no training); an unknown
    ``weight_reduction``; Focal with gamma < 0;
    effective-number weights with beta outside (0, 1); LDAM with a non-positive margin or scale;
    SMOTE with a class of fewer than 2 samples, ``smote_k_neighbors < 1``, or an output
    (:func:`smote_bytes`) larger than ``memory_limit`` bytes (default ``options.smote_max_bytes``,
    else half the memory available now); LA / LA-posthoc / LA-M2m with a ``la_tau`` that is not a
    finite number >= 0; CMO on inputs that are not images (``input_kind`` "vector", or an
    ``input_shape`` that is not (C, H, W)), or with ``cmo_prob`` outside [0, 1], ``cmo_beta <= 0``,
    or negative ``cmo_start_epoch`` / ``cmo_end_epochs``.
    ``preset`` is a :class:`~.schedule.Preset`; ``options`` a :class:`~.loop.FitOptions` (or None).
    """
    spec = method if isinstance(method, MethodSpec) else get_method(method)
    name = spec.name
    epochs, deferred = int(preset.epochs), int(preset.deferred_epoch)
    if spec.deferred:
        if deferred >= epochs:
            raise M2mError(f"{name} defers to epoch {deferred} but the preset trains {epochs} epochs: "
                           f"no deferred epoch left; set deferred_epoch below {epochs}")
        if deferred <= 0:
            raise M2mError(f"{name} starts from a warm checkpoint but deferred_epoch is {deferred}: "
                           f"no warm-up epoch to train; set deferred_epoch >= 1")
    # one schema: the defaults of FitOptions (params.yaml train_f) when no options are given
    opts = options if options is not None else FitOptions()
    if opts.weight_reduction not in ("mean", "normalized"):
        raise M2mError(f"{name}: weight_reduction must be 'mean' or 'normalized', got {opts.weight_reduction!r}")
    if spec.loss == "focal" and not opts.focal_gamma >= 0:
        raise M2mError(f"{name}: focal_gamma must be >= 0, got {opts.focal_gamma}")
    if "effective" in (spec.weighting, spec.deferred_weighting) and not 0.0 < opts.cb_beta < 1.0:
        raise M2mError(f"{name}: effective-number weights need 0 < cb_beta < 1, got {opts.cb_beta}")
    if spec.loss == "ldam" and not (opts.ldam_max_margin > 0 and opts.ldam_s > 0):
        raise M2mError(f"{name}: LDAM needs ldam_max_margin > 0 and ldam_s > 0, "
                       f"got {opts.ldam_max_margin} and {opts.ldam_s}")
    if spec.uses_tau and not (isinstance(opts.la_tau, (int, float)) and not isinstance(opts.la_tau, bool)
                              and math.isfinite(opts.la_tau) and opts.la_tau >= 0):
        raise M2mError(f"{name}: la_tau must be a finite number >= 0, got {opts.la_tau!r}")
    if spec.cmo:
        shape = tuple(input_shape) if input_shape is not None else None
        if (input_kind is not None and input_kind != "image") or (shape is not None and len(shape) != 3):
            what = input_kind or "non-image"
            raise M2mError(f"{name} pastes a box of one image's pixels onto another (CutMix); these inputs are "
                           f"{what} rows of shape {shape}, text or table features with no pixel grid to cut a "
                           f"box from, so CMO is not defined for them: use LA, BalancedSoftmax or DRS")
        if not 0.0 <= opts.cmo_prob <= 1.0:
            raise M2mError(f"{name}: cmo_prob must be in [0, 1], got {opts.cmo_prob}")
        if not opts.cmo_beta > 0:
            raise M2mError(f"{name}: cmo_beta must be > 0, got {opts.cmo_beta}")
        for key in ("cmo_start_epoch", "cmo_end_epochs"):
            v = getattr(opts, key)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
                raise M2mError(f"{name}: {key} must be an int >= 0, got {v!r}")
    if spec.smote:
        k = opts.smote_k_neighbors
        if not (isinstance(k, int) and k >= 1):
            raise M2mError(f"{name}: smote_k_neighbors must be an int >= 1, got {k!r}")
        if class_counts is not None:
            counts = np.asarray(class_counts)
            if counts.min() < 2:
                raise M2mError(f"{name}: SMOTE needs at least 2 training samples in every class; "
                               f"class {int(np.argmin(counts))} has {int(counts.min())}")
            if input_shape is not None:
                need = smote_bytes(counts, input_shape)
                limit = memory_limit if memory_limit is not None else opts.smote_max_bytes
                if limit is None:
                    avail = available_memory_bytes()
                    limit = avail // 2 if avail is not None else None
                if limit is not None and need > limit:
                    raise M2mError(f"{name}: SMOTE would hold {len(counts)} classes x {int(counts.max())} rows "
                                   f"x {math.prod(input_shape)} features as float32 = {_gib(need)}, over the "
                                   f"memory limit of {_gib(limit)}; use RS or raise train_f.smote_max_bytes")
    return spec
