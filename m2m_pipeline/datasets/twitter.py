"""Twitter part-of-speech tokens as a classification dataset (Sec. 3.3 and Appendix A, "Twitter").

Source (Gimpel et al. 2011, the "oct27" splits): ``tweets-train.txt`` (training),
``tweets-dev.txt`` (validation) and ``tweets-devtest.txt`` (test), one token a line as
``TOKEN<TAB>TAG`` with a blank line between tweets.

Recipe:

* Every token is one sample labelled with its tag (Appendix A).
* Classes: the tags of the training file that occur in the test file. Appendix A "discarded two
  classes with zero test samples"; on the real files those are ``M`` and ``Y``, leaving 23 classes
  and 14,614 training tokens (largest/smallest 2219/15). A test tag that never occurs in training
  is an error; validation tokens whose tag is not a class are dropped (counted in
  ``meta["val_dropped"]``).
* Class order: tags sorted by Python string order (punctuation tags such as ``!``, ``#``, ``,``
  first, then the letters).
* Tokens are used exactly as the files spell them (the released files are already lower-cased,
  with ``<@MENTION>`` and ``<URL-domain>`` placeholders); no further normalisation.
* Input: a 50-d vector per token (``input_range`` None: unbounded; ``mean`` [0.0], ``std`` [1.0]).

  - With ``embedding=PATH``: a text file ``WORD v1 ... v50``, one word a line (a first line of two
    integers, word2vec's ``COUNT DIM`` header, is skipped). A token is looked up as spelled, then
    lower-cased; a token found in neither form gets the file's unknown-word vector when it has one
    (``<unk>``, ``UNKNOWN``, ``*UNKNOWN*``, ``UUUNKKK``), else zeros; ``meta["embedding_oov"]``
    counts such tokens. A row with another number of values than 50 raises an M2mError.
  - Without it: :func:`hashed_embedding`, a fixed embedding computed from the token alone with no
    outside data. The paper's numbers used a pre-trained word embedding (its ref. [20]), which is
    not available here, so accuracies with the fallback are not the paper's.

No randomness: ``seed`` is accepted for a uniform recipe interface and is unused.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import M2mError, sha256_file
from .base import PreparedData, Split, read_text_file
from .registry import register_dataset

EMBED_DIM = 50
TWEET_LAYOUT = "one token a line as TOKEN<TAB>TAG, a blank line between tweets"
FILES = {"train": "tweets-train.txt", "val": "tweets-dev.txt", "test": "tweets-devtest.txt"}
UNKNOWN_KEYS = ("<unk>", "UNKNOWN", "*UNKNOWN*", "UUUNKKK")

# The fallback embedding (hashed_embedding): features of a token, hashed with BLAKE2b (not
# Python's salted hash()) into HASH_BUCKETS signed buckets, projected by a fixed Gaussian matrix
# drawn from PROJECTION_SEED, then L2-normalised.
HASH_BUCKETS = 1 << 16
PROJECTION_SEED = 20200617
NGRAM_SIZES = (1, 2, 3, 4)
_projection_cache: np.ndarray | None = None


def read_tagged_tokens(path: Path) -> list[tuple[str, str]]:
    """``(token, tag)`` pairs of a ``TOKEN<TAB>TAG`` file, in file order; blank lines separate
    tweets and are skipped. A non-blank line without a TAB or with an empty token/tag raises."""
    content = read_text_file(path, TWEET_LAYOUT, "twitter")
    pairs: list[tuple[str, str]] = []
    # split on "\n" only: str.splitlines() would also cut at \x0b, \x1c, \u2028 inside a text
    for lineno, line in enumerate(content.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0] or not fields[1].strip():
            raise M2mError(f"{path} line {lineno}: {line[:40]!r} is not TOKEN<TAB>TAG "
                           f"(truncated or malformed line); expected {TWEET_LAYOUT}")
        pairs.append((fields[0], fields[1].strip()))
    if not pairs:
        raise M2mError(f"{path} holds no tokens; expected {TWEET_LAYOUT}")
    return pairs


# -- the fallback embedding -------------------------------------------------------------------------

def _word_shape(token: str) -> str:
    """Upper-case letters -> X, lower-case -> x, digits -> d, other characters kept; runs collapsed."""
    out: list[str] = []
    for ch in token:
        c = "X" if ch.isupper() else "x" if ch.islower() else "d" if ch.isdigit() else ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)


def token_features(token: str) -> tuple[list[str], list[str]]:
    """``(ngrams, whole)``: the character n-grams (n = 1..4) of the lower-cased token with the
    boundary markers \\x02 and \\x03, and two whole-token features (the lower-cased token, its shape)."""
    low = token.lower()
    padded = f"\x02{low}\x03"
    ngrams = [f"{n}:{padded[i:i + n]}" for n in NGRAM_SIZES for i in range(len(padded) - n + 1)]
    return ngrams, [f"w:{low}", f"shape:{_word_shape(token)}"]


def _bucket(feature: str) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    h = int.from_bytes(digest, "little")
    return h % HASH_BUCKETS, (1.0 if (h >> 63) & 1 else -1.0)


def _projection() -> np.ndarray:
    global _projection_cache
    if _projection_cache is None:
        rng = np.random.Generator(np.random.PCG64(PROJECTION_SEED))
        _projection_cache = rng.standard_normal((HASH_BUCKETS, EMBED_DIM)).astype(np.float32)
    return _projection_cache


def hashed_embedding(token: str) -> np.ndarray:
    """The fixed 50-d fallback embedding of one token (no outside data).

    Sparse features: the character n-gram counts (n = 1..4, lower-cased, with boundary markers)
    scaled to unit L2 norm, plus weight 1.0 each for the whole lower-cased token and for its word
    shape. Each feature goes to one of 2^16 buckets with a sign (BLAKE2b of the feature string);
    the sparse vector is multiplied by a fixed 2^16 x 50 standard-normal matrix (PCG64 seeded with
    20200617) and the result is L2-normalised. Tokens that share spelling share direction.
    """
    ngrams, whole = token_features(token)
    weights: dict[int, float] = {}
    counts = Counter(ngrams)
    norm = float(np.sqrt(sum(c * c for c in counts.values())))
    for feat, c in counts.items():
        b, s = _bucket(feat)
        weights[b] = weights.get(b, 0.0) + s * c / norm
    for feat in whole:
        b, s = _bucket(feat)
        weights[b] = weights.get(b, 0.0) + s
    rows = np.fromiter(weights.keys(), dtype=np.int64)
    vals = np.fromiter(weights.values(), dtype=np.float64)
    v = vals @ _projection()[rows].astype(np.float64)
    n = np.linalg.norm(v)
    return (v / n if n > 0 else v).astype(np.float32)


# -- an embedding file --------------------------------------------------------------------------

def read_embedding_file(path: Path, dim: int = EMBED_DIM) -> dict[str, np.ndarray]:
    """``WORD v1 ... v<dim>`` rows (one word a line) -> {word: float32 vector}. Raises an M2mError
    naming the line for a row with another number of values or a value that is not a number."""
    layout = f"one word a line as WORD v1 ... v{dim} (space-separated)"
    if not path.is_file():
        raise M2mError(f"twitter: embedding file {path} does not exist; expected {layout}")
    table: dict[str, np.ndarray] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").split()
            if not parts:
                continue
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec text header "COUNT DIM"
            if len(parts) - 1 != dim:
                raise M2mError(f"embedding file {path} line {lineno}: word {parts[0][:30]!r} has "
                               f"{len(parts) - 1} values, expected {dim}; expected {layout}")
            try:
                vec = np.asarray([float(v) for v in parts[1:]], dtype=np.float32)
            except ValueError:
                raise M2mError(f"embedding file {path} line {lineno}: a value is not a number; "
                               f"expected {layout}") from None
            table.setdefault(parts[0], vec)
    if not table:
        raise M2mError(f"embedding file {path} holds no vectors; expected {layout}")
    return table


def _embed(tokens: list[str], table: dict[str, np.ndarray] | None) -> tuple[np.ndarray, int]:
    """(N, 50) float32 inputs for ``tokens`` and how many of them the embedding file lacks."""
    unknown = None
    if table is not None:
        unknown = next((table[k] for k in UNKNOWN_KEYS if k in table), None)
        if unknown is None:
            unknown = np.zeros(EMBED_DIM, dtype=np.float32)
    cache: dict[str, tuple[np.ndarray, int]] = {}
    x = np.empty((len(tokens), EMBED_DIM), dtype=np.float32)
    oov = 0
    for i, tok in enumerate(tokens):
        hit = cache.get(tok)
        if hit is None:
            if table is None:
                hit = (hashed_embedding(tok), 0)
            else:
                vec = table.get(tok)
                if vec is None:
                    vec = table.get(tok.lower())
                hit = (vec, 0) if vec is not None else (unknown, 1)
            cache[tok] = hit
        x[i] = hit[0]
        oov += hit[1]
    return x, oov


@register_dataset("twitter")
def build_twitter(data_root: Path, *, embedding: str | None = None, seed: int = 0) -> PreparedData:
    """Twitter POS (Sec. 3.3, Appendix A): one sample a token, tags M and Y dropped, 50-d embedding.

    ``data_root`` holds ``tweets-train.txt``, ``tweets-dev.txt`` (validation) and
    ``tweets-devtest.txt`` (test), ``TOKEN<TAB>TAG`` a line. ``embedding``: an optional
    ``WORD v1 ... v50`` file (a relative path is tried against the working folder, then
    ``data_root``); without it the fixed hashed character n-gram embedding (module docstring).
    """
    del seed  # no random step in this recipe
    if not data_root.is_dir():
        raise M2mError(f"twitter: data root {data_root} is not a folder; expected it to hold "
                       f"{', '.join(FILES.values())}, {TWEET_LAYOUT}")
    pairs = {split: read_tagged_tokens(data_root / fname) for split, fname in FILES.items()}
    train_tags = Counter(tag for _, tag in pairs["train"])
    test_tags = Counter(tag for _, tag in pairs["test"])
    unseen = sorted(set(test_tags) - set(train_tags))
    if unseen:
        raise M2mError(f"{data_root / FILES['test']}: tag(s) {unseen[:5]} never occur in "
                       f"{FILES['train']}; every test tag must have training tokens")
    classes = sorted(t for t in train_tags if test_tags.get(t, 0) > 0)
    dropped = {t: train_tags[t] for t in sorted(train_tags) if t not in test_tags}
    index = {t: i for i, t in enumerate(classes)}

    table = None
    emb_meta: dict[str, Any] = {"kind": "hashed-char-ngrams", "dim": EMBED_DIM,
                                "buckets": HASH_BUCKETS, "projection_seed": PROJECTION_SEED,
                                "ngram_sizes": list(NGRAM_SIZES)}
    if embedding is not None:
        emb_path = Path(embedding)
        if not emb_path.is_file() and not emb_path.is_absolute() and (data_root / emb_path).is_file():
            emb_path = data_root / emb_path
        table = read_embedding_file(emb_path)
        emb_meta = {"kind": "file", "path": str(emb_path), "sha256": sha256_file(emb_path),
                    "dim": EMBED_DIM, "words": len(table)}

    splits: dict[str, Split] = {}
    oov_total: dict[str, int] = {}
    val_dropped: dict[str, int] = {}
    for split in ("train", "val", "test"):
        kept = [(tok, index[tag]) for tok, tag in pairs[split] if tag in index]
        if split == "val":
            val_dropped = dict(sorted(Counter(tag for _, tag in pairs[split]
                                              if tag not in index).items()))
        x, oov = _embed([tok for tok, _ in kept], table)
        oov_total[split] = oov
        splits[split] = Split(x, np.asarray([lab for _, lab in kept], dtype=np.int64))

    counts = np.bincount(splits["train"].y, minlength=len(classes))
    meta: dict[str, Any] = {
        "source": {split: str(data_root / fname) for split, fname in FILES.items()},
        "class_order": "sorted",
        "dropped_tags": dropped,
        "val_dropped": val_dropped,
        "embedding": emb_meta,
        "val_source": FILES["val"],
        "n_train_before_holdout": int(len(splits["train"])),
        "train_counts_before_holdout": [int(c) for c in counts],
        "n_val": int(len(splits["val"])),
        "n_test": int(len(splits["test"])),
    }
    if table is not None:
        meta["embedding_oov"] = oov_total
    return PreparedData(
        name="twitter",
        class_names=classes,
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        input_kind="vector",
        input_range=None,
        mean=[0.0],
        std=[1.0],
        augment={},
        preset="twitter",
        meta=meta,
    )
