"""Tests of m2m_pipeline/reports; ``run`` builds one run's metrics record as ``evaluate`` writes it."""


def run(method, bacc, gm=50.0, seed=None, dataset="reuters", recalls=(100.0, 0.0)):
    """A metrics record of ``method`` with test bACC ``bacc`` at the best-validation epoch (and
    ``bacc`` - 2 at the last), as ``m2m-pipeline evaluate`` writes it."""
    test = {"bacc": bacc, "gm": gm, "major": 90.0, "minor": bacc - 1, "per_class_recall": list(recalls)}
    sel = {"epoch": 14, "val": dict(test), "test": test}
    out = {"dataset": dataset, "method": method, "best_val": sel, "last": {**sel, "test": {**test, "bacc": bacc - 2}}}
    if seed is not None:
        out["seed"] = seed
    return out
