"""Sweep cells (one model x scale x size x device x protocol x dtype x backend) and the TOML configuration that lists them."""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import asdict, dataclass, field
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..base.errors import UsageError
from ..base.results import new_result

if TYPE_CHECKING:
    from ..timing.steady import TimingTarget
    from ..zoo.spec import ModelSpec

__all__ = ["CPU_BUDGET_S", "CPU_SIZE", "GPU_SIZE", "Cell", "SweepConfig", "load_config"]

# The default sweep, sized per device: on a CUDA device the paper's 256x256 LR inputs; on a CPU, where one forward
# of the zoo at 256x256 takes seconds, 64x64 LR inputs (256x256 outputs at x4) and at most CPU_BUDGET_S seconds of
# timed runs per cell, so that the whole zoo is compared in about a minute and a half on 2 cores.
GPU_SIZE = (256, 256)
CPU_SIZE = (64, 64)
CPU_BUDGET_S = 4.0

_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Cell:
    """One measurement of a sweep; its :attr:`cell_id` names its result file. :attr:`worker` is the module the
    runner starts for it (``python -m WORKER CELL_JSON OUT_JSON``); other kinds of cell (challenge entries) name
    their own."""

    worker: ClassVar[str] = "effbench.sweep.worker"

    spec: str
    scale: int = 4
    size: tuple[int, int] = (256, 256)
    device: str = "cpu"
    protocol: str = "steady"
    dtype: str = "fp32"
    repeats: int | None = None
    threads: int | None = None
    dataset: str | None = None
    roofline: bool = False
    static: bool = True
    breakdown: bool = False
    backend: str = "eager"
    timing: bool = True
    budget_s: float | None = None  # seconds of timed runs on CPU (None: the timing target's default)
    # extra registered measurements (effbench.base.measurement: a plugin's), after those of the flags above
    measure: tuple[str, ...] = ()
    # the folders of LR images a quantised dtype (int8) is calibrated on: a setting of the cell, in its id
    calibration: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "measure", tuple(dict.fromkeys(self.measure)))
        object.__setattr__(self, "calibration", tuple(str(f) for f in self.calibration))

    @property
    def parts(self) -> tuple[str, ...]:
        """The registered measurements this cell runs, in order: ``counts`` and ``predicted_memory`` when static;
        ``runtime`` when timed (then ``dataset_psnr`` with a data set under a protocol other than ntire, which
        scores it in its own pass); ``op_time_breakdown`` with ``breakdown``; ``measured_memory`` on CUDA; then
        the extra ones of :attr:`measure`."""
        names = ["counts", "predicted_memory"] if self.static else []
        if self.timing:
            names.append("runtime")
            if self.dataset and self.protocol != "ntire":
                names.append("dataset_psnr")
        if self.breakdown:
            names.append("op_time_breakdown")
        if self.device.startswith("cuda"):
            names.append("measured_memory")
        return tuple(dict.fromkeys([*names, *self.measure]))

    @property
    def device_free(self) -> bool:
        """True for a cell that times nothing (static metrics and predicted memory only, and extra measurements
        that need no device): executors run many at once, wherever a CPU is free."""
        if self.timing:
            return False
        from ..base.measurement import measurement

        return not any(measurement(name).needs_device for name in self.measure)

    @property
    def model_name(self) -> str:
        return _parse(self.spec).name

    def timing_target(self) -> TimingTarget | None:
        """The adaptive-repeats target of this cell's timing (:class:`effbench.timing.steady.TimingTarget`), or
        None for the default one."""
        if self.budget_s is None:
            return None
        from ..timing.steady import TimingTarget

        return TimingTarget(budget_s=self.budget_s)

    @property
    def label(self) -> str:
        """What the progress bar shows while the cell runs."""
        return f"{self.model_name} {self.size[0]}x{self.size[1]} {self.device if self.timing else 'static'}"

    @property
    def cell_id(self) -> str:
        name = self.model_name
        if not _parse(self.spec).is_zoo:  # two files may define the same class name
            name += "-" + hashlib.sha1(self.spec.encode()).hexdigest()[:6]
        parts = [name, f"x{self.scale}", f"{self.size[0]}x{self.size[1]}"]
        if not self.timing:  # device, dtype, protocol and backend change nothing that is counted or predicted
            return _SLUG.sub("_", "_".join([*parts, "static", *sorted(self.measure)]))
        parts += [self.device.replace(":", ""), self.dtype, self.protocol]
        if self.backend != "eager":  # eager cells keep the ids they had before backends existed
            parts.append(self.backend)
        if self.dataset:
            parts.append(Path(self.dataset).name or "data")
        parts += sorted(self.measure)  # cells without extra measurements keep their ids
        if self.calibration:  # two calibrations are two cells: a resume never mixes them
            parts.append("cal" + hashlib.sha1("\n".join(self.calibration).encode()).hexdigest()[:6])
        return _SLUG.sub("_", "_".join(parts))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size)
        # documents written before these settings existed hold the same settings when they are unset
        for key in ("measure", "calibration"):
            if d[key]:
                d[key] = list(d[key])
            else:
                del d[key]
        return d

    def new_result(self, **fields: Any) -> dict[str, Any]:
        """A result document for this cell (model, size, device, dtype, protocol and the cell itself filled in)."""
        h, w = self.size
        doc = new_result(
            self.model_name,
            self.spec,
            scale=self.scale,
            input_shape=[1, 3, h, w],
            device=self.device,
            dtype=self.dtype,
            protocol=self.protocol if self.timing else None,
            backend=self.backend,
            **fields,
        )
        doc["cell"] = self.to_dict()
        doc["cell_id"] = self.cell_id
        return doc

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cell:
        d = dict(d)
        d["size"] = tuple(d.get("size", (256, 256)))
        d["measure"] = tuple(d.get("measure", ()))
        d["calibration"] = tuple(d.get("calibration", ()))
        return cls(**d)


