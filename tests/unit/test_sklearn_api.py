"""M2mOverSampler (m2m_pipeline/sklearn_api.py): hand-computed values on tiny fixed data, and the
peers' own test suites (imbalanced-learn's sampler checks and scikit-learn's estimator checks)
run over it as they are installed."""

from collections import Counter

import numpy as np
import pytest
import torch
from imblearn.pipeline import make_pipeline
from imblearn.utils.estimator_checks import check_param_validation
from imblearn.utils.estimator_checks import parametrize_with_checks as imblearn_checks
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks as sklearn_checks

from m2m_pipeline.sklearn_api import M2mOverSampler

# g trained for a few passes, two translation steps: enough for translations to be accepted on
# the suites' data (1000 x 20, three classes), fast on one core.
SMALL = dict(epochs=3, hidden_size=8, steps=2, step_size=1.0, gamma=0.4, beta=0.9, batch_size=256)


def small(**kw):
    return M2mOverSampler(**{"random_state": 0, **SMALL, **kw})


def blobs(counts=(60, 25, 10), d=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(loc=3.0 * k, scale=1.0, size=(n, d)) for k, n in enumerate(counts)])
    y = np.repeat(np.arange(len(counts)), counts)
    return X.astype(dtype), y


# ---------------------------------------------------------------- the peers' suites

# Checks that cannot pass, with the reason; each is run and must fail (strict xfail).
EXPECTED_FAILED = {
    "check_samplers_pandas_sparse": "sparse input is refused: every x* row is dense (eq. 2 moves every "
                                    "feature), so M2mOverSampler declares input_tags.sparse = False and "
                                    "pandas' sparse columns are refused like a scipy sparse matrix",
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED


def _strict(marked):
    """The suites mark expected failures with a non-strict xfail; make them strict, so a check that
    starts passing is reported (and removed from EXPECTED_FAILED)."""
    marks = list(marked.marks)
    for i, m in enumerate(marks):
        if m.name == "xfail":
            marks[i] = pytest.mark.xfail(reason=m.kwargs.get("reason", ""), strict=True)
    return pytest.param(*marked.values, marks=marks, id=marked.id)


def _suite(parametrize):
    """The parametrize marker of a suite, its expected failures made strict."""
    mark = parametrize([small()], expected_failed_checks=expected_failed_checks).mark
    argnames, argvalues = mark.args
    values = [_strict(v) if hasattr(v, "marks") else v for v in argvalues]
    return pytest.mark.parametrize(argnames, values, **mark.kwargs)


@_suite(imblearn_checks)
def test_imblearn_sampler_checks(estimator, check):
    check(estimator)


@_suite(sklearn_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_imblearn_param_validation_check():
    """imbalanced-learn's check that every parameter has a declared constraint and that a bad type
    or value is refused with the constraint's message (not in its generated list, run here)."""
    check_param_validation("M2mOverSampler", small())


def test_expected_failures_name_real_checks():
    from imblearn.utils.estimator_checks import _yield_sampler_checks

    names = {c.__name__ for c in _yield_sampler_checks(small())}
    assert set(EXPECTED_FAILED) <= names


# ---------------------------------------------------------------- values by hand

def test_seed_probs_are_eq5_of_the_class_counts():
    """counts (10, 4, 1), beta 0.9. Q(k0|k) ∝ 1 - 0.9^((N_k0 - N_k)^+):
    k = 2: gaps (9, 3, 0) -> (1 - 0.9^9, 1 - 0.9^3, 0) = (0.612579511, 0.271, 0), sum 0.883579511,
           Q = (0.693293024, 0.306706976, 0);
    k = 1: gaps (6, 0, 0) -> Q = (1, 0, 0);  k = 0: no larger class -> all zeros."""
    X, y = blobs(counts=(10, 4, 1))
    s = small(beta=0.9)
    s.fit_resample(X, y)
    want = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.6932930238578155, 0.30670697614218445, 0.0]])
    np.testing.assert_allclose(s.seed_probs_, want, rtol=1e-12)


def test_resampled_counts_follow_the_strategy():
    X, y = blobs()
    Xr, yr = small().fit_resample(X, y)
    assert Counter(yr.tolist()) == {0: 60, 1: 60, 2: 60}
    assert np.array_equal(Xr[: len(X)], X) and np.array_equal(yr[: len(y)], y)   # originals first, untouched
    Xr, yr = small(sampling_strategy={1: 40, 2: 33}).fit_resample(X, y)
    assert Counter(yr.tolist()) == {0: 60, 1: 40, 2: 33}
    Xr, yr = small(sampling_strategy="minority").fit_resample(X, y)
    assert Counter(yr.tolist()) == {0: 60, 1: 25, 2: 60}


