"""Text formatting shared by every markdown renderer: numbers, MiB, percentages and markdown tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["fmt", "md_table"]


def fmt(v: Any, spec: str = ".3f") -> str:
    """``v`` formatted with ``spec``; ``-`` for a missing (non-numeric) value."""
    return format(v, spec) if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"


_RULES = {None: "---", "left": ":--", "right": "--:"}


def md_table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], align: Sequence[str | None] | None = None
) -> list[str]:
    """A markdown table's lines: the header, the rule and one line per row (cells as ``str``); ``align`` gives
    each column ``"left"``, ``"right"`` or None (the renderer's default)."""
    rule = [_RULES[a] for a in align] if align is not None else [_RULES[None]] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "".join(f"{r}|" for r in rule)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines
