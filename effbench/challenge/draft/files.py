"""The repository's files, read without importing them: ``models/teamNN_*`` paired with ``model_zoo/teamNN_*`` by
team number, and what :mod:`ast` tells of a model file's classes (the last ``nn.Module`` subclass, a method
defined, ``__init__`` parameters whose default is ``None``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from .values import CHECKPOINT_SUFFIXES

__all__ = [
    "checkpoint_files",
    "last_module_class",
    "method_defined",
    "model_files",
    "module_file",
    "none_defaults",
]

_TEAM = re.compile(r"team(\d+)", re.IGNORECASE)


def _team(path: Path) -> int | None:
    m = _TEAM.match(path.name)
    return int(m.group(1)) if m else None


def model_files(repo: Path) -> dict[int, Path]:
    """``models/teamNN_*.py`` (or a ``teamNN_*`` package's ``__init__.py``) by team number (the first by name)."""
    out: dict[int, Path] = {}
    for p in sorted((repo / "models").glob("team*")):
        file = p / "__init__.py" if p.is_dir() else p
        n = _team(p)
        if n is not None and file.suffix == ".py" and file.is_file():
            out.setdefault(n, file)
    return out


def checkpoint_files(repo: Path) -> dict[int, list[Path]]:
    out: dict[int, list[Path]] = {}
    for p in sorted((repo / "model_zoo").glob("team*")):
        n = _team(p)
        if n is not None and p.is_file() and p.suffix.lower() in CHECKPOINT_SUFFIXES:
            out.setdefault(n, []).append(p)
    return out


def _classes(file: Path) -> dict[str, ast.ClassDef]:
    try:
        tree = ast.parse(file.read_text(encoding="utf-8", errors="replace"), str(file))
    except SyntaxError:
        return {}
    return {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}


def last_module_class(file: Path) -> str | None:
    """The last class in ``file`` deriving (directly or through classes defined there) from a ``torch.nn`` class."""
    modules: list[str] = []
    for node in _classes(file).values():
        bases = [ast.unparse(b) for b in node.bases]
        if any(b in modules or b.startswith(("nn.", "torch.nn.")) or b == "Module" for b in bases):
            modules.append(node.name)
    return modules[-1] if modules else None


def method_defined(file: Path, cls: str, method: str) -> bool:
    """Whether class ``cls`` of ``file`` (or a base class defined in the same file) defines ``method``."""
    classes = _classes(file)
    seen: set[str] = set()
    todo = [cls]
    while todo:
        name = todo.pop()
        node = classes.get(name)
        if node is None or name in seen:
            continue
        seen.add(name)
        if any(isinstance(f, ast.FunctionDef) and f.name == method for f in node.body):
            return True
        todo += [ast.unparse(b) for b in node.bases]
    return False


def none_defaults(file: Path, cls: str) -> set[str]:
    """The ``__init__`` parameters of class ``cls`` in ``file`` whose default is ``None``."""
    node = _classes(file).get(cls)
    for f in node.body if node is not None else []:
        if isinstance(f, ast.FunctionDef) and f.name == "__init__":
            a = f.args
            pos = [*a.posonlyargs, *a.args]
            pairs = [*zip(pos[len(pos) - len(a.defaults) :], a.defaults), *zip(a.kwonlyargs, a.kw_defaults)]
            return {p.arg for p, d in pairs if isinstance(d, ast.Constant) and d.value is None}
    return set()


def module_file(repo: Path, module: str) -> Path | None:
    base = repo.joinpath(*module.split("."))
    for file in (base.with_suffix(".py"), base / "__init__.py"):
        if file.is_file():
            return file
    return None
