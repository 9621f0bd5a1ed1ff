"""The image view of pool rows: x0 | x* | (x* - x0), the paper's Figure 6. ``pools show`` draws
a matplotlib grid (:func:`image_grid`); the report inlines one small PNG strip per row
(:func:`triple_png`), with one difference scale for the whole page."""

from __future__ import annotations

import html
import io
from pathlib import Path

import numpy as np

from ...datasets import PreparedData
from ...store import Pool
from ...utils import M2mError, save_figure
from .markup import png_data_uri
from .output import IMAGE_SUFFIXES, figure_metadata
from .selection import SHOW_ROW_ARRAYS, class_names_of, decision_of, seeds_and_translations
from .views import PoolView


def image_grid(pool: Pool, data: PreparedData, idx: np.ndarray, out: str | Path | None, *,
               title: str | None = None, per_row: int = 4, rows: dict[str, np.ndarray] | None = None):
    """Figure 6 of the paper for chosen rows: x0 | x* | (x* - x0) per example, ``per_row``
    examples a row. The difference uses ONE colour scale for the whole figure (the largest
    |x* - x0| shown), so magnitudes compare across panels; the scale is in the title. Each example
    is titled ``k0 -> k``, with g's probability of k at x* and the decision. Writes a PNG when
    ``out`` is given; returns the matplotlib figure (closed when written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(idx) == 0:
        raise M2mError("no pool rows match the filters; loosen --target/--seed-class/--accepted")
    rows = rows if rows is not None else pool.rows(SHOW_ROW_ARRAYS)
    names = class_names_of(pool, data)
    x0, x_star = seeds_and_translations(pool, data, rows, idx)
    diff = x_star - x0
    scale = float(np.abs(diff).max()) or 1e-8
    n = len(idx)
    per_row = max(1, min(per_row, n))
    n_rows = -(-n // per_row)
    fig, axes = plt.subplots(n_rows, 3 * per_row, figsize=(1.25 * 3 * per_row, 1.55 * n_rows + 0.6),
                             squeeze=False)
    gray = x0.shape[1] == 1

    def draw(ax, img, **kw):
        ax.imshow(np.transpose(img, (1, 2, 0)).squeeze(), **kw)

    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    for j, i in enumerate(idx):
        r, c = divmod(j, per_row)
        a0, a1, a2 = axes[r, 3 * c: 3 * c + 3]
        lo, hi = data.input_range or (float(min(x0.min(), x_star.min())), float(max(x0.max(), x_star.max())))
        draw(a0, np.clip(x0[j], lo, hi), cmap="gray" if gray else None, vmin=lo, vmax=hi)
        draw(a1, np.clip(x_star[j], lo, hi), cmap="gray" if gray else None, vmin=lo, vmax=hi)
        d = diff[j].mean(axis=0, keepdims=True) if not gray else diff[j]
        draw(a2, d, cmap="seismic", vmin=-scale, vmax=scale)
        a0.set_frame_on(True)
        a1.set_frame_on(True)
        a2.set_frame_on(True)
        k0, k = int(rows["seed_class"][i]), int(rows["target"][i])
        decision = decision_of(rows, i)
        a1.set_title(f"{names[k0]} → {names[k]}\np={rows['prob_g'][i]:.2f} {decision}", fontsize=7,
                     color="tab:green" if decision == "accepted" else "tab:red")
        if r == 0:
            a0.set_xlabel("x0", fontsize=6)
            a1.set_xlabel("x*", fontsize=6)
            a2.set_xlabel("x*−x0", fontsize=6)
    fig.suptitle((title + "\n" if title else "") + f"x0 | x* | x*−x0 (blue −, red +; one scale: ±{scale:.3f})",
                 fontsize=8)
    fig.tight_layout()
    if out is not None:   # atomically, signed as pools show's (output.py)
        save_figure(fig, out, metadata=figure_metadata(out))
    return fig


def _to_rgb(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A CHW float image as HWC uint8 RGB, values mapped from [lo, hi]."""
    hwc = np.transpose(np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1), (1, 2, 0))
    if hwc.shape[2] == 1:
        hwc = np.repeat(hwc, 3, axis=2)
    return (255 * hwc[..., :3]).round().astype(np.uint8)


