"""The layers of docs/architecture.md hold: a module imports only from its own layer or the layers below it (lazy
imports inside functions included), and no two packages of one layer import each other in a circle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "effbench"

# docs/architecture.md, "The layers": lowest first
LAYERS: list[set[str]] = [
    {"base"},
    {"zoo"},
    {"backends", "counting", "memory", "timing", "quality", "frequency"},
    {"sweep"},
    {"report", "ci"},
    {"studies", "challenge", "pytest_plugin"},
    {"commands", "cli", "__main__"},
]
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the top-level effbench package (lazy public exports)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, imported names) of every import statement in ``path``, relative ones resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return [(t, names) for t, names in found if t == "effbench" or t.startswith("effbench.")]


def _edges() -> dict[str, dict[str, list[str]]]:
    """unit -> imported unit -> the modules that import it."""
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(PKG.rglob("*.py")):
        src = _unit(_module_name(path))
        if src is None:
            continue
        for target, names in _imports(path):
            dst = _unit(target)
            if dst is not None:
                dsts = [dst]
            elif names == ["__version__"]:
                continue  # the version string lives in effbench/__init__.py, which imports nothing eagerly
            else:  # ``from effbench import zoo`` imports the unit ``zoo``; any other name, the lazy exports
                dsts = [n if n in LAYER_OF else "<effbench>" for n in names]
            for dst in dsts:
                if dst != src:
                    edges[src][dst].append(_module_name(path))
    return edges


def test_every_package_of_effbench_has_a_layer() -> None:
    units = {
        p.stem if p.is_file() else p.name
        for p in PKG.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.name != "__init__.py")
    }
    assert units == set(LAYER_OF), f"add to docs/architecture.md and LAYERS: {sorted(units ^ set(LAYER_OF))}"


def test_no_module_imports_a_higher_layer() -> None:
    bad = [
        f"{mod} ({src}, layer {LAYER_OF[src]}) imports effbench.{dst} (layer {LAYER_OF.get(dst, '?')})"
        for src, targets in _edges().items()
        for dst, mods in targets.items()
        for mod in mods
        if dst not in LAYER_OF or LAYER_OF[dst] > LAYER_OF[src]
    ]
    assert not bad, "\n".join(sorted(set(bad)))


def test_no_engine_module_imports_the_command_line() -> None:
    bad = {
        mod
        for src, targets in _edges().items()
        if src not in {"commands", "cli", "__main__"}
        for dst, mods in targets.items()
        if dst in {"commands", "cli"}
        for mod in mods
    }
    assert not bad, sorted(bad)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (node -> nodes it imports), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def _module_imports(path: Path) -> set[str]:
    """The effbench modules ``path`` imports; ``from . import ntire`` counts as importing the submodule."""
    found = set()
    for target, names in _imports(path):
        found.add(target)
        for name in names:
            sub = ROOT / Path(*f"{target}.{name}".split("."))
            if sub.with_suffix(".py").is_file() or (sub / "__init__.py").is_file():
                found.add(f"{target}.{name}")
    return found


def test_the_import_reader_sees_relative_nested_and_submodule_imports() -> None:
    got = _module_imports(PKG / "timing" / "bench.py")
    assert {"effbench.base.inputs", "effbench.timing.roofline", "effbench.timing.ntire"} <= got


def test_the_root_package_imports_no_effbench_module_eagerly() -> None:
    # base/ imports __version__ from it, which is only allowed because it loads nothing at import time
    root = ast.parse((PKG / "__init__.py").read_text())
    eager = [
        n
        for n in root.body
        if (isinstance(n, ast.ImportFrom) and (n.level or (n.module or "").startswith("effbench")))
        or (isinstance(n, ast.Import) and any(a.name.startswith("effbench") for a in n.names))
    ]
    assert not eager, "effbench/__init__.py imports effbench modules eagerly"


def test_the_packages_of_one_layer_import_each_other_in_no_circle() -> None:
    edges = {
        src: {d for d in targets if LAYER_OF.get(d) == LAYER_OF[src]} for src, targets in _edges().items()
    }
    cycle = _cycle(edges)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_timing_package_has_no_import_cycle() -> None:
    modules = {_module_name(p): p for p in (PKG / "timing").glob("*.py") if p.name != "__init__.py"}
    graph = {name: {m for m in _module_imports(p) if m in modules} for name, p in modules.items()}
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])
