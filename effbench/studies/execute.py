"""Run a study: one sweep cell per variant (fresh process each, :func:`effbench.sweep.run_sweep`), then the
comparison with the paper, written as ``study.json``, ``study.md`` and ``study.png`` in the output folder."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from ..base.errors import UsageError
from ..base.options import with_changes
from .definitions import Study, get_study
from .formulas import block_memory, fusion_formula
from .group_timing import device_peaks, roofline_estimates, time_groups_interleaved
from .models_file import build_variants, write_models_file
from .verdicts import analyse_study

if TYPE_CHECKING:
    from ..sweep import Cell
    from ..sweep.executors import Executor

__all__ = ["StudySettings", "run_study"]


def _load_cell(out: Path, cell: Cell) -> dict[str, Any]:
    """The result of ``cell`` in ``out/cells``; a folder moved or cloned elsewhere (other absolute path in the
    spec, so another cell id) is matched by factory name, size, device and scale."""
    try:
        return json.loads((out / "cells" / f"{cell.cell_id}.json").read_text())
    except (OSError, ValueError):
        pass
    from ..zoo.spec import ModelSpec

    fn = ModelSpec.parse(cell.spec).attr
    for path in sorted((out / "cells").glob(f"{fn}-*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        c = doc.get("cell", {})
        if (
            ModelSpec.parse(str(c.get("spec") or fn)).attr == fn
            and list(c.get("size", [])) == list(cell.size)
            and c.get("device") == cell.device
            and c.get("scale") == cell.scale
            and c.get("dtype", "fp32") == cell.dtype
            and c.get("backend", "eager") == cell.backend
        ):
            return doc
    return {"status": "missing", "metrics": {}}


def _fill_peak_summaries(
    study: Study, models: dict[str, nn.Module | str], docs: dict[str, dict[str, Any]], size: tuple[int, int]
) -> None:
    """Cells measured before ``peak_memory_at`` existed get it from the registered (device-free)
    ``predicted_memory`` measurement again."""
    from ..base.measurement import Workload, run_measurements
    from ..zoo.spec import resolve_model

    for v in study.variants:
        m = docs.get(v.name, {}).get("metrics")
        model = models.get(v.name)
        if docs.get(v.name, {}).get("status") != "ok" or not m or "peak_memory_at" in m:
            continue
        if not isinstance(model, nn.Module):
            continue
        try:
            run = run_measurements(
                resolve_model(model, scale=v.scale), Workload(size, scale=v.scale), ["predicted_memory"]
            )
            m["peak_memory_at"] = run.results["predicted_memory"].peak_summary()  # type: ignore[attr-defined]
        except Exception:  # an explanation only; the report says so when it is missing
            pass


@dataclass(frozen=True)
class StudySettings:
    """What every variant of a study is measured with.

    ``device``: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``; ``size``: the LR input (None: the study's default);
    ``repeats``: timed forwards per variant (None: the study's default); ``threads``: CPU threads per variant
    process (None: 1 on CPU, the steadiest for comparisons); ``rounds``: interleaved rounds per baseline group
    (None: ``repeats``, at least 5); ``timeout``: seconds per variant cell; ``backend`` and ``dtype``
    (:mod:`effbench.backends`) of every variant's cell; ``calibration``: the folders of LR images an ``int8``
    dtype is calibrated on (in each cell and its id)."""

    device: str = "cpu"
    size: tuple[int, int] | None = None
    repeats: int | None = None
    threads: int | None = None
    rounds: int | None = None
    timeout: float | None = None
    backend: str = "eager"
    dtype: str = "fp32"
    calibration: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from ..backends import get_backend, model_dtype

        object.__setattr__(self, "calibration", tuple(str(f) for f in self.calibration))

        if self.size is not None:
            h, w = int(self.size[0]), int(self.size[1])
            if h <= 0 or w <= 0:
                raise UsageError(f"size must be positive, got {h}x{w}")
            object.__setattr__(self, "size", (h, w))
        for what, value in (("repeats", self.repeats), ("rounds", self.rounds), ("threads", self.threads)):
            if value is not None and value < 1:
                raise UsageError(f"{what} must be >= 1, got {value}")
        get_backend(self.backend)
        model_dtype(self.backend, self.dtype)  # int8 on a backend that cannot quantise: refused here


def run_study(
    name: str | Study,
    settings: StudySettings | None = None,
    out_dir: str | Path | None = None,
    *,
    executor: Executor | None = None,
    progress: bool = True,
    command: str | None = None,
    render_only: bool = False,
    **setting_changes: object,
) -> dict[str, Any]:
    """Run study ``name`` (``"blocks"``, ``"attention"``, ``"fusion"`` or a :class:`Study`) and write its report.

    ``settings`` (:class:`StudySettings`; any of its fields may be given as a keyword instead:
    ``run_study("fusion", device="cuda", size=(64, 64))``). Every variant is one sweep cell (its own process)
    running the registered measurements (:mod:`effbench.base.measurement`): params/FLOPs/activations,
    predicted peak memory, runtime (steady protocol, ``repeats`` timed forwards), the roofline bound, and on
    CUDA the measured peak memory; then each baseline and its variants are timed again in interleaved rounds in
    this process, the basis of the time verdicts. Writes ``OUT/cells/``, ``OUT/results.csv``,
    ``OUT/study.json``, ``OUT/study.md`` and ``OUT/study.png`` (``OUT`` defaults to ``studies/<name>``) and
    returns the study document (also in ``study.json``). ``render_only=True`` runs nothing and re-renders the
    report from the cells already in ``OUT`` (same size, device and rows). ``executor`` runs the variants' cells
    (:func:`effbench.sweep.executors.get_executor`; default: local). The interleaved rounds time eager models
    in this process, so under another backend they are skipped and the verdicts use the cells' medians
    (``paired_skipped`` says so), and the per-operator split is the eager model's (eager only).
    """
    from ..base.inputs import resolve_device
    from ..base.results import write_json_atomic
    from ..sweep import run_sweep
    from .report import render_png, render_study_markdown

    cfg = with_changes(settings or StudySettings(), setting_changes, caller="run_study", what="setting")
    study = get_study(name) if isinstance(name, str) else name
    if not study.variants:
        raise UsageError(f"study {study.name!r} has no variants")
    dev = resolve_device(cfg.device).type if cfg.device == "auto" else cfg.device
    if not render_only:  # re-rendering a GPU study's cells needs no GPU
        resolve_device(dev)
    h, w = cfg.size or study.default_size
    repeats = cfg.repeats if cfg.repeats is not None else study.default_repeats
    threads = (
        1 if cfg.threads is None and dev == "cpu" else cfg.threads
    )  # one thread: far steadier comparisons
    out = Path(out_dir) if out_dir is not None else Path("studies") / study.name
    t0 = time.perf_counter()
    cells = _cells(study, write_models_file(study, out), cfg, dev, (h, w), repeats, threads)
    previous: dict[str, Any] = {}
    if render_only:
        previous = _previous(out)
        if all(_load_cell(out, c).get("status") == "missing" for c in cells.values()):
            raise UsageError(
                f"--render-only: no cells of study {study.name!r} at {h}x{w} on {dev} in {out}/cells"
            )
        status = previous.get("sweep_status", {})
        command = command or previous.get("command")
        repeats = previous.get("repeats", repeats)
        threads = previous.get("threads", threads)
    else:
        status = run_sweep(
            list(cells.values()), out, timeout=cfg.timeout, progress=progress, executor=executor
        )["status"]
    docs = {vname: _load_cell(out, cell) for vname, cell in cells.items()}
    models = build_variants(study, {v: c.spec for v, c in cells.items()})
    _fill_peak_summaries(study, models, docs, (h, w))
    if render_only:
        paired, paired_skipped = previous.get("paired") or {}, previous.get("paired_skipped")
    else:
        paired, paired_skipped = _paired(study, models, docs, cfg, dev, (h, w), repeats, threads, out)
    peaks = device_peaks(docs)
    result: dict[str, Any] = {
        "schema": "effbench.study/1",
        "study": study.name,
        "title": study.title,
        "source": study.source,
        "paper_setting": study.paper_setting,
        "notes": list(study.notes),
        "device": dev,
        "backend": cfg.backend,
        "dtype": cfg.dtype,
        "size": [h, w],
        "repeats": repeats,
        "threads": threads,
        "command": command,
        "env": next((d.get("env") for d in docs.values() if d.get("env")), {}),
        "rows": analyse_study(
            study, docs, dev, (h, w), roofline_estimates(study, models, (h, w), peaks), paired
        ),
        "paper_size": list(study.paper_size) if study.paper_size else None,
        "paper_device": study.paper_device,
        "device_peaks": peaks,
        "paired": paired,
        "paired_skipped": paired_skipped,
        "sweep_status": dict(status),
    }
    if study.name == "fusion" or any(v.spec.endswith("fusion_probe") for v in study.variants):
        result["formula"] = fusion_formula(study, (h, w))
    if study.name == "blocks":
        result["block_memory"] = block_memory((h, w))
    result["seconds"] = previous.get("seconds", 0.0) if render_only else time.perf_counter() - t0
    write_json_atomic(out / "study.json", result)
    (out / "study.md").write_text(render_study_markdown(result))
    png = render_png(result, out / "study.png")
    result["files"] = [str(out / "study.json"), str(out / "study.md")] + ([str(png)] if png else [])
    return result


def _cells(
    study: Study,
    specs: dict[str, str],
    cfg: StudySettings,
    dev: str,
    size: tuple[int, int],
    repeats: int,
    threads: int | None,
) -> dict[str, Cell]:
    """One sweep cell per variant, by name: its counts, predicted memory, runtime and roofline (and measured
    memory on CUDA). A variant compared with a baseline is profiled later, in interleaved passes with its group;
    the others' per-operator split is measured in their cell (eager only)."""
    from ..base.inputs import DTYPES
    from ..sweep import Cell

    names = {v.name for v in study.variants}
    return {
        v.name: Cell(
            specs[v.name],
            v.scale,
            size,
            dev,
            "steady",
            cfg.dtype,
            repeats,
            threads,
            roofline=True,
            breakdown=v.baseline not in names and cfg.backend == "eager",
            backend=cfg.backend,
            calibration=() if cfg.dtype in DTYPES else cfg.calibration,
        )
        for v in study.variants
    }


def _previous(out: Path) -> dict[str, Any]:
    """The ``study.json`` already in ``out`` (empty when there is none or it is unreadable)."""
    try:
        return json.loads((out / "study.json").read_text())
    except (OSError, ValueError):
        return {}


def _paired(
    study: Study,
    models: dict[str, nn.Module | str],
    docs: dict[str, dict[str, Any]],
    cfg: StudySettings,
    dev: str,
    size: tuple[int, int],
    repeats: int,
    threads: int | None,
    out: Path,
) -> tuple[dict[str, Any], str | None]:
    """The interleaved rounds of each baseline group (and why there are none, when there are none)."""
    from ..backends import model_dtype

    if cfg.backend != "eager":
        return {}, (
            f"no interleaved rounds under backend {cfg.backend} (they time eager models in one process): "
            "the time verdicts compare the variants' own cells"
        )
    paired = time_groups_interleaved(
        study,
        models,
        docs,
        dev,
        size,
        cfg.rounds or max(int(repeats or 10), 5),
        threads,
        log=out / "logs" / "profiler.log",
        dtype=model_dtype(cfg.backend, cfg.dtype),
    )
    return paired, None