def triple_png(x0: np.ndarray, x_star: np.ndarray, scale: float, lo: float, hi: float, *, size: int = 72) -> str:
    """x0 | x* | x* - x0 of one row as one PNG data URI, each panel scaled up (nearest) to about
    ``size`` pixels; the difference is averaged over channels and drawn blue (-) to red (+) on the
    fixed scale ``[-scale, scale]`` shared by the whole page, so magnitudes compare."""
    from matplotlib import colormaps
    from PIL import Image

    zoom = max(1, size // max(x0.shape[1:]))
    diff = (x_star - x0).mean(axis=0)
    diff_rgb = (255 * colormaps["seismic"](np.clip(diff / (2 * scale) + 0.5, 0, 1))[..., :3]).round().astype(np.uint8)
    gap = np.full((x0.shape[1], 2, 3), 255, np.uint8)
    strip = np.concatenate([_to_rgb(x0, lo, hi), gap, _to_rgb(x_star, lo, hi), gap, diff_rgb], axis=1)
    img = Image.fromarray(strip).resize((strip.shape[1] * zoom, strip.shape[0] * zoom), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return png_data_uri(buf.getvalue())


class ImageView(PoolView):
    """Images (CHW inputs): a PNG grid for ``pools show``, a strip per row in the report."""

    name = "image"
    suffixes = IMAGE_SUFFIXES

    def accepts(self, data: PreparedData) -> bool:
        return data.input_kind == "image" and len(data.input_shape) == 3

    def show(self, pool: Pool, data: PreparedData, idx: np.ndarray, rows: dict[str, np.ndarray], out: Path, *,
             title: str) -> None:
        image_grid(pool, data, idx, out, rows=rows, title=title)

    def report_grids(self, pool: Pool, data: PreparedData, rows: dict[str, np.ndarray],
                     shown: dict[int, np.ndarray]) -> tuple[list[str], dict[int, str]]:
        esc = html.escape
        names = class_names_of(pool, data)
        # one difference scale for the whole page: the largest |x* - x0| of any row shown
        all_idx = np.sort(np.concatenate([v for v in shown.values()] + [np.zeros(0, np.int64)]).astype(np.int64))
        if len(all_idx):
            x0_all, x_star_all = seeds_and_translations(pool, data, rows, all_idx)
        else:
            x0_all = x_star_all = np.zeros((0, *data.input_shape), np.float32)
        where = {int(i): j for j, i in enumerate(all_idx)}
        scale = float(np.abs(x_star_all - x0_all).max()) if len(all_idx) else 1.0
        scale = scale or 1e-8
        lo, hi = data.input_range or (float(min(x0_all.min(), x_star_all.min())),
                                      float(max(x0_all.max(), x_star_all.max())))
        note = (f'<p class="note">Each example: x0 | x* | x* &minus; x0 (blue negative, red positive, one scale '
                f"for the whole page: &plusmn;{scale:.3f}); caption: k0 &rarr; k, g's probability of k at x*, "
                f"decision.</p>")
        grids = {}
        for k, idx in shown.items():
            cells = []
            for i in idx:
                j = where[int(i)]
                decision = decision_of(rows, int(i))
                color = "#1a7f37" if decision == "accepted" else "#b42318"
                cells.append(f'<figure style="display:inline-block;margin:4px 8px;text-align:center">'
                             f'<img alt="row {int(i)}" src="{triple_png(x0_all[j], x_star_all[j], scale, lo, hi)}">'
                             f'<figcaption style="font-size:0.75em;color:{color}">'
                             f"{esc(names[int(rows['seed_class'][i])])} &rarr; {esc(names[k])}, "
                             f"p={rows['prob_g'][i]:.2f}, {esc(decision)}</figcaption></figure>")
            grids[k] = "<div>" + "".join(cells) + "</div>"
        return [note], grids


__all__ = ["ImageView", "image_grid", "triple_png"]
