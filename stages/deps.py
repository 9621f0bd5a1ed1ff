"""The code a stage script runs: its imports, followed transitively inside the m2m_pipeline package.

dvc.yaml lists these as each stage's deps, so an edit re-runs exactly the stages whose code it can
change (tests/system/test_dvc.py checks the two agree). Every import statement counts, module-level or
inside a function, since a function-level import still runs when the stage does.

The dataset registry is lazy (m2m_pipeline/datasets/registry.py): a recipe's module is imported by
name only when ``create_dataset`` builds its dataset, so no import statement names it. A stage whose
code calls ``create_dataset`` (the prepare stage) therefore gets the recipe of params.yaml's
``dataset`` (its ``RECIPES`` entry) and that module's imports; every other stage gets no recipe.
After changing ``dataset`` in params.yaml, run ``python stages/render_dvc.py`` again.

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
    # a package's module-level ``__getattr__`` imports a sub-module only when one of its names is
    # asked for (``from m2m_pipeline import M2mOverSampler``): not something importing the package runs
    body = [n for n in tree.body
            if not (is_pkg and isinstance(n, ast.FunctionDef) and n.name == "__getattr__")]
    for node in (sub for top in body for sub in ast.walk(top)):
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


def _calls(path: Path, name: str) -> bool:
    """Whether ``path`` calls a function named ``name`` (``name(...)`` or ``x.name(...)``)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            f = node.func
            if (isinstance(f, ast.Name) and f.id == name) or (isinstance(f, ast.Attribute) and f.attr == name):
                return True
    return False


def _literal(path: Path, name: str):
    """The literal value assigned to ``name`` at the top level of ``path`` (``NAME = ...`` or
    ``NAME: type = ...``)."""
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
            return ast.literal_eval(node.value)
    raise KeyError(f"{path} assigns no {name}")


def recipe_module(params: str | Path = ROOT / "params.yaml") -> str | None:
    """The module of the recipe of params.yaml's ``dataset`` (``m2m_pipeline.datasets.digits``), from
    the registry's ``RECIPES`` table; None for a dataset the table does not name."""
    import yaml

    dataset = str((yaml.safe_load(Path(params).read_text()) or {}).get("dataset") or "")
    recipes = _literal(ROOT / PACKAGE / "datasets" / "registry.py", "RECIPES")
    entry = recipes.get(dataset.partition(":")[0])
    if entry is None:
        return None
    module = entry["module"]
    return module if "." in module else f"{PACKAGE}.datasets.{module}"


def closure(script: str | Path, *, recipes: bool = True) -> list[str]:
    """Repo-relative paths of the package files ``script`` runs (with every parent package's
    ``__init__.py``, which Python runs first), and, when one of them calls ``create_dataset`` (and
    ``recipes``), the recipe of params.yaml's dataset with the files it runs."""
    found = _closure([(Path(script).resolve(), None)])
    if recipes and any(_calls(ROOT / f, "create_dataset") for f in found):
        module = recipe_module()
        path = _module_file(module) if module else None
        if path is not None:
            found = sorted(set(found) | set(_closure([(path.resolve(), module)])))
    return found


def _closure(todo: list[tuple[Path, str | None]]) -> list[str]:
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
