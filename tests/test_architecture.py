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
    {"counting", "memory", "timing", "quality", "frequency"},
    {"sweep"},
    {"report", "ci"},
    {"studies", "pytest_plugin"},
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


def test_the_packages_of_one_layer_import_each_other_in_no_circle() -> None:
    edges = {
        src: {d for d in targets if LAYER_OF.get(d) == LAYER_OF[src]} for src, targets in _edges().items()
    }
    seen: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> list[str] | None:
        seen[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if seen.get(nxt) == 1:
                return stack + [node, nxt]
            if nxt not in seen and (cycle := visit(nxt, stack + [node])):
                return cycle
        seen[node] = 2
        return None

    for unit in sorted(edges):
        if unit not in seen:
            cycle = visit(unit, [])
            assert cycle is None, " -> ".join(cycle)
