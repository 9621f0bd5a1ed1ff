"""The one place that spells the pipeline's folder and file names (pure Python, no package import).

Every caller builds its paths here: the CLI's defaults, the DVC stages, the pool browser, the
report and the in-process studies, so a run the CLI trains is the run DVC's DAG would train::

    data/prepared/<slug>                       prepared dataset (zarr)
    runs/<slug>/<name>-seed<s>                 a run folder: g-seed<s>, warm-ce-seed<s>, M2m-seed<s>, ...
    runs/<slug>/<name>-seed<s>/best.pt|last.pt its checkpoints (best validation epoch, last epoch)
    pools/<slug>/<name>-seed<s>/epoch_<e>      one epoch's translation pool of a run
    pools/<slug>/generate/epoch_<e>            a pool made by `m2m-pipeline generate`
    metrics/<slug>/<name>-seed<s>.json         a run's test metrics
    metrics/summary-<slug>.json                the flat summary `dvc metrics show` reads
    plots/<slug>/<name>-seed<s>.json           a run's per-epoch history (a DVC plot)
    predictions/<slug>/<name>-seed<s>.npz      test predictions and features (the paper's figures)
    reports/<slug>[-last]                      report.md, report.csv, ablations.md

``<slug>`` is :func:`dataset_slug` of the dataset name as the user gives it (``text:/data/tx`` ->
``text_data_tx``). stages/dvc.yaml.in spells the same paths with ``${dataset}`` (DVC cannot call
Python); tests/system/test_dvc.py checks that the two agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

PREPARED = Path("data/prepared")
RUNS = Path("runs")
POOLS = Path("pools")
METRICS = Path("metrics")
PLOTS = Path("plots")
PREDICTIONS = Path("predictions")
REPORTS = Path("reports")

BEST_CHECKPOINT = "best.pt"   # the checkpoint of the best validation bACC (g is used at it, as the authors' release)
LAST_CHECKPOINT = "last.pt"   # the checkpoint of the last finished epoch (warm starts and resumes read it)
GENERATE_RUN = "generate"     # the run folder of pools made by `m2m-pipeline generate`

_RUN_NAME = re.compile(r"^(?P<name>.+?)-seed(?P<seed>\d+)$")
_EPOCH_NAME = re.compile(r"^epoch_(?P<epoch>\d+)$")


def dataset_slug(name: str) -> str:
    """A folder name for a dataset name (``text:/a/b`` -> ``text_a_b``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def dataset_matches(recorded: str, given: str) -> bool:
    """Whether a file recording dataset ``recorded`` (a PreparedData name: ``table:rows.csv``) belongs
    to the dataset the user names ``given``: the same name, or a bring-your-own dataset named by its
    kind alone (``table``, the DVC form: ``data_root`` holds the file) or by its path
    (``table:/data/rows.csv``), whose recipes record the kind and the folder or file name only."""
    if recorded == given:
        return True
    kind, sep, where = given.partition(":")
    r_kind, r_sep, r_where = recorded.partition(":")
    if not r_sep or r_kind != kind:
        return False
    return not sep or Path(where.rstrip("/")).name == r_where


def run_name(name: str, seed: int) -> str:
    """A run's folder (and metrics / history file stem): ``M2m-seed0``, ``g-seed1``, ``warm-ce-seed0``."""
    return f"{name}-seed{int(seed)}"


def parse_run_name(stem: str) -> tuple[str, int | None]:
    """(name, seed) of a run folder or file stem; (stem, None) when it has no ``-seed<N>`` suffix."""
    m = _RUN_NAME.match(stem)
    return (m.group("name"), int(m.group("seed"))) if m else (stem, None)


def warm_name(loss: str) -> str:
    """The run name of f's warm phase with ``loss`` (``ce``, ``ldam``)."""
    return f"warm-{loss}"


def epoch_name(epoch: int) -> str:
    """One epoch's pool folder inside a run's pools folder: ``epoch_40``."""
    return f"epoch_{int(epoch)}"


def parse_epoch_name(name: str) -> int | None:
    """The epoch of an ``epoch_<e>`` folder name, else None."""
    m = _EPOCH_NAME.match(name)
    return int(m.group("epoch")) if m else None


def metrics_file(name: str, seed: int) -> str:
    return f"{run_name(name, seed)}.json"


def history_file(name: str, seed: int) -> str:
    return f"{run_name(name, seed)}.json"


def predictions_file(name: str, seed: int) -> str:
    return f"{run_name(name, seed)}.npz"


@dataclass(frozen=True)
class Layout:
    """Every path of one dataset's pipeline under ``root`` (the project folder; a study's work folder)."""

    dataset: str
    root: Path = Path(".")

    @property
    def slug(self) -> str:
        return dataset_slug(self.dataset)

    def _at(self, top: Path) -> Path:
        return Path(self.root) / top / self.slug   # Path(".") / "runs" is "runs"

    # -- folders of the dataset --
    @property
    def prepared(self) -> Path:
        return self._at(PREPARED)

    @property
    def runs(self) -> Path:
        return self._at(RUNS)

    @property
    def pools_root(self) -> Path:
        return self._at(POOLS)

    @property
    def metrics_dir(self) -> Path:
        return self._at(METRICS)

    @property
    def plots_dir(self) -> Path:
        return self._at(PLOTS)

    @property
    def predictions_dir(self) -> Path:
        return self._at(PREDICTIONS)

    # -- one run's paths --
    def run(self, name: str, seed: int) -> Path:
        return self.runs / run_name(name, seed)

    def g(self, seed: int) -> Path:
        return self.run("g", seed)

    def g_checkpoint(self, seed: int) -> Path:
        """g at its best validation epoch: what every translating method translates with."""
        return self.g(seed) / BEST_CHECKPOINT

    def warm(self, loss: str, seed: int) -> Path:
        return self.run(warm_name(loss), seed)

    def warm_checkpoint(self, loss: str, seed: int) -> Path:
        return self.warm(loss, seed) / LAST_CHECKPOINT

    def pools(self, name: str, seed: int) -> Path:
        """The pools folder of a translating run (its epoch pools inside)."""
        return self.pools_root / run_name(name, seed)

    def pool(self, name: str, seed: int, epoch: int) -> Path:
        return self.pools(name, seed) / epoch_name(epoch)

    def generate_pool(self, epoch: int) -> Path:
        return self.pools_root / GENERATE_RUN / epoch_name(epoch)

    def metrics(self, name: str, seed: int) -> Path:
        return self.metrics_dir / metrics_file(name, seed)

    def history(self, name: str, seed: int) -> Path:
        return self.plots_dir / history_file(name, seed)

    def predictions(self, name: str, seed: int) -> Path:
        return self.predictions_dir / predictions_file(name, seed)

    # -- the dataset's report --
    def report_dir(self, which: str = "best_val") -> Path:
        return Path(self.root) / REPORTS / (self.slug + ("-last" if which == "last" else ""))

    @property
    def summary(self) -> Path:
        return Path(self.root) / METRICS / f"summary-{self.slug}.json"


def metrics_folder(metrics_root: str | Path, dataset: str) -> Path:
    """``<metrics_root>/<slug>``: the folder of a dataset's metrics files under any metrics root."""
    return Path(metrics_root) / dataset_slug(dataset)


def prepared_of_pool(pool: str | Path) -> Path | None:
    """The prepared dataset a pool at its layout place was made from: ``<root>/pools/<slug>/<run>/epoch_<e>``
    -> ``<root>/data/prepared/<slug>``; None for a pool elsewhere (``train-f --out X`` puts it in X/pools)."""
    pool = Path(pool)
    if parse_epoch_name(pool.name) is None or len(pool.parts) < 4 or pool.parent.parent.parent.name != POOLS.name:
        return None
    return pool.parent.parent.parent.parent / PREPARED / pool.parent.parent.name


__all__ = ["BEST_CHECKPOINT", "GENERATE_RUN", "LAST_CHECKPOINT", "Layout", "dataset_matches", "dataset_slug", "epoch_name",
           "history_file", "metrics_file", "metrics_folder", "parse_epoch_name", "parse_run_name",
           "predictions_file", "prepared_of_pool", "run_name", "warm_name"]
