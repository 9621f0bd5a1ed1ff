"""Reading params.yaml into the library's typed configs (used by stages/ and the CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .datasets import dataset_preset
from .pools import TranslationConfig
from .training import FitOptions, Preset
from .utils import M2mError

DEFAULT_PARAMS = Path("params.yaml")


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise M2mError(f"params file {path} not found; run from the project root or pass --params")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise M2mError(f"params file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(params, dict):
        raise M2mError(f"params file {path} must hold a mapping at the top level")
    return params


def preset_for(params: dict[str, Any], dataset: str) -> Preset:
    key = dataset_preset(dataset)
    presets = params.get("presets", {})
    if key not in presets:
        raise M2mError(f"params.yaml has no preset {key!r} (for dataset {dataset!r}) under 'presets'")
    return Preset.from_params(presets[key], key)


def prepare_options(params: dict[str, Any], dataset: str) -> dict[str, Any]:
    return dict((params.get("prepare") or {}).get(dataset_preset(dataset)) or {})


def m2m_config(params: dict[str, Any], dataset: str, **overrides: Any) -> TranslationConfig:
    """The ``m2m`` section, with the dataset preset's ``m2m`` overrides (e.g. eta = 1.0 on Reuters)
    and then explicit ``overrides`` (None values ignored) on top."""
    merged = dict(params.get("m2m") or {})
    merged.update(preset_for(params, dataset).m2m)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return TranslationConfig.from_params(merged)


def fit_options(params: dict[str, Any]) -> FitOptions:
    section = dict(params.get("train_f") or {})
    section.pop("methods", None)
    known = set(FitOptions.__dataclass_fields__) - {"extra"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise M2mError(f"unknown train_f parameter(s) {unknown}; known: {sorted(known | {'methods'})}")
    return FitOptions(**section)
