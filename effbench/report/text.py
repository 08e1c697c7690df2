"""Text formatting shared by every markdown renderer: numbers, MiB, percentages and markdown tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["fmt", "md_table"]


def fmt(v: Any, spec: str = ".3f") -> str:
    """``v`` formatted with ``spec``; ``-`` for a missing (non-numeric) value."""
    return format(v, spec) if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A markdown table's lines: the header, the rule and one line per row (cells as ``str``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines
