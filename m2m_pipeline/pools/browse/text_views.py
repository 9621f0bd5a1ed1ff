"""The text views of pool rows, drawn as markdown (``pools show``) and HTML tables (the report):
``bag_of_words`` (the words translation switched on and off, for prepared data with a
``vocabulary``) and ``embedding`` (the vocabulary tokens nearest to x0 and to x*, cosine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...datasets import PreparedData
from ...store import Pool
from ...utils import M2mError
from .markup import md_cell, table
from .output import TEXT_SUFFIXES, text_signature, write_text
from .selection import SHOW_ROW_ARRAYS, class_names_of, decision_of, seeds_and_translations
from .views import PoolView


def word_changes(pool: Pool, data: PreparedData, idx: np.ndarray, *, top: int = 8,
                 rows: dict[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Bag-of-words rows: the words translation switched on (largest x* - x0) and off (most
    negative), ranked, each with its change; one dict per row with the class names."""
    rows = rows if rows is not None else pool.rows(SHOW_ROW_ARRAYS)
    vocab = list(data.meta.get("vocabulary") or [])
    names = class_names_of(pool, data)
    x0, x_star = seeds_and_translations(pool, data, rows, idx)
    width = x_star.shape[1]
    words = vocab + [f"<unknown {i}>" for i in range(len(vocab), width)]
    out = []
    for j, i in enumerate(idx):
        delta = (x_star[j] - x0[j]).reshape(-1)
        order = np.argsort(delta)
        on = [(words[w], float(delta[w])) for w in order[::-1][:top] if delta[w] > 0]
        off = [(words[w], float(delta[w])) for w in order[:top] if delta[w] < 0]
        out.append({"row": int(i), "seed_class": names[int(rows["seed_class"][i])],
                    "target": names[int(rows["target"][i])], "prob_g": float(rows["prob_g"][i]),
                    "decision": decision_of(rows, i), "words_in_x0": int((x0[j] > 0.5).sum()),
                    "switched_on": on, "switched_off": off})
    return out


def token_table(data: PreparedData) -> tuple[list[str], np.ndarray]:
    """(tokens, vectors) of the word embedding behind a Twitter-like dataset: the distinct training
    tokens, embedded by the recipe's own embedding (its file, or the hashed fallback)."""
    from ...datasets import twitter

    src = (data.meta.get("source") or {}).get("train")
    if not src or not Path(src).is_file():
        raise M2mError(f"the token file of {data.name} ({src}) is not readable here, so its vocabulary cannot "
                       f"be rebuilt for nearest-token lookups")
    tokens = sorted({tok for tok, _ in twitter.read_tagged_tokens(Path(src))})
    emb = data.meta.get("embedding") or {}
    table = twitter.read_embedding_file(Path(emb["path"])) if emb.get("kind") == "file" else None
    vectors, _ = twitter._embed(tokens, table)
    return tokens, vectors


def nearest_tokens(pool: Pool, data: PreparedData, idx: np.ndarray, *, top: int = 5,
                   rows: dict[str, np.ndarray] | None = None,
                   table: tuple[list[str], np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Embedding rows: the ``top`` vocabulary tokens nearest (cosine) to x0 and to x*."""
    rows = rows if rows is not None else pool.rows(SHOW_ROW_ARRAYS)
    tokens, vectors = table or token_table(data)
    names = class_names_of(pool, data)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    x0, x_star = seeds_and_translations(pool, data, rows, idx)
    x0, x_star = x0.reshape(len(idx), -1), x_star.reshape(len(idx), -1)

    def near(v):
        sim = unit @ (v / max(np.linalg.norm(v), 1e-12))
        best = np.argsort(-sim)[:top]
        return [(tokens[b], float(sim[b])) for b in best]

    return [{"row": int(i), "seed_class": names[int(rows["seed_class"][i])],
             "target": names[int(rows["target"][i])], "prob_g": float(rows["prob_g"][i]),
             "decision": decision_of(rows, i), "near_x0": near(x0[j]), "near_x_star": near(x_star[j])}
            for j, i in enumerate(idx)]


def format_text_rows(kind: str, items: list[dict[str, Any]]) -> str:
    """Markdown for ``word_changes`` / ``nearest_tokens`` results. Class names, words and tokens
    come from the data: each is escaped (markup.md_cell: no raw HTML, no ``|`` splitting a cell),
    as the HTML report escapes them."""
    lines = []
    esc = md_cell
    if kind == "bag_of_words":
        lines += ["| row | k0 → k | p | decision | switched on (Δ) | switched off (Δ) |", "|---|---|---|---|---|---|"]
        for it in items:
            on = ", ".join(f"{esc(w)} (+{d:.2f})" for w, d in it["switched_on"]) or "-"
            off = ", ".join(f"{esc(w)} ({d:.2f})" for w, d in it["switched_off"]) or "-"
            lines.append(f"| {it['row']} | {esc(it['seed_class'])} → {esc(it['target'])} | {it['prob_g']:.2f} | "
                         f"{esc(it['decision'])} | {on} | {off} |")
    else:
        lines += ["| row | k0 → k | p | decision | nearest to x0 | nearest to x* |", "|---|---|---|---|---|---|"]
        for it in items:
            n0 = ", ".join(f"{esc(t)} ({s:.2f})" for t, s in it["near_x0"])
            n1 = ", ".join(f"{esc(t)} ({s:.2f})" for t, s in it["near_x_star"])
            lines.append(f"| {it['row']} | {esc(it['seed_class'])} → {esc(it['target'])} | {it['prob_g']:.2f} | "
                         f"{esc(it['decision'])} | {n0} | {n1} |")
    return "\n".join(lines) + "\n"


class _TextView(PoolView):
    """A view whose rows are table rows: markdown for ``pools show``, an HTML table per class."""

    header: list[str] = []
    suffixes = TEXT_SUFFIXES

    def items(self, pool, data, idx, rows, **kw) -> list[dict[str, Any]]:
        raise NotImplementedError

    def cells(self, item: dict[str, Any]) -> list[Any]:
        """The report's cells of one row."""
        raise NotImplementedError

    def show(self, pool: Pool, data: PreparedData, idx: np.ndarray, rows: dict[str, np.ndarray], out: Path, *,
             title: str) -> None:
        a = pool.attrs
        # atomically; the first line signs it as pools show's (output.py), the title is escaped
        title = f"# {md_cell(a.get('dataset'))} epoch {md_cell(a.get('epoch'))}: {len(idx)} rows ({self.name})"
        write_text(out, f"{text_signature()}{title}\n\n"
                        + format_text_rows(self.name, self.items(pool, data, idx, rows)))

    def report_grids(self, pool: Pool, data: PreparedData, rows: dict[str, np.ndarray],
                     shown: dict[int, np.ndarray]) -> tuple[list[str], dict[int, str]]:
        return [], {k: table(self.header, [self.cells(it) for it in self.items(pool, data, idx, rows, report=True)],
                             left=6)
                    for k, idx in shown.items()}


class BagOfWordsView(_TextView):
    name = "bag_of_words"
    header = ["row", "k0 → k", "p", "decision", "switched on (Δ)", "switched off (Δ)"]

    def accepts(self, data: PreparedData) -> bool:
        return bool(data.meta.get("vocabulary"))

    def items(self, pool, data, idx, rows, report: bool = False) -> list[dict[str, Any]]:
        return word_changes(pool, data, idx, rows=rows, **({"top": 6} if report else {}))

    def cells(self, it: dict[str, Any]) -> list[Any]:
        return [it["row"], f"{it['seed_class']} → {it['target']}", f"{it['prob_g']:.2f}", it["decision"],
                ", ".join(f"{w} (+{d:.2f})" for w, d in it["switched_on"]) or "-",
                ", ".join(f"{w} ({d:.2f})" for w, d in it["switched_off"]) or "-"]


class EmbeddingView(_TextView):
    name = "embedding"
    header = ["row", "k0 → k", "p", "decision", "nearest to x0", "nearest to x*"]

    def accepts(self, data: PreparedData) -> bool:
        return True   # any other vector input: asked last

    def items(self, pool, data, idx, rows, report: bool = False, table=None) -> list[dict[str, Any]]:
        return nearest_tokens(pool, data, idx, rows=rows, table=table)

    def cells(self, it: dict[str, Any]) -> list[Any]:
        return [it["row"], f"{it['seed_class']} → {it['target']}", f"{it['prob_g']:.2f}", it["decision"],
                ", ".join(f"{t} ({s:.2f})" for t, s in it["near_x0"]),
                ", ".join(f"{t} ({s:.2f})" for t, s in it["near_x_star"])]

    def report_grids(self, pool: Pool, data: PreparedData, rows: dict[str, np.ndarray],
                     shown: dict[int, np.ndarray]) -> tuple[list[str], dict[int, str]]:
        import html

        try:
            vocabulary = token_table(data)
        except Exception as exc:  # the raw token file may be absent where the report is built
            return [f'<p class="note">nearest tokens unavailable: {html.escape(str(exc))}</p>'], {}
        return [], {k: table(self.header, [self.cells(it) for it in self.items(pool, data, idx, rows,
                                                                              table=vocabulary)], left=6)
                    for k, idx in shown.items()}


__all__ = ["BagOfWordsView", "EmbeddingView", "format_text_rows", "nearest_tokens", "token_table", "word_changes"]
