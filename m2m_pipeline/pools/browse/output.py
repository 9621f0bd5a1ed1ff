"""Where the pool browser writes (``--out`` of ``pools show``, ``pools stats``, ``pools report``),
checked before any work, and how it writes there.

- ``pools stats`` and ``pools report`` write fixed names (``heatmap.png``, ``epochs.png``,
  ``index.html``) into a folder. The folder must be new, empty, or one the browser wrote: it
  holds the marker :data:`BROWSER_MARKER`, written before anything else, so an interrupted run's
  folder is still the browser's. A folder of other files (a user's ``index.html``) is refused,
  as every other command refuses a foreign ``--out`` (``utils.check_output_dir``).
- ``pools show`` writes one file, of an extension its view writes (:data:`IMAGE_SUFFIXES` for
  images, :data:`TEXT_SUFFIXES` for the text views). An existing file is replaced only when
  ``pools show`` wrote it (it carries :data:`SIGNATURE`: a PNG text chunk, the SVG/PDF creator,
  the markdown's first line).
- A file where a folder should be is a one-line error, not a FileExistsError.

Every file is written under a temporary name and renamed into place (``utils.atomic_write_bytes``,
``utils.save_figure``), so a full disk leaves the old file, never a truncated ``index.html`` or
an empty PNG.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ...utils import M2mError, atomic_write_bytes, check_output_dir

BROWSER_MARKER = ".m2m-pool-browser.json"
IMAGE_SUFFIXES = (".png", ".svg", ".pdf")
TEXT_SUFFIXES = (".md", ".txt")
SIGNATURE = "m2m-pipeline pools show"


def _no_file_above(out: Path) -> None:
    """Refuse ``out`` when the nearest existing folder above it is a file."""
    for parent in out.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise M2mError(f"--out {out}: {parent} is a file, not a folder; pass another --out")
            return


def check_out_folder(out: str | Path) -> Path:
    """``out`` as the folder of ``pools stats`` / ``pools report``: missing, empty, or the
    browser's (its marker); else a one-line M2mError, before any work."""
    out = Path(out)
    _no_file_above(out)
    if out.exists() and not out.is_dir():
        raise M2mError(f"--out {out} is a file, not a folder; pools stats and pools report write a folder: pass "
                       f"another --out")
    check_output_dir(out, "pool browser output (pools stats / pools report)",
                     is_kind=lambda p: (p / BROWSER_MARKER).is_file())
    return out


def mark_out_folder(out: str | Path, files: Iterable[str]) -> None:
    """Create the folder ``out`` and claim it for the browser (before writing ``files`` there)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / BROWSER_MARKER
    try:
        known = set(json.loads(marker.read_text()).get("files", []))
    except (OSError, ValueError, AttributeError):
        known = set()
    atomic_write_bytes(marker, json.dumps({"kind": "m2m-pool-browser", "files": sorted(known | set(files))},
                                          indent=1).encode())


def check_show_out(out: str | Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES + TEXT_SUFFIXES,
                   view: str | None = None) -> Path:
    """``out`` as the file of ``pools show`` (by the view ``view``, writing ``suffixes``): an
    extension it writes, no file in place of a folder above it, not a folder, and not a file that
    ``pools show`` did not write; else a one-line M2mError, before any work."""
    out = Path(out)
    _no_file_above(out)
    if out.is_dir():
        raise M2mError(f"--out {out} is a folder; pools show writes one file: pass a file name such as "
                       f"{out / ('rows' + suffixes[0])}")
    if out.suffix.lower() not in suffixes:
        who = f"the {view} view of pools show writes" if view else "pools show writes"
        raise M2mError(f"--out {out}: {who} {', '.join(suffixes)} files, not "
                       f"{repr(out.suffix) if out.suffix else 'a name without an extension'}")
    if out.exists() and not written_by_show(out):
        raise M2mError(f"--out {out} exists and was not written by pools show; writing there would replace it: "
                       f"pass a new file name, or delete it")
    return out


# where each format carries SIGNATURE: exactly there, so a file that merely mentions the command
# (a README with its usage) is not taken for pools show's
_SIGNED = {".png": b"tEXtSoftware\x00" + SIGNATURE.encode(), ".pdf": b"/Creator (" + SIGNATURE.encode() + b")",
           ".svg": b"<cc:Agent>\n      <dc:title>" + SIGNATURE.encode() + b"</dc:title>"}   # the creator's
_TEXT_FIRST_LINE = f"<!-- {SIGNATURE} -->\n".encode()


def written_by_show(path: str | Path) -> bool:
    """Whether the file at ``path`` carries :data:`SIGNATURE` where ``pools show`` puts it: the
    first line of its markdown, the PNG ``Software`` text chunk, the PDF or SVG creator."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if path.suffix.lower() in TEXT_SUFFIXES:
                return fh.read(len(_TEXT_FIRST_LINE)) == _TEXT_FIRST_LINE
            signed = _SIGNED.get(path.suffix.lower())
            return signed is not None and signed in fh.read(64 << 20)
    except OSError:
        return False


def text_signature() -> str:
    """The first line of every markdown file ``pools show`` writes."""
    return _TEXT_FIRST_LINE.decode()


def figure_metadata(out: str | Path) -> dict[str, str]:
    """matplotlib ``savefig`` metadata carrying :data:`SIGNATURE` for the format of ``out``."""
    return {"Software" if Path(out).suffix.lower() == ".png" else "Creator": SIGNATURE}


def write_text(out: str | Path, text: str) -> Path:
    """``text`` to ``out``, atomically."""
    out = Path(out)
    atomic_write_bytes(out, text.encode("utf-8"))
    return out


__all__ = ["BROWSER_MARKER", "IMAGE_SUFFIXES", "SIGNATURE", "TEXT_SUFFIXES", "check_out_folder", "check_show_out",
           "figure_metadata", "mark_out_folder", "text_signature", "write_text", "written_by_show"]
