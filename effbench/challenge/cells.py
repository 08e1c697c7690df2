"""A challenge entry as sweep cells: the static parts (counts, predicted memory) in one cell, the measured parts
(runtime, quality, measured memory) in another, each run in its own supervised process by the sweep runner, so
an entry resumes, times out and fails alone."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..base.errors import UsageError
from ..base.results import new_result

__all__ = ["PARTS", "EntryCell", "parse_parts"]

PARTS = ("static", "memory", "projection", "runtime", "quality")
# parts measured in one process (one build, one pass over the data); projection: the runtime projected on the
# year's GPU from a shapes-only trace (effbench.challenge.projection), device-free like static and memory
_GROUPS = (("static", "memory", "projection"), ("runtime", "quality"))
_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def parse_parts(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"static,memory"`` (or a sequence) -> the parts in canonical order; unknown names are a usage error."""
    names = [p.strip() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    bad = [p for p in names if p not in PARTS]
    if bad or not names:
        raise UsageError(
            f"--parts: unknown part(s) {', '.join(bad) or '(none)'}; choose from {', '.join(PARTS)}"
        )
    return tuple(p for p in PARTS if p in names)


@dataclass(frozen=True)
class EntryCell:
    """One challenge entry's parts of one group, measured in one process (:mod:`effbench.challenge.worker`).

    Self-contained: it carries the entry's model spec (``ModelSpec.to_dict()``) and the year's rules it needs
    (``counting``: metric -> convention, the counting and memory input sizes), so a cell's result never depends on
    what the rules table says later.
    """

    entry: str
    model: dict[str, Any]
    year: int
    parts: tuple[str, ...]
    counting: dict[str, str] = field(default_factory=dict)
    counting_size: tuple[int, int] = (256, 256)
    memory_size: tuple[int, int] = (256, 256)
    scale: int = 4
    device: str = "cpu"
    dataset: str | None = None
    tile: int | None = None
    backend: str = "eager"
    dtype: str = "fp32"
    #: the year's harness (:class:`~effbench.challenge.harness.Harness` as a dict; empty: the year's current one)
    harness: dict[str, Any] = field(default_factory=dict)
    #: the socket of a :class:`~effbench.challenge.forkserver.ForkServer` that forks this cell (None: a fresh
    #: Python process)
    fork_server: str | None = None

    @property
    def worker(self) -> str:
        """The module the cell process runs: the worker, or the fork server's client."""
        return "effbench.challenge.forkclient" if self.fork_server else "effbench.challenge.worker"

    #: the GPU the projection part projects on (None: the year's GPU)
    gpu: str | None = None

    @property
    def label(self) -> str:
        return f"{self.entry} {'+'.join(self.parts)}"

    @property
    def measured(self) -> bool:
        """Runtime or quality: the cell runs the model on real images (on :attr:`device`)."""
        return any(p in ("runtime", "quality") for p in self.parts)

    @property
    def device_free(self) -> bool:
        """Static and memory only: executors run many such cells at once (:mod:`effbench.sweep.executors`)."""
        return not self.measured

    @property
    def cell_id(self) -> str:
        parts = [self.entry, "_".join(self.parts)]
        if self.measured:
            parts.append(self.device.replace(":", ""))
            if (self.backend, self.dtype) != ("eager", "fp32"):
                parts += [self.backend, self.dtype]
        if "projection" in self.parts and self.gpu:
            parts.append(self.gpu)
        return _SLUG.sub("_", "-".join(parts))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parts"] = list(self.parts)
        d["counting_size"] = list(self.counting_size)
        d["memory_size"] = list(self.memory_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EntryCell:
        d = dict(d)
        for key in ("parts", "counting_size", "memory_size"):
            d[key] = tuple(d[key])
        return cls(**d)

    def new_result(self, **fields: Any) -> dict[str, Any]:
        """A result document for this cell: the entry's name as the model, the counting input as its shape."""
        h, w = self.counting_size
        fields.setdefault("convention", None)
        doc = new_result(
            self.entry,
            self.model.get("target"),
            scale=self.scale,
            input_shape=[1, 3, h, w],
            device=self.device if self.measured else "cpu",
            dtype=self.dtype if self.measured else "fp32",
            protocol="ntire" if self.measured else None,
            backend=self.backend if self.measured else "eager",
            **fields,
        )
        doc.update(entry=self.entry, challenge_year=self.year, parts=list(self.parts))
        doc["cell"] = self.to_dict()
        doc["cell_id"] = self.cell_id
        return doc


def groups_of(parts: Sequence[str]) -> list[tuple[str, ...]]:
    """The cells' part groups for the requested ``parts`` (each group measured in one process)."""
    return [tuple(p for p in g if p in parts) for g in _GROUPS if any(p in parts for p in g)]
