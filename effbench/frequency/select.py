"""Which blocks of a model to analyse: patterns, explicit lists, and a default per zoo family."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from torch import nn

from ..base.errors import UsageError

ModuleSelector = str | Sequence[str | nn.Module] | None

#: The default blocks per model family: the family's attention / main block class names. The first family
#: whose classes occur in a model wins; a model of none of these families falls back to its top-level body
#: blocks (see :func:`default_blocks`).
DEFAULT_BLOCKS: dict[str, tuple[str, ...]] = {
    "FMEN / FMEN-S": ("HFAB",),  # high-frequency attention blocks (the paper's Sec. 4.3)
    "IMDN": ("CCALayer", "CCA"),  # contrast-aware channel attention inside each IMDB
    "RFDN / E-RFDN": ("ESA",),  # enhanced spatial attention inside each RFDB
    "RLFN": ("ESA",),
    "LatticeNet": ("LatticeBlock",),
}

#: Names of the top-level containers that hold a model's main blocks (fallback when no family matches).
BODY_NAMES: tuple[str, ...] = ("body", "trunk", "blocks", "backbone", "layers", "features")


def _outermost(named: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    """Drop modules nested inside another selected module (a block's own sub-blocks of the same kind)."""
    out: list[tuple[str, nn.Module]] = []
    for name, mod in named:
        if any(name.startswith(prev + ".") for prev, _ in out):
            continue
        out.append((name, mod))
    return out


def default_blocks(model: nn.Module) -> tuple[list[tuple[str, nn.Module]], str]:
    """The default blocks of ``model`` and a description of the rule that picked them.

    Family table first (:data:`DEFAULT_BLOCKS`, by class name); else the children of the first top-level
    container named in :data:`BODY_NAMES`; else the top-level children that have sub-modules.
    """
    named = [(n, m) for n, m in model.named_modules() if n]
    for family, classes in DEFAULT_BLOCKS.items():
        hits = [(n, m) for n, m in named if type(m).__name__ in classes]
        if hits:
            return _outermost(hits), f"{family}: class {' / '.join(classes)}"
    for body in BODY_NAMES:
        container = getattr(model, body, None)
        if isinstance(container, nn.Module) and not isinstance(container, nn.modules.conv._ConvNd):
            kids = [(f"{body}.{n}", m) for n, m in container.named_children()]
            if kids:
                return kids, f"children of top-level '{body}'"
    kids = [(n, m) for n, m in model.named_children() if any(True for _ in m.children())]
    if kids:
        return kids, "top-level composite children"
    if not named:
        raise UsageError(f"{type(model).__name__} has no sub-modules: there are no blocks to analyse")
    raise UsageError(
        f"no default blocks found in {type(model).__name__}: give modules= a name pattern "
        f"(e.g. one of {', '.join(n for n, _ in named[:8])})"
    )


def _match(pattern: str, name: str, mod: nn.Module) -> bool:
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], name) is not None
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(type(mod).__name__, pattern)


def select_modules(
    model: nn.Module, modules: ModuleSelector = None
) -> tuple[list[tuple[str, nn.Module]], str]:
    """Resolve ``modules`` to ``[(qualified name, module), ...]`` in model order, plus a description.

    ``modules`` is ``None`` (the family default), a pattern string, or a list of patterns / module objects.
    A pattern is a glob matched against the qualified name (``body.*.att``) or the class name (``HFAB``);
    a ``re:`` prefix makes it a regular expression matched against the whole qualified name. A string may hold
    several comma-separated patterns. Only the outermost of nested matches is kept.
    """
    if modules is None:
        return default_blocks(model)
    if isinstance(modules, str):
        items: list[str | nn.Module] = [p.strip() for p in modules.split(",") if p.strip()]
        if not items:
            raise UsageError(f"empty module pattern {modules!r}")
    else:
        items = list(modules)
        if not items:
            raise UsageError("modules= is an empty list; give patterns, module objects or None")
    named = [(n, m) for n, m in model.named_modules() if n]
    by_id = {id(m): n for n, m in named}
    chosen: dict[str, nn.Module] = {}
    for item in items:
        if isinstance(item, nn.Module):
            if id(item) not in by_id:
                raise UsageError(
                    f"module {type(item).__name__} given in modules= is not a sub-module of the model"
                )
            chosen[by_id[id(item)]] = item
            continue
        if not isinstance(item, str):
            raise UsageError(
                f"modules= items must be patterns or nn.Module objects, got {type(item).__name__}"
            )
        if item.startswith("re:"):
            try:
                re.compile(item[3:])
            except re.error as exc:
                raise UsageError(f"bad regular expression {item[3:]!r}: {exc}") from None
        hits = [(n, m) for n, m in named if _match(item, n, m)]
        if not hits:
            sample = ", ".join(f"{n} ({type(m).__name__})" for n, m in named[:12])
            raise UsageError(
                f"no module of {type(model).__name__} matches {item!r}; modules include: {sample}"
            )
        chosen.update(hits)
    order = {n: i for i, (n, _) in enumerate(named)}
    ordered = sorted(chosen.items(), key=lambda kv: order[kv[0]])
    desc = "modules " + ", ".join(i if isinstance(i, str) else type(i).__name__ for i in items)
    return _outermost(ordered), desc
