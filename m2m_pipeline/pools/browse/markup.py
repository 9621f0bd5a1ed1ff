"""HTML pieces shared by the pool report and the views' report grids: an escaped table, a
percentage, and a PNG inlined as a ``data:`` URI (so the page makes no request)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np


def table(header: list[str], rows: list[list[Any]], *, left: int = 1, flags: list[bool] | None = None) -> str:
    """An HTML table; the first ``left`` columns are left-aligned, rows with a true ``flags`` entry
    are marked (``class="flag"``). Every cell is escaped."""
    esc = html.escape
    out = ["<table><thead><tr>" + "".join(f'<th class="{"l" if i < left else ""}">{esc(h)}</th>'
                                          for i, h in enumerate(header)) + "</tr></thead><tbody>"]
    for r, row in enumerate(rows):
        cls = ' class="flag"' if flags and flags[r] else ""
        out.append(f"<tr{cls}>" + "".join(f'<td class="{"l" if i < left else ""}">{esc(str(v))}</td>'
                                          for i, v in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def md_cell(value: Any) -> str:
    """``value`` as text safe in a markdown table cell: HTML escaped (a class name
    ``<script>alert(1)</script>`` stays text), ``|`` escaped so it does not split the cell, and
    line breaks as spaces so it does not end the row."""
    return " ".join(html.escape(str(value), quote=False).replace("|", "\\|").splitlines())


def pct(v) -> str:
    """A share as a percentage with one decimal; ``-`` for none or NaN."""
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}"


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def file_data_uri(path: str | Path) -> str:
    """A PNG file as a ``data:`` URI."""
    return png_data_uri(Path(path).read_bytes())


__all__ = ["file_data_uri", "md_cell", "pct", "png_data_uri", "table"]
