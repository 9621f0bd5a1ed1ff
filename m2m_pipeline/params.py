"""The params.yaml schema, and reading the file into the library's typed configs (for stages/,
cli/ and studies/; the jobs never read params.yaml).

One schema (:data:`SCHEMA`, below) validates every value of params.yaml once, when
:func:`load_params` reads the file (or :func:`validate_params` checks a mapping built in code): a
bad value is a one-line M2mError that names its key, e.g.
``presets.digits.batch_size must be an int >= 2, got 0``. The accessors (:func:`preset_for`,
:func:`m2m_config`, :func:`fit_options`, :func:`prepare_options`) then build the typed configs
(``Preset``, ``TranslationConfig``, ``FitOptions``: each layer's own dataclass) from values already
known to be sound; only values given beside the file (``m2m_config``'s overrides, the CLI's
``--seed`` and ``--epoch``) are checked where they come in.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from .checks import Check, fail, int_in, int_list, mapping, name_list, number_in, one_of, text
from .datasets import dataset_preset
from .pools.config import TranslationConfig
from .training.options import FitOptions
from .training.schedule import Preset
from .training.sizing import AUTO, AUTO_KEYS, fill_auto, has_auto
from .training.methods import get_method, list_ablations, list_methods
from .utils import M2mError

DEFAULT_PARAMS = Path("params.yaml")

# The largest accepted m2m.step_size (an L2 distance in input space). It is larger than the diameter
# of every bounded input of the registry (a [0, 1] image of 3x224x224 pixels: sqrt(150528) ~ 388), so
# one step of it already leaves the data; anything larger is a typo (1e30) or an overflow in waiting.
MAX_STEP_SIZE = 1000.0
MAX_STEPS = 10_000


# -- the schema ------------------------------------------------------------------------------------

# Every key of a section, with its check. A section's keys beyond these are refused unless the
# section's dataclass (``fields_of``) declares them; those are checked by the dataclass itself.
M2M_KEYS: dict[str, Check] = {
    "steps": int_in(0, MAX_STEPS),
    "step_size": number_in(0.0, MAX_STEP_SIZE, lo_open=True),
    "lam": number_in(0.0),
    "gamma": number_in(0.0),                  # <= 1 as well when gamma_on is prob: see _check_m2m
    "gamma_on": one_of("prob", "loss"),
    "beta": number_in(0.0, 1.0, hi_open=True),   # eq. (3): beta in [0, 1); 0 accepts every gap > 0
    "seed_scope": one_of("batch", "dataset"),
    "noise_radius": number_in(0.0, MAX_STEP_SIZE),
    "batch_size": int_in(1),
    "rows_per_shard": int_in(1),
    "max_non_finite": number_in(0.0, 1.0),
    "refresh_batches": int_in(0),
}

PRESET_KEYS: dict[str, Check] = {
    "model": text(),
    "epochs": int_in(1),
    "batch_size": int_in(2),                  # 1 breaks batch norm, <= 0 never trains
    "lr": number_in(0.0, lo_open=True),
    "momentum": number_in(0.0, 1.0, hi_open=True),
    "weight_decay": number_in(0.0),
    "warmup_epochs": int_in(0),
    "milestones": int_list(1, increasing=True, distinct=True),
    "lr_factor": number_in(0.0, lo_open=True),
    "deferred_epoch": int_in(0),
    "model_args": mapping,
    "m2m": mapping,                           # checked key by key with M2M_KEYS
    "eval_batch_size": int_in(1),
}
PRESET_REQUIRED = ("model", "epochs", "batch_size")

TRAIN_F_KEYS: dict[str, Check] = {
    "methods": name_list(list_methods),
    "focal_gamma": number_in(0.0),
    "cb_beta": number_in(0.0, 1.0, hi_open=True),
    "ldam_max_margin": number_in(0.0, lo_open=True),
    "ldam_s": number_in(0.0, lo_open=True),
    "smote_k_neighbors": int_in(1),
    "smote_max_bytes": int_in(1, nullable=True),
    "weight_reduction": one_of("mean", "normalized"),
    "la_tau": number_in(0.0),
    "cmo_prob": number_in(0.0, 1.0),
    "cmo_beta": number_in(0.0, lo_open=True),
    "cmo_start_epoch": int_in(0),
    "cmo_end_epochs": int_in(0),
    "extra": mapping,
}

# The warm phases the DVC pipeline trains (stages/dvc.yaml.in, warm_f's matrix).
DVC_WARM_LOSSES = ("ce", "ldam")

# ``pools.store``: ``all`` keeps every attempt's x* in the pools; ``accepted`` only the accepted
# rows' (docs/performance.md, "Pool bytes at scale"), which M2m-No-Reject and M2m-No-Gamma cannot reuse.
POOLS_KEYS: dict[str, Check] = {
    "store": one_of("all", "accepted"),
}

TRANSLATE_KEYS: dict[str, Check] = {
    "workers": int_in(0, nullable=True),
    "scheduler": text(nullable=True),
}

# Top-level sections. ``ablations``, ``ablation_params`` and ``translate`` are only type-checked
# here: their owners (pools/rules.py, the distributed translation) read the rest.
SECTIONS: dict[str, Check] = {
    "dataset": text(),
    "data_root": text(nullable=True),
    "seeds": int_list(0, distinct=True, non_empty=True),
    "prepare": mapping,
    "presets": mapping,
    "pretrain_g": mapping,
    "m2m": mapping,
    "train_f": mapping,
    "train_m2m": mapping,
    "evaluate": mapping,
    "translate": mapping,
    "pools": mapping,
    "ablations": mapping,
    "ablation_params": mapping,
}


def ablation_param_checks(method: str) -> dict[str, Check]:
    """The one schema of ``ablation_params.<method>``, from the method registry: an ablation that
    re-decides pools with another gamma (pool_rule ``gamma``) takes ``gamma``; the other re-deciding
    ablations take nothing; an ablation that translates takes the translation keys (:data:`M2M_KEYS`)."""
    spec = get_method(method)
    if spec.reuse is not None:
        return {"gamma": M2M_KEYS["gamma"]} if spec.pool_rule == "gamma" else {}
    if spec.translate:
        fields = _field_names(TranslationConfig)
        return {k: c for k, c in M2M_KEYS.items() if k in fields}
    return {}


def check_ablation_params(method: str, value: Any) -> dict[str, Any]:
    """``ablation_params.<method>`` checked against :func:`ablation_param_checks` (unknown keys
    refused, bools are not numbers); raises a one-line M2mError naming the key."""
    prefix = f"ablation_params.{method}"
    section = dict(mapping(prefix, value if value is not None else {}))
    checks = ablation_param_checks(method)
    unknown = sorted(set(section) - set(checks))
    if unknown:
        allowed = ", ".join(checks) if checks else "none"
        raise M2mError(f"{prefix}: unknown key(s) {unknown}; allowed: {allowed}")
    return {k: checks[k](f"{prefix}.{k}", v) for k, v in section.items()}


def _reuse_ablations() -> list[str]:
    return [m for m in list_ablations() if get_method(m).reuse is not None]


def _translate_ablations() -> list[str]:
    return [m for m in list_ablations() if get_method(m).translate]


# The ablations a DAG runs, by how each gets its rows. A re-deciding ablation (M2m-Clean, M2m-Rand,
# M2m-No-Reject, ...) is listed under its mode: ``ablations.reuse`` re-decide the M2m run's stored
# rows (no g, no translation), ``ablations.fresh`` translate with their own f and then apply the same
# rule (the paper's definition; they depend on g and the translation code). ``ablations.translate``
# are the ablations with pools of their own (one mode only).
ABLATIONS_KEYS: dict[str, Check] = {
    "reuse": name_list(_reuse_ablations),
    "fresh": name_list(_reuse_ablations),
    "translate": name_list(_translate_ablations),
}
ABLATION_MODE_HELP = ("reuse (re-decide M2m's stored rows), fresh (translate with the ablation's own f, then "
                      "the same rule), translate (ablations with pools of their own)")


def _check_ablations(section: dict[str, Any]) -> dict[str, Any]:
    """``ablations``: one list per mode (:data:`ABLATIONS_KEYS`); an unknown mode, or a re-deciding
    ablation listed under both modes (their runs would share one folder), is a one-line M2mError."""
    unknown = sorted(set(section) - set(ABLATIONS_KEYS))
    if unknown:
        raise M2mError(f"ablations: unknown mode(s) {unknown}; known: {ABLATION_MODE_HELP}")
    out = _check_keys("ablations", section, ABLATIONS_KEYS, set())
    both = sorted(set(out.get("reuse") or []) & set(out.get("fresh") or []))
    if both:
        raise M2mError(f"ablations: {both} listed under both reuse and fresh; pick one mode per ablation "
                       f"(benchmarks/reuse_fidelity.py runs both side by side)")
    return out


def ablation_modes(params: Mapping[str, Any]) -> dict[str, str]:
    """{ablation: mode} of the re-deciding ablations params ``ablations`` runs ("reuse" | "fresh")."""
    section = params.get("ablations") or {}
    return {**{m: "reuse" for m in section.get("reuse") or []}, **{m: "fresh" for m in section.get("fresh") or []}}
SCHEMA = {"sections": SECTIONS, "presets.<name>": PRESET_KEYS, "m2m": M2M_KEYS, "train_f": TRAIN_F_KEYS,
          "translate": TRANSLATE_KEYS, "pools": POOLS_KEYS}


def _field_names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _check_keys(prefix: str, section: dict[str, Any], checks: dict[str, Check], allowed: set[str],
                strict: bool = True, where: str | None = None) -> dict[str, Any]:
    """Check each key of ``section`` (named ``prefix.key`` in errors, ``key`` for an empty prefix);
    unknown keys are refused when ``strict``. ``where`` names the section in that refusal."""
    unknown = sorted(set(section) - allowed - set(checks))
    if unknown and strict:
        raise M2mError(f"unknown key(s) {unknown} under {where or prefix}; "
                       f"known: {sorted(allowed | set(checks))}")
    return {k: (checks[k](f"{prefix}.{k}" if prefix else k, v) if k in checks else v) for k, v in section.items()}


def _check_m2m(prefix: str, section: dict[str, Any]) -> dict[str, Any]:
    # ``store`` is a TranslationConfig field set from ``pools.store``, not an ``m2m`` key
    out = _check_keys(prefix, section, M2M_KEYS, _field_names(TranslationConfig) - {"store"})
    if out.get("gamma_on", "prob") == "prob" and "gamma" in out and out["gamma"] > 1.0:
        raise fail(f"{prefix}.gamma", "a finite number in [0, 1] when gamma_on is prob", section["gamma"])
    return out


def _check_preset(prefix: str, section: dict[str, Any]) -> dict[str, Any]:
    # ``auto`` (a bring-your-own dataset's preset): sized from the prepared data by preset_for
    autos = {k: AUTO for k in AUTO_KEYS if section.get(k) == AUTO}
    out = _check_keys(prefix, {k: v for k, v in section.items() if k not in autos}, PRESET_KEYS, _field_names(Preset))
    missing = [k for k in PRESET_REQUIRED if k not in out and k not in autos]
    if missing:
        raise M2mError(f"{prefix} misses required key(s) {missing}")
    out["m2m"] = _check_m2m(f"{prefix}.m2m", out.get("m2m") or {})
    if autos:   # the cross-checks run once the auto values are filled in (preset_for)
        out.update(autos)
        return out
    epochs = out["epochs"]
    if out.get("deferred_epoch", 0) > epochs:
        raise fail(f"{prefix}.deferred_epoch", f"an int in 0..epochs ({epochs})", out["deferred_epoch"])
    if out.get("warmup_epochs", 0) > epochs:
        raise fail(f"{prefix}.warmup_epochs", f"an int in 0..epochs ({epochs})", out["warmup_epochs"])
    late = [m for m in out.get("milestones", []) if m > epochs]
    if late:
        raise fail(f"{prefix}.milestones", f"a list of epochs in 1..epochs ({epochs})", section["milestones"])
    return out


def validate_params(params: Any, source: str = "params") -> dict[str, Any]:
    """The params mapping with every value checked against :data:`SCHEMA` (numbers normalised:
    ints where an int is meant, floats where a real number is). Raises M2mError naming the first
    bad key. ``source`` names the file in messages about the whole mapping."""
    if not isinstance(params, Mapping):
        raise M2mError(f"params file {source} must hold a mapping at the top level")
    out = _check_keys("", copy.deepcopy(dict(params)), SECTIONS, set(), where=f"the top level of {source}")
    presets = out.get("presets") or {}
    out["presets"] = {}
    for name, preset in presets.items():
        out["presets"][name] = _check_preset(f"presets.{name}", mapping(f"presets.{name}", preset))
    if "m2m" in out:
        out["m2m"] = _check_m2m("m2m", out["m2m"])
    for name, preset in out["presets"].items():   # a preset's m2m overrides on top of the top-level m2m
        _check_m2m(f"presets.{name}.m2m (over m2m)", {**(out.get("m2m") or {}), **preset["m2m"]})
    if "train_f" in out:
        out["train_f"] = _check_keys("train_f", out["train_f"], TRAIN_F_KEYS, _field_names(FitOptions))
    if "train_m2m" in out:
        out["train_m2m"] = _check_keys("train_m2m", out["train_m2m"], {"methods": name_list(list_methods)}, set())
        for m in out["train_m2m"].get("methods") or []:
            warm = get_method(m).warm
            if warm is not None and warm not in DVC_WARM_LOSSES:
                raise M2mError(f"train_m2m.methods: {m} continues a warm phase trained with loss {warm!r}, which "
                               f"the DVC pipeline does not train (warm_f trains {', '.join(DVC_WARM_LOSSES)}); "
                               f"run it with benchmarks/reproduce.py --methods {m}")
    if "evaluate" in out:
        out["evaluate"] = _check_keys("evaluate", out["evaluate"], {"methods": name_list()}, set())
    if "pretrain_g" in out:
        out["pretrain_g"] = _check_keys("pretrain_g", out["pretrain_g"], {"seed": int_in(0)}, set())
    if "ablations" in out:
        out["ablations"] = _check_ablations(out["ablations"])
    if "ablation_params" in out:
        unknown = sorted(set(out["ablation_params"]) - set(list_ablations()))
        if unknown:
            raise M2mError(f"ablation_params: unknown ablation(s) {unknown}; known: {', '.join(list_ablations())}")
        out["ablation_params"] = {k: check_ablation_params(k, v) for k, v in out["ablation_params"].items()}
    if "pools" in out:
        out["pools"] = _check_keys("pools", out["pools"], POOLS_KEYS, set())
    if "translate" in out:   # the distributed-translation settings may grow: unknown keys pass
        out["translate"] = _check_keys("translate", out["translate"], TRANSLATE_KEYS, set(), strict=False)
    if "prepare" in out:
        prepared = {}
        for name, options in out["prepare"].items():
            options = mapping(f"prepare.{name}", options)
            if "rho" in options:   # the imbalance ratio N_max / N_min of the CIFAR-LT recipe
                options["rho"] = number_in(1.0)(f"prepare.{name}.rho", options["rho"])
            prepared[name] = options
        out["prepare"] = prepared
    return out


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read and validate a params file (see :func:`validate_params`)."""
    path = Path(path)
    if not path.is_file():
        raise M2mError(f"params file {path} not found; run from the project root or pass --params")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise M2mError(f"params file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(params, dict):
        raise M2mError(f"params file {path} must hold a mapping at the top level")
    return validate_params(params, str(path))


def check_seed(value: int, name: str = "--seed") -> int:
    """A seed given on the command line: an int >= 0 (random streams need non-negative keys)."""
    return int_in(0)(name, value)


def check_epoch(value: int, preset: Preset, name: str = "--epoch") -> int:
    """An epoch given on the command line: 0-based, inside the preset's schedule."""
    return int_in(0, preset.epochs - 1)(name, value)


def _preset_section(params: dict[str, Any], dataset: str) -> dict[str, Any]:
    key = dataset_preset(dataset)
    presets = params.get("presets", {})
    if key not in presets:
        raise M2mError(f"params.yaml has no preset {key!r} (for dataset {dataset!r}) under 'presets'")
    return presets[key]   # checked by validate_params


def preset_for(params: dict[str, Any], dataset: str, prepared: Any = None) -> Preset:
    """The dataset's preset. Its ``auto`` values (a bring-your-own dataset's) are sized from the
    prepared data (training/sizing.py): ``prepared`` is a PreparedData or its folder, by default
    the dataset's layout place ``data/prepared/<slug>``; the values params.yaml sets stay."""
    key = dataset_preset(dataset)
    section = _preset_section(params, dataset)
    if has_auto(section):
        section = _check_preset(f"presets.{key} (auto values sized from the data)",
                                fill_auto(section, _prepared_facts(dataset, prepared)))
    return Preset.from_params(section, key)


def _prepared_facts(dataset: str, prepared: Any) -> dict[str, Any]:
    """input_kind, n_train and input_shape of a PreparedData or of the prepared folder."""
    if prepared is not None and not isinstance(prepared, (str, Path)):
        return {"input_kind": prepared.input_kind, "n_train": len(prepared.train),
                "input_shape": list(prepared.input_shape)}
    from .layout import Layout
    from .store import prepared_summary

    path = Path(prepared) if prepared is not None else Layout(dataset).prepared
    return prepared_summary(path, why=f"presets.{dataset_preset(dataset)} has `auto` values, sized from "
                                      f"the prepared data: prepare the dataset first")


def report_runs(params: dict[str, Any]) -> tuple[list[str], list[int]]:
    """(methods, seeds) whose metrics the report reads: the runs the DAG evaluates now."""
    methods = list((params.get("evaluate") or {}).get("methods") or [])
    ablations = params.get("ablations") or {}
    methods += [m for m in (list(ablations.get("reuse") or []) + list(ablations.get("fresh") or [])
                            + list(ablations.get("translate") or []))
                if m not in methods]
    if not methods:
        raise M2mError("params evaluate.methods is empty or missing: the report has no runs to read")
    return methods, list(params.get("seeds") or [0])


def prepare_options(params: dict[str, Any], dataset: str) -> dict[str, Any]:
    return dict((params.get("prepare") or {}).get(dataset_preset(dataset)) or {})


_WARNED_OVERRIDES: set[str] = set()


def _warn_overrides(top: dict[str, Any], preset: dict[str, Any], key: str) -> None:
    """Say, once a process, that a preset's m2m value hides the top-level one (``-S m2m.beta=...``
    does nothing on a dataset whose preset sets beta)."""
    for name, value in preset.items():
        path = f"presets.{key}.m2m.{name}"
        if name in top and top[name] != value and path not in _WARNED_OVERRIDES:
            _WARNED_OVERRIDES.add(path)
            print(f"warning: {path} = {value!r} overrides m2m.{name} = {top[name]!r} for this dataset; "
                  f"change {path} to change it", file=sys.stderr)


def m2m_config(params: dict[str, Any], dataset: str, **overrides: Any) -> TranslationConfig:
    """The ``m2m`` section, with the dataset preset's ``m2m`` overrides (e.g. eta = 1.0 on Reuters)
    and then explicit ``overrides`` (None values ignored) on top; ``store`` from ``pools.store``."""
    top = dict(params.get("m2m") or {})   # checked by validate_params, with each preset's overrides
    preset_m2m = dict(_preset_section(params, dataset).get("m2m") or {})   # no auto value sizing needed
    _warn_overrides(top, preset_m2m, dataset_preset(dataset))
    merged = {**top, **preset_m2m}
    given = {k: v for k, v in overrides.items() if v is not None}
    if given:   # values from outside the file: checked here, alone and with the file's
        merged.update(_check_m2m("m2m", given))
        merged = _check_m2m("m2m", merged)
    store = (params.get("pools") or {}).get("store")
    if store is not None:
        merged["store"] = store
    return TranslationConfig.from_params(merged)


def fit_options(params: dict[str, Any]) -> FitOptions:
    section = dict(params.get("train_f") or {})   # checked by validate_params
    section.pop("methods", None)
    return FitOptions(**section)