def test_diagnostics_add_up():
    X, y = blobs()
    s = small()
    Xr, _ = s.fit_resample(X, y)
    assert s.n_attempts_ == len(Xr) - len(X) == 35 + 50
    assert s.n_accepted_ + s.n_duplicates_ == s.n_attempts_
    assert sum(s.reason_counts_.values()) == s.n_attempts_ and s.reason_counts_["accepted"] == s.n_accepted_
    assert s.class_stats_ == {1: {"attempts": 35, "accepted": s.class_stats_[1]["accepted"]},
                              2: {"attempts": 50, "accepted": s.class_stats_[2]["accepted"]}}
    assert s.class_stats_[1]["accepted"] + s.class_stats_[2]["accepted"] == s.n_accepted_
    assert 0 < s.n_accepted_ < s.n_attempts_        # this setting keeps some translations, rejects some
    assert s.accept_rate_ == s.n_accepted_ / s.n_attempts_
    assert not hasattr(s, "sample_indices_")


def test_rejected_slots_are_duplicates_of_their_class():
    """gamma_on='loss' with gamma 0 keeps x* only at a cross entropy of 0: none here, so every new row
    is a copy of a real row of its class (Algorithm 1, line 14), and the reason is gamma."""
    X, y = blobs()
    s = small(gamma_on="loss", gamma=0.0)
    Xr, yr = s.fit_resample(X, y)
    assert s.n_accepted_ == 0 and s.reason_counts_["gamma"] == s.n_attempts_ == 85
    for row, label in zip(Xr[len(X):], yr[len(X):]):
        assert np.any(np.all(X[y == label] == row, axis=1))


def test_largest_class_has_no_seed():
    X, y = blobs()
    s = small(sampling_strategy={0: 70})
    Xr, yr = s.fit_resample(X, y)
    assert s.reason_counts_["no_seed"] == 10 and s.n_accepted_ == 0
    assert all(np.any(np.all(X[y == 0] == r, axis=1)) for r in Xr[len(X):])


def _linear(w: np.ndarray) -> torch.nn.Module:
    lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(w, dtype=torch.float32))
    return lin


def test_translation_by_hand_with_a_linear_g():
    """Binary linear g(x) = W x with w0 = (0, 1), w1 = (1, 0), lambda 0. The gradient of
    CE(g(x), 1) in x is (1 - p1)(w0 - w1), so each normalised step adds eta * (w1 - w0)/||w1 - w0||
    = eta * (1, -1)/sqrt(2): x* = x0 + delta + T * eta * (1, -1)/sqrt(2), with ||delta|| = 0.1.
    gamma 0 keeps every x*; beta 0.5 over a gap of 40 rows accepts with 1 - 0.5^40. The seeds lie on
    a unit grid, so each x* minus the steps is 0.1 from exactly one majority row."""
    gx, gy = np.meshgrid(np.arange(8.0), np.arange(6.0))
    X0 = np.stack([gx.ravel(), gy.ravel()], axis=1)                       # 48 majority rows
    X1 = np.array([[20.0, 20.0 + i] for i in range(8)])                  # 8 minority rows
    X, y = np.concatenate([X0, X1]), np.repeat([0, 1], [48, 8])
    T, eta = 3, 0.5
    s = M2mOverSampler(random_state=1, classifier=_linear(np.array([[0.0, 1.0], [1.0, 0.0]])), steps=T,
                       step_size=eta, lam=0.0, gamma=0.0, beta=0.5, noise_radius=0.1)
    Xr, yr = s.fit_resample(X, y)
    assert s.n_accepted_ == s.n_attempts_ == 40 and (yr[len(X):] == 1).all()
    start = Xr[len(X):] - T * eta * np.array([1.0, -1.0]) / np.sqrt(2.0)
    dist = np.linalg.norm(start[:, None, :] - X0[None, :, :], axis=2)
    np.testing.assert_allclose(dist.min(axis=1), 0.1, atol=1e-5)
    assert (np.sort(dist, axis=1)[:, 1] > 0.8).all()