@dataclass
class SweepConfig:
    """The axes of a sweep; :meth:`cells` is their cross product. Empty ``sizes`` and a ``budget_s`` of None are
    sized per device: :data:`GPU_SIZE` on CUDA, :data:`CPU_SIZE` with :data:`CPU_BUDGET_S` seconds of timed runs
    per cell on a CPU."""

    models: list[str] = field(default_factory=list)
    scales: list[int] = field(default_factory=lambda: [4])
    sizes: list[tuple[int, int]] = field(default_factory=list)
    devices: list[str] = field(default_factory=lambda: ["auto"])
    protocols: list[str] = field(default_factory=lambda: ["steady"])
    dtypes: list[str] = field(default_factory=lambda: ["fp32"])
    backends: list[str] = field(default_factory=lambda: ["eager"])
    repeats: int | None = None
    threads: int | None = None
    dataset: str | None = None
    roofline: bool = False
    static: bool = True
    breakdown: bool = False
    timing: bool = True
    budget_s: float | None = None
    measure: list[str] = field(default_factory=list)
    calibration: list[str] = field(default_factory=list)  # int8 cells' calibration folders
    timeout: float | None = None
    out: str | None = None
    executor: str = "local"
    jobs: int = 1
    address: str | None = None
    allow_shared_cpu: bool = False
    gpu_type: str | None = None
    slurm_partition: str | None = None

    def executor_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`effbench.sweep.executors.get_executor` this sweep asks for."""
        return {
            "jobs": self.jobs,
            "address": self.address,
            "allow_shared_cpu": self.allow_shared_cpu,
            "gpu_type": self.gpu_type,
            "slurm_partition": self.slurm_partition,
        }

    def sizes_for(self, device: str) -> list[tuple[int, int]]:
        """The LR sizes of the cells on ``device``: the configured ones, else the device's default."""
        if self.sizes:
            return list(self.sizes)
        return [CPU_SIZE if device == "cpu" else GPU_SIZE]

    def budget_for(self, device: str) -> float | None:
        """Seconds of timed runs per cell on ``device`` (CPU only; CUDA cells time a fixed number of repeats)."""
        if device != "cpu":
            return None
        return CPU_BUDGET_S if self.budget_s is None else self.budget_s

    def resolved_models(self) -> list[str]:
        """The model specs; empty or ``["zoo"]`` means every zoo network that has a requested scale (references
        such as ``bicubic`` only when named)."""
        if self.models and self.models != ["zoo"]:
            return list(self.models)
        from ..zoo.registry import list_models, model_info

        return [
            m
            for m in list_models()
            if not model_info(m).reference and any(s in model_info(m).scales for s in self.scales)
        ]

    def calibration_for(self, dtype: str) -> tuple[str, ...]:
        """The calibration folders of a cell in ``dtype``: :attr:`calibration` for a post-training quantisation
        (``int8``), none for a torch dtype (nothing calibrates it, so its cell and id stay the same)."""
        from ..base.inputs import DTYPES

        return () if dtype in DTYPES else tuple(self.calibration)

    def measure_names(self) -> tuple[str, ...]:
        """The extra registered measurements of every cell, checked: an unknown name is a usage error listing the
        registered ones."""
        from ..base.measurement import measurement

        for name in self.measure:
            measurement(name)
        return tuple(dict.fromkeys(self.measure))

    def cells(self) -> list[Cell]:
        from ..base.inputs import resolve_device

        measure = self.measure_names()
        if not self.timing:
            return self._untimed_cells(measure)
        devices = [resolve_device(d).type if d == "auto" else d for d in self.devices]
        for d in devices:
            resolve_device(d)  # clear error for an unavailable device before anything runs
        out = []
        zoo_scales: dict[str, tuple[int, ...]] = {}
        from ..backends import get_backend

        for b in self.backends:
            get_backend(b)  # clear error for an unknown backend before anything runs
        axes = [
            (spec, scale, dev, size, proto, dt, backend)
            for spec, scale, dev in product(self.resolved_models(), self.scales, devices)
            for size, proto, dt, backend in product(
                self.sizes_for(dev), self.protocols, self.dtypes, self.backends
            )
        ]
        for spec, scale, dev, size, proto, dt, backend in axes:
            if _parse(spec).is_zoo:  # skip zoo models without this scale
                if spec not in zoo_scales:
                    from ..zoo.registry import model_info

                    zoo_scales[spec] = model_info(spec).scales
                if scale not in zoo_scales[spec]:
                    continue
            out.append(
                Cell(
                    spec,
                    scale,
                    tuple(size),
                    dev,
                    proto,
                    dt,
                    self.repeats,
                    self.threads,
                    self.dataset,
                    self.roofline,
                    self.static,
                    self.breakdown,
                    backend,
                    budget_s=self.budget_for(dev),
                    measure=measure,
                    calibration=self.calibration_for(dt),
                )
            )
        if not out:
            raise UsageError("the sweep has no cells (check --models and --scales)")
        return out

    def _untimed_cells(self, measure: tuple[str, ...] = ()) -> list[Cell]:
        """Device-free cells (static metrics and predicted memory): one per model x scale x size."""
        clash = [
            flag
            for flag, on in (
                ("--no-static", not self.static),
                ("--breakdown", self.breakdown),
                ("--roofline", self.roofline),
                ("--dataset", self.dataset),
            )
            if on
        ]
        if clash:
            raise UsageError(
                f"--no-timing cells measure static metrics and predicted memory only; drop {', '.join(clash)}"
            )
        out = []
        for spec, scale, size in product(self.resolved_models(), self.scales, self.sizes or [GPU_SIZE]):
            if _parse(spec).is_zoo:
                from ..zoo.registry import model_info

                if scale not in model_info(spec).scales:
                    continue
            out.append(Cell(spec, scale, tuple(size), timing=False, measure=measure))
        if not out:
            raise UsageError("the sweep has no cells (check --models and --scales)")
        return out


def _parse(spec: str) -> ModelSpec:
    from ..zoo.spec import ModelSpec

    return ModelSpec.parse(spec)


def _size(v: Any) -> tuple[int, int]:
    from ..base.inputs import check_size, parse_size

    if isinstance(v, (list, tuple)) and len(v) == 2:
        return check_size(v)
    return parse_size(str(v))


def load_config(path: str | Path) -> SweepConfig:
    """Read a sweep from TOML: keys at top level or under ``[sweep]`` (models, scales, sizes, devices, ...)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        try:
            import tomli as tomllib
        except ImportError as exc:
            raise UsageError(
                "reading TOML on Python 3.10 needs the 'tomli' package (pip install tomli)"
            ) from exc
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"sweep config not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"sweep config {path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read the sweep config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"sweep config {path} is not valid TOML: {exc}") from None
    data = data.get("sweep", data)
    cfg = SweepConfig()
    known = set(vars(cfg))
    unknown = set(data) - known
    if unknown:
        raise UsageError(
            f"unknown key(s) in {path}: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
        )
    for key, val in data.items():
        if key == "sizes":
            val = [_size(v) for v in val]
        elif key in ("models", "devices", "protocols", "dtypes", "backends", "measure", "calibration"):
            val = [val] if isinstance(val, str) else list(val)
        elif key == "scales":
            values = [val] if isinstance(val, int) else val
            if not isinstance(values, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in values
            ):
                raise UsageError(f"{path}: scales must be an integer or a list of integers, got {val!r}")
            val = list(values)
        setattr(cfg, key, val)
    return cfg
