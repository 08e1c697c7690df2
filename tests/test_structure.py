"""The package's structure, as issue 23 asks for it: no import circle between modules (lazy and TYPE_CHECKING
imports included), no public function taking more than 12 parameters, no module over 500 lines but the data tables,
one name for one idea. Every claim is read from the sources with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "effbench"

MAX_PARAMETERS = 12
MAX_LINES = 500

#: modules allowed over MAX_LINES: data tables, whose length is the data's, not several ideas'
DATA_TABLES = {
    "effbench/challenge/years.py": "the NTIRE ESR challenges' rules, one entry per year",
}

#: modules whose public signatures are another package's, copied so that code written for it runs unchanged
OTHER_PACKAGES_API = {
    "effbench/base/stand_ins/site/": "the CPU stand-ins of CUDA-only packages (mamba_ssm, causal_conv1d) keep "
    "their constructors' parameters, so the challenge entries that build them run unchanged",
}

#: the names that once meant two modules each (issue 23): each is now one module at most
ONCE_TWICE = ("catalogue", "runner", "worker", "data", "validate")


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported_modules(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports: every ``import`` statement wherever it is (inside a function,
    under ``if TYPE_CHECKING``), relative ones resolved; ``from PKG import sub`` imports the submodule ``sub``,
    any other name imported from a package is the package's ``__init__``."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in MODULES and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: one per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _circle_through(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One closed path through the first module of ``component`` (breadth first), to name in a failure."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                return [*paths[v], start]
            if w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    return component


def test_the_cycle_finder_finds_every_circle() -> None:
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": set(), "d": {"e"}, "e": {"f"}, "f": {"d"}}
    assert _cycles(graph) == [["a", "b"], ["d", "e", "f"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_import_reader_sees_lazy_type_checking_relative_and_submodule_imports() -> None:
    got = _imported_modules("effbench.sweep.runner", MODULES["effbench.sweep.runner"])
    assert "effbench.base.results" in got  # from ..base.results import ...
    assert "effbench.sweep.lock" in got  # from .lock import ...
    cli = _imported_modules("effbench.cli", MODULES["effbench.cli"])
    assert "effbench.commands" in cli  # from . import commands: the package
    assert "effbench" in cli  # from . import __version__, inside a function


def test_no_module_of_the_package_imports_itself_back_through_others() -> None:
    graph = {name: _imported_modules(name, path) for name, path in MODULES.items()}
    circles = [
        f"{' -> '.join(_circle_through(c, graph))} (modules in the circle: {', '.join(c)})"
        for c in _cycles(graph)
    ]
    assert not circles, "import circles:\n" + "\n".join(circles)


def _parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef, *, method: bool) -> list[str]:
    a = fn.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
    decorators = {d.id for d in fn.decorator_list if isinstance(d, ast.Name)}
    if method and "staticmethod" not in decorators and names and names[0] in ("self", "cls"):
        names = names[1:]
    return names


def _public_functions(tree: ast.Module) -> list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, bool]]:
    """``(qualified name, node, is_method)`` of the module's public functions and its public classes' public
    methods (``__init__`` included: it is the class's signature)."""
    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            out.append((node.name, node, False))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    not item.name.startswith("_") or item.name == "__init__"
                ):
                    out.append((f"{node.name}.{item.name}", item, True))
    return out


def test_no_public_function_takes_more_than_12_parameters() -> None:
    long = [
        f"{name}.{qual}: {len(params)} parameters"
        for name, path in MODULES.items()
        if not str(path.relative_to(ROOT)).startswith(tuple(OTHER_PACKAGES_API))
        for qual, fn, method in _public_functions(_tree(path))
        if len(params := _parameters(fn, method=method)) > MAX_PARAMETERS
    ]
    assert not long, "\n".join(long)


def test_the_parameter_count_leaves_out_self_and_cls_only() -> None:
    tree = ast.parse(
        "def f(a, /, b, *c, d, **e): pass\n"
        "class K:\n"
        "    def m(self, a): pass\n"
        "    @classmethod\n"
        "    def c(cls, a, b): pass\n"
        "    @staticmethod\n"
        "    def s(self, a): pass\n"
        "    def _private(self, *a): pass\n"
        "def _private(a): pass\n"
    )
    got = {q: _parameters(fn, method=m) for q, fn, m in _public_functions(tree)}
    assert got == {"f": ["a", "b", "d", "c", "e"], "K.m": ["a"], "K.c": ["a", "b"], "K.s": ["self", "a"]}


def test_no_module_is_over_500_lines_but_the_data_tables() -> None:
    over = {
        str(path.relative_to(ROOT)): n
        for path in MODULES.values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert set(DATA_TABLES) <= {str(p.relative_to(ROOT)) for p in MODULES.values()}, "a data table moved"
    long = {p: n for p, n in over.items() if p not in DATA_TABLES}
    assert not long, "\n".join(f"{p}: {n} lines" for p, n in sorted(long.items()))


def _definitions(name: str) -> list[str]:
    """Where a function or class called ``name`` is defined in the package, nested ones included."""
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in MODULES.values()
        for node in ast.walk(_tree(path))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name
    ]


def test_one_trace_model_in_the_package() -> None:
    assert len(_definitions("trace_model")) <= 1, _definitions("trace_model")


def test_one_conv_helper_in_the_package() -> None:
    assert len(_definitions("_conv")) <= 1, _definitions("_conv")


def test_no_module_name_that_meant_two_things_is_used_twice() -> None:
    # the command modules are named after their commands (commands/profile.py runs counting's profile)
    names = Counter(
        path.stem
        for path in MODULES.values()
        if path.name != "__init__.py" and path.parent != PKG / "commands"
    )
    where = defaultdict(list)
    for path in MODULES.values():
        where[path.stem].append(str(path.relative_to(ROOT)))
    twice = {n: where[n] for n in ONCE_TWICE if names[n] > 1}
    assert not twice, twice


def test_the_options_several_commands_share_are_declared_once() -> None:
    # commands/_options.py declares --json, --device and --calibration; every command adds them through it
    shared = {"--json", "--device", "--calibration"}
    declared = [
        f"{path.relative_to(ROOT)}:{node.lineno} {arg.value}"
        for path in sorted((PKG / "commands").glob("*.py"))
        if path.name != "_options.py"
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "add_argument"
        for arg in node.args
        if isinstance(arg, ast.Constant) and arg.value in shared
    ]
    assert not declared, declared
