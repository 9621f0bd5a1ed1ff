"""M2m as an imbalanced-learn over-sampler: the scikit-learn face of the package.

``M2mOverSampler`` runs Algorithm 1 of the paper once over a table (X, y): it trains g by ERM
(or takes a trained torch classifier), then fills every class up to the sampling strategy with
translations of seeds from larger classes, kept when g is confident and the eq. (3) draw allows,
else duplicates of real samples of the class. The math is the package's own: eq. (2) steps and
the translator in ``translate.py``, eq. (3), eq. (5) and the gamma test in ``acceptance.py``.
"""

from __future__ import annotations

from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from imblearn.over_sampling.base import BaseOverSampler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from .acceptance import GAMMA_ON, REASONS, range_bound, seed_class_probs
from .models import create_model
from .translate import M2mTranslator
from .utils import rng_for

# Rows translated per call of the translator: bounds memory, changes no number (every draw of
# a slot is made before the batching).
_TRANSLATE_BATCH = 1024


@contextmanager
def _torch_threads(n: int):
    """torch's intra-op threads set to ``n`` for the block and restored after: one thread makes
    the float reductions, and so the result, independent of the machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _start_noise(rng: np.random.Generator, n: int, d: int, radius: float) -> np.ndarray:
    """Per row a uniform [-1, 1]^d draw rescaled to L2 norm ``radius`` (as the pools' start noise)."""
    u = rng.uniform(-1.0, 1.0, size=(n, d))
    norm = np.linalg.norm(u, axis=1, keepdims=True)
    return (u * (radius / np.where(norm > 0, norm, 1.0))).astype(np.float32)


def train_erm_mlp(X: np.ndarray, y: np.ndarray, num_classes: int, *, hidden_size: int, epochs: int, lr: float,
                  batch_size: int, weight_decay: float, seed: int) -> nn.Module:
    """g by ERM: the package's ``mlp`` (input normalisation from X, one hidden layer of
    ``hidden_size``) trained with Adam on the cross entropy over (X, y) as given (imbalanced).
    A pure function of its arguments on the CPU: the weights come from ``seed`` (stream ``init``),
    the batch order from ``seed`` (stream ``shuffle``); call it with torch on one thread."""
    Xf = np.asarray(X, dtype=np.float32)
    mean = Xf.mean(axis=0)
    std = Xf.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng_for(seed, "init").integers(0, 2**63 - 1)))
        model = create_model("mlp", input_shape=(Xf.shape[1],), num_classes=num_classes, mean=mean.tolist(),
                             std=std.tolist(), hidden=hidden_size)
    xt, yt = torch.from_numpy(Xf), torch.from_numpy(np.asarray(y, dtype=np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    order_rng = rng_for(seed, "shuffle")
    n = len(Xf)
    bs = max(1, min(batch_size, n))
    model.train()
    for _ in range(epochs):
        order = torch.from_numpy(order_rng.permutation(n))
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


class M2mOverSampler(BaseOverSampler):
    """Over-sample with M2m (Kim, Jeong, Shin, CVPR 2020): translate majority seeds into the minority.

    This is the **one-shot form of M2m**: Algorithm 1 run once over (X, y) before any downstream
    model trains. g is an ERM classifier of (X, y) (trained here, or ``classifier``), and f in the
    lambda term of eq. (2), L(g; x, k) + lambda * f_k0(x), is g itself unless ``target_classifier``
    is given. In the paper f is the network being trained and translation runs inside its training
    loop (the package's DVC pipeline does that); here the downstream estimator of the pipeline is
    any scikit-learn model, so no f exists while the data is re-sampled.

    For every class k that the sampling strategy asks ``n_k`` more rows of, each new row is one
    over-sampled slot of Algorithm 1:

    1. a seed class k0 ~ Q(k0 | k) proportional to 1 - beta^((N_k0 - N_k)^+) (eq. 5; only larger
       classes have Q > 0), and a uniformly drawn row x0 of class k0;
    2. x* from x0 + noise (L2 norm ``noise_radius``) by ``steps`` normalised gradient steps of size
       ``step_size`` on eq. (2) (``translate.translation_steps`` through ``M2mTranslator``);
    3. x* is kept when g is confident (``gamma_on="prob"``: softmax(g(x*))_k >= gamma, the authors'
       release; ``"loss"``: L(g; x*, k) <= gamma, Algorithm 1's line 13) and the eq. (3) Bernoulli
       allows (a uniform draw < 1 - beta^((N_k0 - N_k)^+)), and x* is finite and within 10 x the
       data's largest absolute value;
    4. otherwise the slot gets a duplicate of a uniformly drawn real row of class k (line 14).

    Rows are appended after the original ones, class by class. Synthetic rows have no source row,
    so there is no ``sample_indices_``. Features are used as given: translation moves x in the
    input's own units (g normalises inside), so put a scaler before the sampler when features
    have very different scales.

    Parameters (keyword-only)
    -------------------------
    sampling_strategy : float, str, dict or callable, default="auto"
        imbalanced-learn's: which classes to fill, and up to how many rows.
    random_state : int, RandomState instance or None, default=None
        Every draw (g's weights and batch order, seed classes and rows, start noise, beta draws,
        duplicates) derives from it; an int gives the same output on every call, bit for bit.
    steps : int, default=10
        T, the gradient steps of eq. (2) (Sec. 3.1: 10).
    step_size : float, default=0.1
        eta, the L2 length of each step, in input units (Sec. 3.1: 0.1).
    lam : float, default=0.5
        lambda, the weight of f_k0(x) in eq. (2) (Sec. 3.1 grid: 0.01, 0.1, 0.5).
    gamma : float, default=0.9
        The confidence threshold (grid: 0.9, 0.99); in [0, 1] under ``gamma_on="prob"``.
    gamma_on : {"prob", "loss"}, default="prob"
        What gamma thresholds: g's probability of k at x* (release) or its cross entropy (paper).
    beta : float, default=0.999
        The rejection rate of eq. (3) and the seed distribution of eq. (5), in [0, 1). Small tables
        have small class gaps N_k0 - N_k: at beta = 0.999 a gap of 100 rows is accepted with
        probability 0.095, so most slots become duplicates; 0.99 accepts it with 0.63.
    noise_radius : float, default=0.1
        L2 norm of the start noise delta added to x0 (line 7).
    hidden_size : int, default=64
        Width of g's hidden layer (a one-hidden-layer ReLU MLP) when g is trained here.
    epochs : int, default=50
        Passes over (X, y) when g is trained here.
    lr : float, default=1e-3
        Adam's learning rate for g.
    batch_size : int, default=64
        Mini-batch size for g.
    weight_decay : float, default=5e-5
        Adam's L2 weight decay for g (the paper's MLP setting).
    classifier : torch.nn.Module or None, default=None
        A trained torch classifier to use as g instead of training one: float32 rows of X in,
        one logit per class out, class j being the j-th of ``np.unique(y)``. It is not modified.
    target_classifier : torch.nn.Module or None, default=None
        f of the lambda term, same contract; None: f = g.

    Attributes
    ----------
    sampling_strategy_ : dict
        Rows to add per class label (imbalanced-learn's).
    classifier_ : torch.nn.Module
        The g used (the one trained here, or ``classifier``).
    seed_probs_ : ndarray of shape (n_classes, n_classes)
        Q(k0 | k) of eq. (5) from the class counts, row k (classes in ``np.unique(y)`` order).
    n_attempts_ : int
        Over-sampled slots (one translation attempt each, or ``no_seed`` when no class is larger).
    n_accepted_ : int
        Slots filled with a translation x*.
    n_duplicates_ : int
        Slots filled with a duplicate of a real sample of their class.
    reason_counts_ : dict
        Slots per outcome: accepted, beta, gamma, non_finite, no_seed, out_of_range.
    accept_rate_ : float
        n_accepted_ / n_attempts_ (NaN when nothing was added).
    class_stats_ : dict
        Per class label: {"attempts", "accepted"}.
    n_features_in_, feature_names_in_
        As in scikit-learn.
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "steps": [Interval(Integral, 0, None, closed="left")],
        "step_size": [Interval(Real, 0, 1000, closed="right")],
        "lam": [Interval(Real, 0, None, closed="left")],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "gamma_on": [StrOptions(set(GAMMA_ON))],
        "beta": [Interval(Real, 0, 1, closed="left")],   # eq. (3): [0, 1)
        "noise_radius": [Interval(Real, 0, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "classifier": [nn.Module, None],
        "target_classifier": [nn.Module, None],
    }

    def __init__(self, *, sampling_strategy="auto", random_state=None, steps=10, step_size=0.1, lam=0.5,
                 gamma=0.9, gamma_on="prob", beta=0.999, noise_radius=0.1, hidden_size=64, epochs=50, lr=1e-3,
                 batch_size=64, weight_decay=5e-5, classifier=None, target_classifier=None):
        super().__init__(sampling_strategy=sampling_strategy)
        self.random_state = random_state
        self.steps = steps
        self.step_size = step_size
        self.lam = lam
        self.gamma = gamma
        self.gamma_on = gamma_on
        self.beta = beta
        self.noise_radius = noise_radius
        self.hidden_size = hidden_size
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.classifier = classifier
        self.target_classifier = target_classifier

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False        # x* rows are dense: sparse input is refused, not densified
        tags.sampler_tags.sample_indices = False
        return tags

    def _check_X_y(self, X, y, accept_sparse=None):
        return super()._check_X_y(X, y, accept_sparse=False)

    def _translator(self, max_abs: float) -> M2mTranslator:
        tr = M2mTranslator(steps=int(self.steps), step_size=float(self.step_size), lam=float(self.lam),
                           gamma=float(self.gamma), gamma_on=self.gamma_on, beta=float(self.beta),
                           input_range=None, max_abs=max_abs)
        tr.check_params()   # the cross-parameter rule: gamma in [0, 1] under gamma_on="prob"
        return tr

    @staticmethod
    def _check_torch_classifier(model: nn.Module, x: torch.Tensor, num_classes: int, what: str) -> None:
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model(x[:2])
        finally:
            model.train(was)
        if out.dim() != 2 or out.shape[1] != num_classes:
            raise ValueError(f"{what} must map rows of X to {num_classes} logits (one per class of y), "
                             f"got output of shape {tuple(out.shape)}")

    def _fit_resample(self, X, y):
        classes, y_idx = np.unique(y, return_inverse=True)
        counts = np.bincount(y_idx, minlength=len(classes)).astype(np.int64)
        K = len(classes)
        translator = self._translator(range_bound(float(np.abs(X).max())))
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        Xf = np.ascontiguousarray(X, dtype=np.float32)
        xt = torch.from_numpy(Xf)

        with _torch_threads(1):
            if self.classifier is None:
                g = train_erm_mlp(Xf, y_idx, K, hidden_size=self.hidden_size, epochs=self.epochs, lr=self.lr,
                                  batch_size=self.batch_size, weight_decay=self.weight_decay, seed=seed)
            else:
                g = self.classifier
                self._check_torch_classifier(g, xt, K, "classifier")
            f = g if self.target_classifier is None else self.target_classifier
            if self.target_classifier is not None:
                self._check_torch_classifier(f, xt, K, "target_classifier")
            new_x, new_y, stats = self._fill(g, f, X, Xf, y_idx, classes, counts, translator, seed)

        self.classifier_ = g
        self.seed_probs_ = np.stack([seed_class_probs(counts, k, float(self.beta)) for k in range(K)])
        reasons = {name: 0 for name in REASONS}
        for name, c in stats["reasons"].items():
            reasons[name] += c
        self.reason_counts_ = reasons
        self.n_attempts_ = int(sum(s["attempts"] for s in stats["classes"].values()))
        self.n_accepted_ = int(sum(s["accepted"] for s in stats["classes"].values()))
        self.n_duplicates_ = self.n_attempts_ - self.n_accepted_
        self.accept_rate_ = self.n_accepted_ / self.n_attempts_ if self.n_attempts_ else float("nan")
        self.class_stats_ = stats["classes"]

        if not new_x:
            return X.copy(), y.copy()
        X_res = np.concatenate([X, *new_x])
        y_res = np.concatenate([y, *new_y])
        return X_res, y_res

    @staticmethod
    def _as_dtype(x_star: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """x* (float32) in the input's dtype: integer inputs get x* rounded to the nearest value."""
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            x_star = np.clip(np.rint(x_star), info.min, info.max)
        return x_star.astype(dtype)

    def _fill(self, g, f, X, Xf, y_idx, classes, counts, translator, seed):
        """The new rows of every class of the sampling strategy (Algorithm 1, lines 2-17), in X's dtype."""
        rows_of = [np.flatnonzero(y_idx == k) for k in range(len(classes))]
        new_x, new_y, class_stats, reasons = [], [], {}, {}
        for label, n_add in self.sampling_strategy_.items():
            n_add = int(n_add)
            if n_add <= 0:
                continue
            k = int(np.searchsorted(classes, label))
            q = seed_class_probs(counts, k, float(self.beta))
            u = rng_for(seed, "seed", k).random((n_add, 2))
            dup = rows_of[k][(rng_for(seed, "plan", k).random(n_add) * len(rows_of[k])).astype(np.int64)]
            out = X[dup].copy()                     # line 14 wherever no x* is kept: real rows, exact
            accepted = np.zeros(n_add, dtype=bool)
            if q.sum() <= 0:                        # k is a largest class: no seed to translate from
                reasons["no_seed"] = reasons.get("no_seed", 0) + n_add
            else:
                cq = np.cumsum(q)
                k0 = np.searchsorted(cq, u[:, 0] * cq[-1], side="right").astype(np.int64)   # eq. (5)
                seed_rows = np.array([rows_of[c][int(v * len(rows_of[c]))] for c, v in zip(k0, u[:, 1])],
                                     dtype=np.int64)
                noise = _start_noise(rng_for(seed, "noise", k), n_add, Xf.shape[1], float(self.noise_radius))
                u_beta = rng_for(seed, "beta", k).random(n_add)
                for s in range(0, n_add, _TRANSLATE_BATCH):
                    sl = slice(s, s + _TRANSLATE_BATCH)
                    res = translator.translate(
                        g, f, torch.from_numpy(Xf[seed_rows[sl]]), torch.full((len(seed_rows[sl]),), k),
                        torch.from_numpy(k0[sl]), class_counts=counts, noise=torch.from_numpy(noise[sl]),
                        u_beta=torch.from_numpy(u_beta[sl]))
                    acc = res.accepted.numpy()
                    out[sl][acc] = self._as_dtype(res.x.numpy()[acc], X.dtype)
                    accepted[sl] = acc
                for name, c in translator.reason_counts_.items():
                    reasons[name] = reasons.get(name, 0) + int(c)
                translator.reset()
            new_x.append(out)
            new_y.append(np.full(n_add, classes[k], dtype=classes.dtype))
            class_stats[classes[k].item()] = {"attempts": n_add, "accepted": int(accepted.sum())}
        return new_x, new_y, {"classes": class_stats, "reasons": reasons}


__all__ = ["M2mOverSampler", "train_erm_mlp"]