def test_acceptance_rate_follows_eq3_under_eq5():
    """gamma 0 (prob) keeps every x*, so only the eq. (3) draw rejects. counts (400, 100, 20), beta 0.99:
    class 1 seeds from class 0 only (gap 300): P = 1 - 0.99^300 = 0.9510;
    class 2: p(k0) = 1 - 0.99^gap = 0.97805 (gap 380), 0.55248 (gap 80), Q = p / sum(p) =
    (0.63903, 0.36097), P = sum Q p = 0.82443. Over 300 and 380 slots, 4 binomial sd: 0.05 and 0.08."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(520, 2))
    y = np.repeat([0, 1, 2], [400, 100, 20])
    s = M2mOverSampler(random_state=5, classifier=torch.nn.Linear(2, 3), gamma=0.0, beta=0.99, steps=1)
    s.fit_resample(X, y)
    rate1 = s.class_stats_[1]["accepted"] / 300
    rate2 = s.class_stats_[2]["accepted"] / 380
    assert abs(rate1 - 0.9510) < 0.05 and abs(rate2 - 0.82443) < 0.08
    assert s.reason_counts_["beta"] == s.n_attempts_ - s.n_accepted_ and s.reason_counts_["gamma"] == 0


def test_target_classifier_is_f_of_the_lambda_term():
    X, y = blobs(counts=(60, 10), d=2)
    g = _linear(np.array([[0.0, 1.0], [1.0, 0.0]]))
    kw = dict(random_state=0, classifier=g, steps=3, step_size=0.5, lam=0.5, gamma=0.0, beta=0.5)
    base = M2mOverSampler(**kw).fit_resample(X, y)[0]
    same = M2mOverSampler(target_classifier=_linear(np.array([[0.0, 1.0], [1.0, 0.0]])), **kw).fit_resample(X, y)[0]
    other = M2mOverSampler(target_classifier=_linear(np.array([[3.0, 0.0], [0.0, 0.0]])), **kw).fit_resample(X, y)[0]
    np.testing.assert_array_equal(base, same)            # f defaults to g
    assert not np.allclose(base[len(X):], other[len(X):])
    assert np.array_equal(base[:len(X)], other[:len(X)])


def test_passed_classifier_is_used_and_left_unchanged():
    X, y = blobs(counts=(60, 10), d=2)
    g = _linear(np.array([[0.0, 1.0], [1.0, 0.0]]))
    g.train()
    before = g.weight.detach().clone()
    s = M2mOverSampler(random_state=0, classifier=g, gamma=0.0)
    s.fit_resample(X, y)
    assert s.classifier_ is g and g.training and torch.equal(g.weight, before)
    with pytest.raises(ValueError, match="2 logits"):
        M2mOverSampler(classifier=torch.nn.Linear(2, 3)).fit_resample(X, y)


# ---------------------------------------------------------------- determinism, dtype, pipelines

def test_deterministic_for_a_fixed_random_state():
    X, y = blobs()
    torch.manual_seed(123)
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    a = small(random_state=7).fit_resample(X, y)
    b = small(random_state=7).fit_resample(X, y)
    c = small(random_state=8).fit_resample(X, y)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert torch.equal(torch.random.get_rng_state(), state)    # the global torch stream is left alone
    assert torch.get_num_threads() == threads                   # and so is the thread count


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_dtype_preserved(dtype):
    X, y = blobs(dtype=np.float64)
    X = (X * 10).astype(dtype)
    s = small(step_size=5.0)
    Xr, yr = s.fit_resample(X, y.astype(np.int32))
    assert Xr.dtype == dtype and yr.dtype == np.int32
    if dtype == np.int64:
        assert s.n_accepted_ > 0                               # rounded translations, not only copies


def test_string_labels():
    X, y = blobs()
    labels = np.array(["cat", "dog", "emu"])[y]
    s = small()
    Xr, yr = s.fit_resample(X, labels)
    assert Counter(yr.tolist()) == {"cat": 60, "dog": 60, "emu": 60}
    assert set(s.class_stats_) == {"dog", "emu"}


def test_in_an_imblearn_pipeline_and_grid_search():
    X, y = blobs(counts=(80, 20), d=4)
    pipe = make_pipeline(StandardScaler(), small(), LogisticRegression())
    pipe.fit(X, y)
    assert pipe.named_steps["m2moversampler"].n_attempts_ == 60          # 80 - 20, fitted on all of X
    assert set(pipe.predict(X)) == {0, 1} and pipe.named_steps["logisticregression"].n_features_in_ == 4
    search = GridSearchCV(pipe, {"m2moversampler__lam": [0.0, 0.5], "m2moversampler__beta": [0.9, 0.99]}, cv=2,
                          scoring="balanced_accuracy")
    search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4 and np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.named_steps["m2moversampler"].n_attempts_ == 60
    assert search.best_params_["m2moversampler__lam"] in (0.0, 0.5)
