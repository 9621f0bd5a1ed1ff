"""DVC stage `check_params`: check all of params.yaml before any other stage runs.

Every other stage depends on this stage's output, so DVC runs it first; it tracks the whole
params file, so any edit (`dvc exp run -S m2m.gamma=2`, a hand edit) runs it again. DVC deletes a
stage's outputs just before it runs the stage: a bad value refused here costs only this stage's
tiny output, never a prepared dataset, a run folder or a pool (issue 20, item 9). Checked: the
schema of m2m_pipeline/params.py (every section, presets, ablation_params), then what the DAG
builds from it for params `dataset`: its preset (every key DVC tracks spelled out), its
translation parameters, the train_f options, the prepare options, and an ablation_params entry for
every ablation of `ablations` (dvc.yaml tracks `ablation_params.<method>`).

The output holds only what makes the check pass or fail, so it is byte-identical for every valid
file: a valid edit re-runs this stage and nothing downstream of it.
"""

import json
from dataclasses import fields
from pathlib import Path

from m2m_pipeline.params import fit_options, m2m_config, prepare_options, preset_for
from m2m_pipeline.training.schedule import Preset
from m2m_pipeline.utils import M2mError

from _common import run_stage


def add_args(p):
    p.add_argument("--out", required=True, help="the check's record (a tiny JSON file)")


def check(params):
    dataset = params.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise M2mError("params dataset must name a dataset (`m2m-pipeline data list`)")
    from m2m_pipeline.datasets import dataset_preset
    from m2m_pipeline.training.sizing import has_auto

    kind, colon, where = dataset.partition(":")
    if colon:   # DVC keys paths and params by the name: a path in it cannot be one (docs/datasets.md)
        raise M2mError(f"params dataset {dataset!r}: in the DVC DAG give the kind and the path apart: "
                       f"dvc exp run -S dataset={kind} -S data_root={where}")

    key = dataset_preset(dataset)
    # a bring-your-own preset's `auto` values are sized from the prepared data, which does not exist
    # yet: the schema checked the values it sets; the filled-in preset is checked when a stage sizes it
    auto = has_auto((params.get("presets") or {}).get(key) or {})
    preset = None if auto else preset_for(params, dataset)
    missing = sorted({f.name for f in fields(Preset)} - set(params["presets"][key]))
    if missing:
        raise M2mError(f"presets.{key} lacks {missing}: every preset spells out every key (DVC tracks "
                       f"presets.<dataset>.<key> one by one)")
    m2m_config(params, dataset)
    fit_options(params)
    prepare_options(params, dataset)
    if not params.get("seeds"):
        raise M2mError("params seeds is empty or missing: the DAG trains one run per seed")
    ablations = params.get("ablations") or {}
    given = params.get("ablation_params") or {}
    for group, methods in ablations.items():
        for method in methods or []:
            if method not in given:
                raise M2mError(f"ablations.{group} lists {method} but ablation_params has no entry for it; add "
                               f"`{method}: {{}}` (dvc.yaml tracks ablation_params.{method})")
    return preset


def work(args, params):
    check(params)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp-check")
    tmp.write_text(json.dumps({"params": "params.yaml", "valid": True}) + "\n")
    tmp.replace(out)
    print(f"params.yaml: valid (dataset {params['dataset']})")


if __name__ == "__main__":
    run_stage(__doc__, add_args, work)
