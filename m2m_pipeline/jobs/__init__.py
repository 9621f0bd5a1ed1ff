"""The pipeline's jobs: the one layer that cli/ and stages/ (and studies/) call. One module per kind,
each importing only what it runs (so a DVC stage's dependencies, derived from its imports, are
exactly the code that can change its output):

- ``prepare``: run a dataset's recipe once and write it (the only job that runs a recipe);
- ``data``: load a prepared dataset;
- ``train``: pretrain g, warm f, train f with a method that uses no pool, resume of a run folder;
- ``m2m``: train f with a translating method (M2m, LDAM-M2m and the ablations with pools of their own);
- ``ablate``: train f with an ablation that re-decides another run's pools (no translation);
- ``evaluate``: test a finished run;
- ``generate``: translate one epoch's pool on its own (``m2m-pipeline generate``);
- ``dispatch``: any method by name (``train-f``, the studies), the inputs a method starts from in
  the DAG's layout, and the translation backend built from params;
- ``catalog``: the dataset and method registries as the CLI lists and checks them.
"""
