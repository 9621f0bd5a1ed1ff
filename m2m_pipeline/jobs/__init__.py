"""The pipeline's jobs, one module per kind, each importing only what it runs (so a DVC stage's
dependencies, derived from its imports, are exactly the code that can change its output):

- ``data``: prepare a dataset, load a prepared one;
- ``train``: pretrain g, warm f, train f with a method that uses no pool, resume of a run folder;
- ``m2m``: train f with a translating method (M2m, LDAM-M2m and the ablations with pools of their own);
- ``ablate``: train f with an ablation that re-decides another run's pools (no translation);
- ``evaluate``: test a finished run.
"""
