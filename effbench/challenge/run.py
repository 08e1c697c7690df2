"""Run a challenge manifest: every entry's requested parts as supervised sweep cells, then the leaderboard.

Layout of the output folder ``DIR`` (the sweep runner's, plus the leaderboard)::

    DIR/cells/<entry>-<parts>[-<device>].json   one result document per entry and part group
    DIR/logs/, DIR/runs.log, DIR/results.csv    as for any sweep (effbench.sweep.runner)
    DIR/leaderboard.{json,csv,md,html}          one row per entry (effbench.challenge.leaderboard)

An entry the manifest marks ``skip`` gets a ``skipped`` document with the reason, written without starting a
process; every other entry runs, fails or times out alone. An entry whose checkpoint file is missing is counted
and its memory predicted all the same (neither needs weights: it is built with the constructor's weights, its
after-load calls made); only its runtime and quality cells are ``skipped``, naming the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base.errors import UsageError
from ..base.results import write_json_atomic
from .cells import EntryCell, groups_of, needs_device, parse_parts

if TYPE_CHECKING:
    from ..sweep.executors import Executor
    from .manifest import Challenge, Entry

__all__ = ["RunOptions", "challenge_cells", "run_challenge"]


@dataclass(frozen=True)
class RunOptions:
    """How the cells of :func:`run_challenge` are run.

    ``resume``: keep the cells already measured in the output folder; ``timeout``: seconds per cell (past it the
    cell is killed and its entry recorded as ``timeout``); ``fork``: on the local executor, device-free cells are
    forked from a warm process that has imported torch and effbench once (:mod:`effbench.challenge.forkserver`;
    each cell still its own process, session and process group) instead of each starting Python afresh;
    ``calibration``: the folders of LR images the measured cells' ``int8`` dtype is calibrated on."""

    resume: bool = False
    timeout: float | None = None
    fork: bool = True
    calibration: tuple[str, ...] = ()


def challenge_cells(
    challenge: Challenge,
    parts: Sequence[str] | str,
    *,
    device: str = "cpu",
    dataset: str | Path | None = None,
    backend: str = "eager",
    dtype: str = "fp32",
    gpu: str | None = None,
    calibration: Sequence[str] = (),
) -> list[EntryCell]:
    """The cells of every entry of ``challenge`` (a loaded manifest) for ``parts``, under its year's rules
    (``gpu``: where the ``projection`` part projects, default the year's GPU). ``parts`` may name registered
    measurements beside the built-in parts (:func:`~effbench.challenge.cells.parse_parts`). ``calibration``: the
    folders an ``int8`` dtype of the measured cells is calibrated on."""
    from ..backends import get_backend, model_dtype
    from ..base.inputs import DTYPES
    from .harness import harness_of
    from .years import year_rules

    rules = year_rules(challenge.year)
    parts = parse_parts(parts)
    get_backend(backend)
    model_dtype(backend, dtype)  # an unknown backend or a dtype it lacks: a usage error before anything runs
    if "quality" in parts and dataset is None:
        raise UsageError("--parts quality needs the validation images: pass --dataset FOLDER")
    if "projection" in parts:
        from .projection import year_gpu

        gpu = year_gpu(challenge.year, gpu).name  # an unknown GPU, or a year without one: a usage error now
    cells = []
    for entry in challenge.entries:
        for group in groups_of(parts):
            measured = any(needs_device(p) for p in group)
            spec = entry.spec(with_weights=measured or not entry.weights_missing)
            cells.append(
                EntryCell(
                    entry=entry.name,
                    model=spec.to_dict(),
                    year=challenge.year,
                    parts=group,
                    counting=dict(rules.counting),
                    counting_size=tuple(rules.counting_input[-2:]),
                    memory_size=tuple(rules.memory.largest_lr),
                    scale=challenge.scale,
                    device=device,
                    dataset=None if dataset is None else str(Path(dataset).expanduser().resolve()),
                    tile=entry.tile,
                    backend=backend if measured else "eager",
                    dtype=dtype if measured else "fp32",
                    calibration=tuple(map(str, calibration)) if measured and dtype not in DTYPES else (),
                    harness=harness_of(challenge.year).to_dict(),
                    gpu=gpu if "projection" in group else None,
                )
            )
    return cells


