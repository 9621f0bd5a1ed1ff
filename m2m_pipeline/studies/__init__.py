"""In-process studies for ``benchmarks/``: the DAG's jobs called in one Python process on data built
in memory, in the DAG's folder layout under a work folder; not DVC stages (nothing here is a stage's
dependency).

- ``seeds``: per seed, g and the warm phases once, then any method from them, evaluated
  (``train_seed_models``, ``run_method``; was experiment.py);
- ``grid``: the validation grid over M2m's beta, lambda and gamma (Sec. 3.1) and the text edit that
  writes the choice into params.yaml (was selection.py).
"""
