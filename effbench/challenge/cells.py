"""A challenge entry as sweep cells: the device-free parts (counts, predicted memory, projection) in one cell, the
measured parts (runtime, quality) in another, each run in its own supervised process by the sweep runner, so an
entry resumes, times out and fails alone.

A part is a name of ``--parts``; each stands for registered measurements (:mod:`effbench.base.measurement`, the
challenge's own in :mod:`effbench.challenge.units`) in :data:`PART_MEASUREMENTS`. Any other registered measurement
is a part too, under its own name (a plugin's): with the device-free cell when it needs no device, with the
measured one otherwise.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..base.errors import UsageError
from ..base.results import new_result

if TYPE_CHECKING:
    from ..base.measurement import Workload

__all__ = ["PARTS", "PART_MEASUREMENTS", "EntryCell", "groups_of", "needs_device", "parse_parts"]

PARTS = ("static", "memory", "projection", "runtime", "quality")
#: each part's measurements, run in this order (runtime and quality: one pass over the images)
PART_MEASUREMENTS: dict[str, tuple[str, ...]] = {
    "static": ("harness_counts",),
    "memory": ("harness_memory",),
    "projection": ("runtime_projection",),
    "runtime": ("ntire_run",),
    "quality": ("ntire_run",),
}
# parts measured in one process (one build, one pass over the data); projection: the runtime projected on the
# year's GPU from a shapes-only trace (effbench.challenge.projection), device-free like static and memory
_GROUPS = (("static", "memory", "projection"), ("runtime", "quality"))
_MEASURED = frozenset(_GROUPS[1])
_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def needs_device(part: str) -> bool:
    """Whether ``part`` runs the model on the cell's device: runtime and quality, or a registered measurement
    that says so."""
    if part in PARTS:
        return part in _MEASURED
    from ..base.measurement import measurement

    return measurement(part).needs_device


def parse_parts(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"static,memory"`` (or a sequence) -> the parts in canonical order, then any registered measurements named
    (in the order given); other names are a usage error."""
    names = list(
        dict.fromkeys(p.strip() for p in (text.split(",") if isinstance(text, str) else text) if p.strip())
    )
    extra = [p for p in names if p not in PARTS]
    known: tuple[str, ...] = ()
    if extra:
        from ..base.measurement import measurement_names

        known = measurement_names()
    bad = [p for p in extra if p not in known]
    if bad or not names:
        registered = f" or a registered measurement ({', '.join(known)})" if known else ""
        raise UsageError(
            f"--parts: unknown part(s) {', '.join(bad) or '(none)'}; choose from {', '.join(PARTS)}{registered}"
        )
    return tuple(p for p in PARTS if p in names) + tuple(extra)


@dataclass(frozen=True)
class EntryCell:
    """One challenge entry's parts of one group, measured in one process (:mod:`effbench.challenge.entry_process`).

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
    #: the folders of LR images an ``int8`` measured cell is calibrated on (in its id when set)
    calibration: tuple[str, ...] = ()
    #: the year's harness (:class:`~effbench.challenge.harness.Harness` as a dict; empty: the year's current one)
    harness: dict[str, Any] = field(default_factory=dict)
    #: the socket of a :class:`~effbench.challenge.forkserver.ForkServer` that forks this cell (None: a fresh
    #: Python process)
    fork_server: str | None = None

    @property
    def worker(self) -> str:
        """The module the cell process runs: the worker, or the fork server's client."""
        return "effbench.challenge.forkclient" if self.fork_server else "effbench.challenge.entry_process"

    #: the GPU the projection part projects on (None: the year's GPU)
    gpu: str | None = None

    @property
    def label(self) -> str:
        return f"{self.entry} {'+'.join(self.parts)}"

    @property
    def measured(self) -> bool:
        """Runtime or quality (or a measurement that needs a device): the cell runs the model on
        :attr:`device`."""
        return any(needs_device(p) for p in self.parts)

    @property
    def device_free(self) -> bool:
        """Static and memory only: executors run many such cells at once (:mod:`effbench.sweep.executors`)."""
        return not self.measured

    @property
    def measurements(self) -> tuple[str, ...]:
        """The registered measurements the cell's parts stand for (:data:`PART_MEASUREMENTS`), in order."""
        return tuple(dict.fromkeys(m for p in self.parts for m in PART_MEASUREMENTS.get(p, (p,))))

    def workload(self) -> Workload:
        """What the cell's measurements run on: the year's counting input on the CPU in fp32 for a device-free
        cell; the year's memory input (its largest validation image) on :attr:`device` in :attr:`dtype` for a
        measured one."""
        from ..base.measurement import Workload

        if self.measured:
            return Workload(
                size=tuple(self.memory_size), scale=self.scale, dtype=self.dtype, device=self.device
            )
        return Workload(size=tuple(self.counting_size), scale=self.scale)

    @property
    def cell_id(self) -> str:
        parts = [self.entry, "_".join(self.parts)]
        if self.measured:
            parts.append(self.device.replace(":", ""))
            if (self.backend, self.dtype) != ("eager", "fp32"):
                parts += [self.backend, self.dtype]
            if self.calibration:  # two calibrations are two cells: a resume never mixes them
                parts.append("cal" + hashlib.sha1("\n".join(self.calibration).encode()).hexdigest()[:6])
        if "projection" in self.parts and self.gpu:
            parts.append(self.gpu)
        return _SLUG.sub("_", "-".join(parts))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parts"] = list(self.parts)
        d["counting_size"] = list(self.counting_size)
        d["memory_size"] = list(self.memory_size)
        if self.calibration:
            d["calibration"] = list(self.calibration)
        else:  # documents written before the setting existed hold the same settings
            del d["calibration"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EntryCell:
        d = dict(d)
        for key in ("parts", "counting_size", "memory_size"):
            d[key] = tuple(d[key])
        d["calibration"] = tuple(d.get("calibration", ()))
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
    """The cells' part groups for the requested ``parts`` (each group measured in one process): the device-free
    parts, then the measured ones; a registered measurement joins the group its ``needs_device`` says."""
    extra = [p for p in parts if p not in PARTS]
    groups = []
    for built_in in _GROUPS:
        measured = built_in is _GROUPS[1]
        group = (*(p for p in built_in if p in parts), *(p for p in extra if needs_device(p) == measured))
        if group:
            groups.append(group)
    return groups