def _skip_reason(entry: Entry, cell: EntryCell) -> str | None:
    """Why ``cell`` of ``entry`` is not run (``None``: it runs)."""
    if entry.skip:
        return f"skipped by the manifest: {entry.skip}"
    if cell.measured and entry.weights_missing:
        return f"checkpoint {entry.weights} not found: runtime and quality need the entry's weights"
    return None


def _skipped(cell: EntryCell, reason: str) -> dict[str, Any]:
    from ..base.env import capture_env

    doc = cell.new_result(status="skipped", error=reason)
    doc["env"] = capture_env("cpu")
    return doc


def _forks(executor: Executor | None) -> bool:
    """Cells run as processes of this machine (the local executor): they can be forked from a local server."""
    from ..sweep.executors.local import LocalExecutor

    return executor is None or isinstance(executor, LocalExecutor)


def _server_env() -> dict[str, str]:
    """The fork server's environment: this one, with this checkout's effbench first on the import path (as the
    sweep runner gives its cells)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(
        dict.fromkeys([root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))])
    )
    return env


def run_challenge(
    challenge: Challenge,
    out: str | Path,
    *,
    parts: Sequence[str] | str = ("static", "memory"),
    device: str = "cpu",
    dataset: str | Path | None = None,
    backend: str = "eager",
    dtype: str = "fp32",
    gpu: str | None = None,
    progress: bool = True,
    compare_conventions: bool = False,
    executor: Executor | None = None,
    options: RunOptions = RunOptions(),
) -> dict[str, Any]:
    """Measure every entry of ``challenge`` into ``out`` and write the leaderboard; returns the sweep summary with
    ``"leaderboard"`` (the rows) and ``"written"`` (the leaderboard files). ``executor`` runs the cells
    (:func:`effbench.sweep.executors.get_executor`; default: local, one at a time). ``backend``/``dtype`` apply to
    the measured cells (runtime, quality: :mod:`effbench.backends`); ``gpu`` is where the ``projection`` part
    projects (default: the year's GPU); ``options``: resume, the per-cell timeout, forking (:class:`RunOptions`)."""
    from ..sweep.lock import OutputLock
    from ..sweep.runner import run_sweep
    from .leaderboard import build_leaderboard, write_leaderboard

    if not challenge.entries:
        raise UsageError(f"the manifest {challenge.path} lists no entries")
    out = Path(out)
    cells = challenge_cells(
        challenge,
        parts,
        device=device,
        dataset=dataset,
        backend=backend,
        dtype=dtype,
        gpu=gpu,
        calibration=options.calibration,
    )
    entries = {e.name: e for e in challenge.entries}
    skip = {c.cell_id: why for c in cells if (why := _skip_reason(entries[c.entry], c)) is not None}
    with OutputLock(out):
        (out / "cells").mkdir(parents=True, exist_ok=True)
        for cell in cells:
            if cell.cell_id in skip:
                write_json_atomic(out / "cells" / f"{cell.cell_id}.json", _skipped(cell, skip[cell.cell_id]))
        todo = [c for c in cells if c.cell_id not in skip]
        with contextlib.ExitStack() as stack:
            if options.fork and _forks(executor) and any(c.device_free for c in todo):
                from .forkserver import ForkServer

                server = stack.enter_context(ForkServer(out, env=_server_env()))
                todo = [replace(c, fork_server=server.path) if c.device_free else c for c in todo]
            summary = run_sweep(
                todo,
                out,
                resume=options.resume,
                timeout=options.timeout,
                progress=progress,
                lock=False,
                executor=executor,
            )
        rows = build_leaderboard(challenge, out)
        summary["leaderboard"] = rows
        summary["written"] = [
            str(p) for p in write_leaderboard(challenge, rows, out, compare_conventions=compare_conventions)
        ]
    return summary
