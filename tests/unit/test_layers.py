"""The package's import graph, read with the stdlib ``ast`` (nothing is imported): no cycle among its
modules, and no import from a lower layer to a higher one, in the order of docs/design.md ("Layers"):

    errors -> utils, layout, checks -> datasets, models -> acceptance, plan, translate, metrics -> store
    -> pools -> training -> evaluation -> reports -> params -> jobs -> studies -> cli, sklearn_api

A module may import its own layer and the layers before it. Every import statement counts, at module
level or inside a function, with two lazy forms resolved as they run: ``from pkg import name``
through a package's ``_EXPORTS`` table (utils.lazy_exports) reaches ``pkg.<its sub-module>``, and a
package's module-level ``__getattr__`` (``from m2m_pipeline import M2mOverSampler``) is not an import
of the package itself. Besides the order: the library never imports typer, dvc or stages/; only
cli/ imports typer; only store/ imports zarr.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "m2m_pipeline"
ROOT = Path(__file__).resolve().parents[2]
PKG_DIR = ROOT / PACKAGE

# each top-level module or package of m2m_pipeline -> its layer (lower numbers are imported by higher)
LAYERS: dict[str, int] = {
    "__init__": 0, "errors": 0,
    "utils": 1, "layout": 1, "checks": 1,
    "datasets": 2, "models": 2,
    "acceptance": 3, "plan": 3, "translate": 3, "metrics": 3,
    "store": 4,
    "pools": 5,
    "training": 6,
    "evaluation": 7,
    "reports": 8,
    "params": 9,
    "jobs": 10,
    "studies": 11,
    "cli": 12, "sklearn_api": 12,
}
# imports a layer must not make although the order would allow them
# jobs may check method parameters against params' schema (check_ablation_params), never read params.yaml
FORBIDDEN: dict[str, set[str]] = {}
# third-party names only one part of the package may import
ONLY_IN = {"typer": {"cli"}, "zarr": {"store"}, "dvc": set(), "stages": set(), "_common": set()}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PKG_DIR.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _lazy_exports(package: str) -> dict[str, str]:
    path = MODULES.get(package)
    if path is None or path.name != "__init__.py":
        return {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets):
            return dict(ast.literal_eval(node.value))
    return {}


def _imports(name: str) -> tuple[set[str], set[str]]:
    """(package modules ``name`` imports, top-level names of outside modules it imports)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    body = [n for n in tree.body if not (is_pkg and isinstance(n, ast.FunctionDef) and n.name == "__getattr__")]
    inside: set[str] = set()
    outside: set[str] = set()
    for node in (sub for top in body for sub in ast.walk(top)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (inside if alias.name.split(".")[0] == PACKAGE else outside).add(
                    alias.name if alias.name.split(".")[0] == PACKAGE else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                outside.add(target.split(".")[0])
                continue
            lazy = _lazy_exports(target)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:                      # from pkg import submodule
                    inside.add(sub)
                elif alias.name in lazy:                # from pkg import name (a lazy re-export)
                    inside.add(f"{target}.{lazy[alias.name]}")
                else:
                    inside.add(target)
    return {m for m in inside if m in MODULES and m != name}, outside


GRAPH = {name: _imports(name) for name in MODULES}


def _top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_has_a_layer():
    missing = sorted({_top(m) for m in MODULES} - set(LAYERS))
    assert not missing, f"give these modules a layer in LAYERS (and in docs/design.md): {missing}"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    bad = []
    for name, (inside, _) in GRAPH.items():
        here = _top(name)
        for target in inside:
            there = _top(target)
            if LAYERS.get(there, -1) > LAYERS.get(here, 99) or there in FORBIDDEN.get(here, ()):
                bad.append(f"{name} (layer {here}) imports {target} (layer {there})")
    assert not bad, "imports against the layer order:\n" + "\n".join(sorted(bad))


def test_no_import_cycle():
    """Tarjan's strongly connected components over the module graph: every component is one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v][0]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("third_party", sorted(ONLY_IN))
def test_outside_names_only_where_they_belong(third_party):
    allowed = ONLY_IN[third_party]
    users = sorted(name for name, (_, outside) in GRAPH.items() if third_party in outside
                   and _top(name) not in allowed)
    assert not users, f"{third_party} is imported outside {sorted(allowed) or 'nothing'}: {users}"


# what the command line may call: the jobs, the reports, the pool browser (and the pool checks of
# `pools verify`, `pools migrate`), params for the defaults, and the pure-Python errors and layout
CLI_MAY_IMPORT = ("m2m_pipeline.cli", "m2m_pipeline.jobs", "m2m_pipeline.reports", "m2m_pipeline.pools.browse",
                  "m2m_pipeline.pools.verify", "m2m_pipeline.pools.migrate", "m2m_pipeline.params", "m2m_pipeline.layout", "m2m_pipeline.errors")


def test_cli_is_a_thin_face():
    bad = sorted(f"{name} imports {target}" for name, (inside, _) in GRAPH.items() if _top(name) == "cli"
                 for target in inside
                 if target != PACKAGE and not any(target == a or target.startswith(a + ".") for a in CLI_MAY_IMPORT))
    assert not bad, "cli/ reaches past jobs, reports, pools.browse and params:\n" + "\n".join(bad)


def test_the_graph_reads_real_imports():
    """The reader itself: known edges of the package are found (so the tests above are not vacuous)."""
    assert "m2m_pipeline.errors" in GRAPH["m2m_pipeline.utils"][0]
    assert "m2m_pipeline.jobs.dispatch" in GRAPH["m2m_pipeline.studies.seeds"][0]
    assert "m2m_pipeline.training.methods" in GRAPH["m2m_pipeline.reports.aggregate"][0]   # via _EXPORTS or direct
    assert "typer" in GRAPH["m2m_pipeline.cli.app"][1]
    assert not any(m.startswith("m2m_pipeline.datasets.") and m.split(".")[-1] not in ("base", "registry")
                   for m in GRAPH["m2m_pipeline.datasets"][0]), "importing datasets must import no recipe"
