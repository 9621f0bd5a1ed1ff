"""The code a stage script runs: its imports, followed transitively inside the m2m_pipeline package.

dvc.yaml lists these as each stage's deps, so an edit re-runs exactly the stages whose code it can
change (tests/test_dvc.py checks the two agree). Every import statement counts, module-level or
inside a function, since a function-level import still runs when the stage does.

    python stages/deps.py stages/train_f.py      # prints the deps of one stage script
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "m2m_pipeline"


def _module_file(name: str) -> Path | None:
    """The file of a module of the package (``m2m_pipeline.pools.rules``), or None."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    base = ROOT.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _lazy_exports(package: str) -> dict[str, str]:
    """A package's ``_EXPORTS`` table (name -> sub-module), read from its ``__init__.py``: such a
    package re-exports names lazily, so ``from pkg import name`` runs ``pkg.<sub-module>``."""
    init = _module_file(package)
    if init is None or init.name != "__init__.py":
        return {}
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets):
            return {k: v for k, v in ast.literal_eval(node.value).items()}
    return {}


def _imports(path: Path, module: str | None) -> set[str]:
    """Fully qualified names of every module ``path`` imports (``from x import y`` counts x, and
    x.y when y is a submodule)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if module is None:
                    continue
                parts = module.split(".")
                base = parts if is_pkg else parts[:-1]
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            lazy = _lazy_exports(target)
            for alias in node.names:
                found.add(f"{target}.{alias.name}")
                if alias.name in lazy:
                    found.add(f"{target}.{lazy[alias.name]}")
    return found


def closure(script: str | Path) -> list[str]:
    """Repo-relative paths of the package files ``script`` runs (with every parent package's
    ``__init__.py``, which Python runs first)."""
    todo = [(Path(script).resolve(), None)]
    seen: set[Path] = set()
    while todo:
        path, module = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path, module):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):   # parent packages run their __init__ first
                sub = ".".join(parts[:i])
                f = _module_file(sub)
                if f is not None and f.resolve() not in seen:
                    todo.append((f.resolve(), sub))
    return sorted(str(p.relative_to(ROOT)) for p in seen if p.is_relative_to(ROOT / PACKAGE))


def compact(paths: list[str]) -> list[str]:
    """Replace the files of a sub-package by its folder when every .py file of it is listed."""
    listed = set(paths)
    out = set(paths)
    for pkg in sorted({str(Path(p).parent) for p in paths}, key=len):
        if pkg == PACKAGE:
            continue
        files = {str(f.relative_to(ROOT)) for f in (ROOT / pkg).rglob("*.py")}
        if files and files <= listed:
            out = {p for p in out if not p.startswith(pkg + "/")} | {pkg}
    # a folder inside a listed folder is already covered
    return sorted(p for p in out if not any(p != q and p.startswith(q + "/") for q in out))


def stage_deps(script: str | Path) -> list[str]:
    """The deps dvc.yaml lists for a stage script: the script, the shared stage helper and its code."""
    script = Path(script)
    common = [str((script.parent / "_common.py").resolve().relative_to(ROOT))]
    extra = closure(script.parent / "_common.py")
    return [str(script.resolve().relative_to(ROOT))] + common + compact(sorted(set(closure(script)) | set(extra)))


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(f"# {arg}")
        for dep in stage_deps(arg):
            print(f"      - {dep}")
