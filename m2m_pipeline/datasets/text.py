"""Bag-of-words text datasets: ``reuters`` (R52, Sec. 3.3 and Appendix A, "Reuters") and the
bring-your-own ``text:<dir>``.

The recipe (Appendix A; the feature recipe is spelled out in ../shared/datasets/README.md):

1. Read one document a line as ``LABEL<TAB>text`` from a training and a test file.
2. Keep the classes with at least ``min_test_docs`` (5) test documents (Sec. 3.3: "we exclude the
   classes having less than 5 samples in the test set"); on R52 this leaves 36 classes, 6436
   training and 2530 test documents, largest/smallest training class 2840/4.
3. Tokenise: lower-case, then take the runs of word characters (apostrophes inside a word kept,
   so "don't" is one token). R52's text is already lower-cased words separated by spaces, so on it
   this is a plain split on spaces.
4. Drop English stop words (NLTK's list, embedded below as :data:`STOP_WORDS`).
5. Rank the remaining words by their total count over the training documents of the kept classes
   (all of them, before the validation hold-out: the paper's features were computed once, then 10%
   held out), ties broken alphabetically; the ``vocab_size - 1`` (999) most frequent words get
   indices 0..998 in rank order, every other word maps to one "unknown" slot, the last index (999).
6. A document's vector is binary: 1.0 where a word (or any unknown word) occurs, else 0.0
   (float32, ``input_range`` (0, 1), no normalisation: ``mean`` [0.0], ``std`` [1.0]).
7. Hold out ``val_fraction`` (10%) of each training class, at random from the seed, as the
   validation set (Appendix A); the test set is kept whole.

Class order: class names sorted alphabetically (Python string order), so a label index does not
depend on the class sizes. ``meta["vocabulary"]`` holds the 999 ranked words.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import M2mError
from .base import PreparedData, Split, hold_out_fraction, read_text_file
from .registry import register_dataset

# NLTK's English stop-word list (nltk.corpus.stopwords.words("english"), the 179-word version).
STOP_WORDS: frozenset[str] = frozenset("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves
he him his himself she she's her hers herself it it's its itself they them their theirs themselves
what which who whom this that that'll these those am is are was were be been being have has had
having do does did doing a an the and but if or because as until while of at by for with about
against between into through during before after above below to from up down in out on off over
under again further then once here there when where why how all any both each few more most other
some such no nor not only own same so than too very s t can will just don don't should should've
now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn
hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn
shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
""".split())

_TOKEN = re.compile(r"\w+(?:'\w+)*")

