"""The abstract values of the harness walk: what a name of ``select_model`` holds when the draft cannot run the
code (an imported class, a module, a loaded checkpoint and the entries taken from it, the model constructed and
what was done to it, a choice made at run time, or opaque text), and how two of them merge where an undecided
``if`` binds them differently."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from ...zoo.spec import AfterLoad

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "Branch",
    "Checkpoint",
    "Choice",
    "Imported",
    "ModelValue",
    "ModuleValue",
    "Opaque",
    "Stop",
    "Unreadable",
    "choice",
    "is_model_id",
    "known",
    "merge",
    "shown",
]

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".pkl", ".ckpt", ".bin", ".safetensors")


class Unreadable(Exception):
    """A harness construct the draft does not understand."""


class Stop(Exception):
    """The walk reached ``raise`` or ``return``: nothing after it runs for this id."""


@dataclass(frozen=True)
class Opaque:
    """A value the draft cannot know (its source text)."""

    text: str


@dataclass(frozen=True)
class Imported:
    """A name imported from a module: a class, a factory, or a submodule."""

    module: str
    name: str


@dataclass(frozen=True)
class ModuleValue:
    """A module: ``import m`` or ``importlib.import_module("m")``."""

    module: str


@dataclass(frozen=True)
class Choice:
    """A value chosen at run time among literals (in the harness's order)."""

    options: tuple[Any, ...]


@dataclass(frozen=True)
class Checkpoint:
    """``torch.load(path)`` with the entries taken from it (each a key or a :class:`Choice` of keys)."""

    path: Any
    keys: tuple[Any, ...] = ()


@dataclass
class ModelValue:
    """A model object the harness constructed, and what was done to it."""

    module: str
    cls: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    line: int
    load: dict[str, Any] | None = None  # checkpoint path, keys, strict, method
    after_load: list[AfterLoad] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Branch:
    """What the harness does for one ``model_id``."""

    model_id: int
    line: int
    model: ModelValue | None = None
    name: Any = None
    data_range: Any = None
    tile: Any = None
    notes: list[str] = field(default_factory=list)


def is_model_id(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "model_id") or (
        isinstance(node, ast.Attribute) and node.attr == "model_id"
    )


def known(value: Any) -> bool:
    """A plain literal (nothing opaque inside)."""
    if isinstance(value, (list, tuple)):
        return all(known(v) for v in value)
    if isinstance(value, dict):
        return all(known(v) for v in value.values())
    return value is None or isinstance(value, (str, int, float, bool))


def merge(a: Any, b: Any) -> Any:
    """The value of a name an undecided ``if`` binds differently in its two arms."""
    if a == b:
        return a
    if isinstance(a, Checkpoint) and isinstance(b, Checkpoint) and a.path == b.path:
        n = max(len(a.keys), len(b.keys))
        ka, kb = (*a.keys, *([None] * (n - len(a.keys)))), (*b.keys, *([None] * (n - len(b.keys))))
        keys = tuple(x if x == y else choice(x, y) for x, y in zip(ka, kb))
        return Checkpoint(a.path, keys)
    if known(a) and known(b) and not isinstance(a, (list, dict)) and not isinstance(b, (list, dict)):
        return choice(a, b)
    if isinstance(a, Choice) or isinstance(b, Choice):
        return choice(a, b)
    if isinstance(a, ModelValue) or a is not None and b is None:
        return a
    return b if a is None else a


def choice(a: Any, b: Any) -> Choice:
    options: list[Any] = []
    for v in (a, b):
        for o in v.options if isinstance(v, Choice) else (v,):
            if o not in options:
                options.append(o)
    return Choice(tuple(options))


def shown(value: Any) -> str:
    if isinstance(value, Opaque):
        return value.text
    if isinstance(value, Choice):
        return " or ".join(map(repr, value.options))
    return repr(value)