TEXT_LAYOUT = "one document a line as LABEL<TAB>text"


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` (see the module docstring, step 3)."""
    return _TOKEN.findall(text.lower())


def read_labelled_lines(path: Path, layout: str = TEXT_LAYOUT) -> tuple[list[str], list[str]]:
    """``(labels, texts)`` of a ``LABEL<TAB>text`` file, UTF-8 with or without a byte-order mark,
    LF or CRLF line ends. Blank lines are skipped; a line without a
    TAB (a truncated or malformed file) or with an empty label raises an M2mError naming the line."""
    # A UTF-8 byte-order mark (Windows editors write one) would otherwise glue itself to the first
    # label, which then names a class of its own and the first document is silently dropped.
    content = read_text_file(path, layout).removeprefix("\ufeff")
    labels: list[str] = []
    texts: list[str] = []
    # split on "\n" only: str.splitlines() would also cut at \x0b, \x1c, \u2028 inside a text
    for lineno, line in enumerate(content.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        label, tab, text = line.partition("\t")
        if not tab:
            raise M2mError(f"{path} line {lineno}: no TAB between label and text "
                           f"(truncated or malformed line); expected {layout}")
        label = label.strip()
        if not label:
            raise M2mError(f"{path} line {lineno}: empty label; expected {layout}")
        labels.append(label)
        texts.append(text)
    if not labels:
        raise M2mError(f"{path} holds no documents; expected {layout}")
    return labels, texts


def build_vocabulary(train_docs: list[list[str]], size: int) -> list[str]:
    """The ``size - 1`` most frequent non-stop words over ``train_docs`` (count of occurrences,
    ties broken alphabetically); index ``size - 1`` is left for the unknown slot."""
    counts: Counter[str] = Counter()
    for doc in train_docs:
        counts.update(w for w in doc if w not in STOP_WORDS)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [w for w, _ in ranked[: size - 1]]


def binary_bag_of_words(docs: list[list[str]], vocabulary: list[str], size: int) -> np.ndarray:
    """Binary float32 (N, size) vectors; words outside ``vocabulary`` (stop words excepted) set the
    unknown slot ``size - 1``."""
    index = {w: i for i, w in enumerate(vocabulary)}
    unknown = size - 1
    x = np.zeros((len(docs), size), dtype=np.float32)
    for row, doc in enumerate(docs):
        cols = {index.get(w, unknown) for w in doc if w not in STOP_WORDS}
        if cols:
            x[row, list(cols)] = 1.0
    return x


def build_text_dataset(name: str, train_path: Path, test_path: Path, *, preset: str,
                       min_test_docs: int, vocab_size: int, val_fraction: float, seed: int,
                       layout: str) -> PreparedData:
    """The Reuters recipe (module docstring) on a training and a test file."""
    if vocab_size < 2:
        raise M2mError(f"vocab_size must be at least 2 (one word and the unknown slot), got {vocab_size}")
    if not 0.0 < val_fraction < 1.0:
        raise M2mError(f"val_fraction must be in (0, 1), got {val_fraction}")
    train_labels, train_texts = read_labelled_lines(train_path, layout)
    test_labels, test_texts = read_labelled_lines(test_path, layout)

    train_label_set = set(train_labels)
    unseen = sorted(set(test_labels) - train_label_set)
    if unseen:
        raise M2mError(f"{test_path}: label(s) {unseen[:5]} never occur in {train_path.name}; "
                       f"every test label must have training documents")

    test_counts = Counter(test_labels)
    train_counts_all = Counter(train_labels)
    kept = sorted(lab for lab in train_label_set if test_counts.get(lab, 0) >= min_test_docs)
    if not kept:
        raise M2mError(f"{test_path}: no class has {min_test_docs} or more test documents")
    dropped = {lab: {"train": train_counts_all[lab], "test": test_counts.get(lab, 0)}
               for lab in sorted(train_label_set - set(kept))}
    label_index = {lab: i for i, lab in enumerate(kept)}

    def select(labels: list[str], texts: list[str]) -> tuple[list[list[str]], np.ndarray]:
        docs, ys = [], []
        for lab, text in zip(labels, texts):
            if lab in label_index:
                docs.append(tokenize(text))
                ys.append(label_index[lab])
        return docs, np.asarray(ys, dtype=np.int64)

    train_docs, y_train_full = select(train_labels, train_texts)
    test_docs, y_test = select(test_labels, test_texts)
    vocabulary = build_vocabulary(train_docs, vocab_size)
    x_train_full = binary_bag_of_words(train_docs, vocabulary, vocab_size)
    x_test = binary_bag_of_words(test_docs, vocabulary, vocab_size)

    rest, held = hold_out_fraction(y_train_full, val_fraction, seed)
    counts_before = np.bincount(y_train_full, minlength=len(kept))
    meta: dict[str, Any] = {
        "source": {"train": str(train_path), "test": str(test_path)},
        "class_order": "sorted",
        "min_test_docs": min_test_docs,
        "dropped_classes": dropped,
        "vocab_size": vocab_size,
        "unknown_index": vocab_size - 1,
        "vocabulary": vocabulary,
        "stop_words": "nltk-english-179",
        "val_fraction": val_fraction,
        "val_source": f"{val_fraction:.0%} of each training class",
        "seed": seed,
        "n_train_before_holdout": int(len(y_train_full)),
        "train_counts_before_holdout": [int(c) for c in counts_before],
        "n_train_after_holdout": int(len(rest)),
        "n_val": int(len(held)),
        "n_test": int(len(y_test)),
    }
    return PreparedData(
        name=name,
        class_names=kept,
        train=Split(x_train_full[rest], y_train_full[rest]),
        val=Split(x_train_full[held], y_train_full[held]),
        test=Split(x_test, y_test),
        input_kind="vector",
        input_range=(0.0, 1.0),
        mean=[0.0],
        std=[1.0],
        augment={},
        preset=preset,
        meta=meta,
    )


@register_dataset("reuters")
def build_reuters(data_root: Path, *, min_test_docs: int = 5, vocab_size: int = 1000,
                  val_fraction: float = 0.1, seed: int = 0) -> PreparedData:
    """Reuters R52 (Sec. 3.3, Appendix A): 36 classes with >= 5 test docs, 1000-d binary bag of words.

    ``data_root`` holds ``r52-train.txt`` and ``r52-test.txt``, one document a line as
    ``TOPIC<TAB>lower-cased words``. See the module docstring for every step.
    """
    layout = (f"{data_root} to hold r52-train.txt and r52-test.txt, "
              f"one document a line as TOPIC<TAB>words")
    if not data_root.is_dir():
        raise M2mError(f"reuters: data root {data_root} is not a folder; expected {layout}")
    return build_text_dataset("reuters", data_root / "r52-train.txt", data_root / "r52-test.txt",
                              preset="reuters", min_test_docs=min_test_docs, vocab_size=vocab_size,
                              val_fraction=val_fraction, seed=seed, layout=layout)


@register_dataset("text")
def build_text_folder(data_root: Path, *, min_test_docs: int = 5, vocab_size: int = 1000,
                      val_fraction: float = 0.1, seed: int = 0) -> PreparedData:
    """Any ``LABEL<TAB>text`` corpus (``text:<dir>`` with train.txt, test.txt), the Reuters recipe.

    Same steps as ``reuters`` (module docstring): classes with fewer than ``min_test_docs`` test
    documents dropped, stop words out, top-``vocab_size`` binary bag of words, 10% validation.
    """
    layout = (f"{data_root} to hold train.txt and test.txt, "
              f"one document a line as LABEL<TAB>text")
    if not data_root.is_dir():
        raise M2mError(f"text: folder {data_root} does not exist; expected {layout}")
    return build_text_dataset(f"text:{data_root.name}", data_root / "train.txt", data_root / "test.txt",
                              preset="text", min_test_docs=min_test_docs, vocab_size=vocab_size,
                              val_fraction=val_fraction, seed=seed, layout=layout)
