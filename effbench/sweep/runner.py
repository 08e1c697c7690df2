"""Run sweep cells, each in a fresh supervised subprocess, under an exclusive lock on the output folder, with a
per-cell timeout, an honest resume and a rich progress bar.

Layout of an output folder ``OUT``::

    OUT/.effbench.lock         held while a runner works on OUT (effbench.sweep.lock): a second runner refuses
    OUT/cells/<cell_id>.json   one result document per cell (written atomically by the cell or by the runner)
    OUT/logs/<cell_id>.log     the cell process's stdout and stderr
    OUT/runs.log               one ``start <cell_id> pid=N`` line per cell process launched (audit of re-runs)
    OUT/results.csv            the combined table (effbench.base.results.results_frame), plus results.parquet
                               when pyarrow is installed
    OUT/report/                the report (effbench.report.render_report), when asked

A cell is finished when its JSON is a valid result document (:func:`effbench.base.results.validate_result`)
with status ``ok`` measured under the cell's settings (every field of the cell, :func:`settings_changed`);
``resume=True`` skips finished cells and reruns the others (failed, timed out, empty, truncated, missing, or
measured under other settings), ``resume="keep-failed"`` also keeps valid documents of failed cells. A crash, a hang past the
timeout, an out-of-memory kill becomes that cell's status, and the sweep goes on. The cell process dies with the
runner (its own process group, parent-death signal); SIGTERM of the runner is handled like Ctrl-C: the cell is
killed, finished cells are kept, the table is written and :class:`SweepTerminated` is raised.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from ..base.errors import UsageError, output_error
from ..base.results import write_json_atomic
from .cell_process import SweepCell, cell_state
from .executors import Executor, get_executor
from .lock import OutputLock
from .progress import make_progress

__all__ = [
    "RESUME_MODES",
    "SweepTerminated",
    "ERROR_MAX_CHARS",
    "cap_errors",
    "is_finished",
    "run_sweep",
    "settings_changed",
    "write_table",
]

RESUME_MODES = ("rerun-failed", "keep-failed")


class SweepTerminated(KeyboardInterrupt):
    """The runner got SIGTERM: the running cell was killed, finished cells and the table kept (CLI exit 143)."""


def settings_changed(path: Path, cell: SweepCell) -> str | None:
    """How the settings stored in the result at ``path`` (its ``cell``) differ from ``cell``'s, e.g.
    ``"repeats 3 -> 50"``; None when they are the same. Every field of a cell is a setting its figures depend
    on, so a result measured under other settings is not this cell's result."""
    try:
        stored = json.loads(path.read_text()).get("cell")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(stored, dict):
        return "the result records no settings"
    current = json.loads(json.dumps(cell.to_dict()))
    diffs = [
        f"{key} {stored.get(key, '(unset)')!r} -> {current.get(key, '(unset)')!r}"
        for key in dict.fromkeys([*current, *stored])
        if stored.get(key, "(unset)") != current.get(key, "(unset)")
    ]
    return ", ".join(diffs) or None


def _finished(status: str, keep_failed: bool) -> bool:
    """True for the :func:`cell_state` status of a finished cell (see :func:`is_finished`)."""
    return status == "ok" or (keep_failed and status not in ("missing", "unreadable"))


def is_finished(path: Path, *, keep_failed: bool = False) -> bool:
    """True when ``path`` holds a valid result document with status ``ok`` (any status with ``keep_failed``)."""
    return _finished(cell_state(path)[0], keep_failed)


ERROR_MAX_CHARS = 4000


def cap_errors(doc: dict[str, Any], full_log: Path) -> dict[str, Any]:
    """Shorten ``doc``'s ``error`` and ``partial_errors`` texts longer than :data:`ERROR_MAX_CHARS` (their start
    and end kept, the cut said) and write each whole text into ``full_log``, which the shortened text names."""
    texts: list[str] = []

    def cap(text: object, what: str) -> object:
        if not isinstance(text, str) or len(text) <= ERROR_MAX_CHARS:
            return text
        texts.append(f"===== {what} =====\n{text}\n")
        keep = ERROR_MAX_CHARS // 2
        cut = len(text) - 2 * keep
        return (
            f"{text[:keep]}\n[... {cut} characters cut; the whole text is in {full_log} ...]\n{text[-keep:]}"
        )

    doc["error"] = cap(doc.get("error"), "error")
    if isinstance(doc.get("partial_errors"), dict):
        doc["partial_errors"] = {k: cap(v, f"partial_errors.{k}") for k, v in doc["partial_errors"].items()}
    if texts:
        try:
            full_log.write_text("".join(texts))
        except OSError as exc:
            raise output_error(exc, full_log) or exc from None
    return doc


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While active (main thread only), SIGTERM raises :class:`SweepTerminated` like Ctrl-C raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    got: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        got.append(signum)
        raise SweepTerminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except KeyboardInterrupt as exc:
        # a library that waited in native code (Ray) turns the handler's exception into a plain KeyboardInterrupt
        if got and not isinstance(exc, SweepTerminated):
            raise SweepTerminated(f"terminated by signal {got[0]}") from exc
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_table(out: str | Path) -> list[Path]:
    """Combine ``OUT/cells/*.json`` into ``OUT/results.csv`` (and ``results.parquet`` with pyarrow)."""
    from ..base.results import load_results, results_frame

    out = Path(out)
    docs = load_results([out / "cells"]) if (out / "cells").is_dir() else []
    if not docs:
        return []
    frame = results_frame(docs)
    written = []
    targets: list[tuple[str, Callable[..., object]]] = [("results.csv", frame.to_csv)]
    try:
        import pyarrow  # noqa: F401

        targets.append(("results.parquet", frame.to_parquet))
    except ImportError:
        pass
    for name, write in targets:
        tmp = out / f".{name}.tmp"
        try:
            write(tmp, index=False)
            os.replace(tmp, out / name)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise output_error(exc, out / name) or exc from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        written.append(out / name)
    return written


def run_sweep(
    cells: Sequence[SweepCell],
    out: str | Path,
    *,
    resume: bool | Literal["rerun-failed", "keep-failed"] = False,
    timeout: float | None = None,
    progress: bool = True,
    python: str | None = None,
    lock: bool = True,
    wait: float | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Run ``cells`` into ``out``; returns ``{"ran", "skipped", "rerun", "status", "final", "seconds", "table"}``.

    ``cells`` are :class:`~effbench.sweep.config.Cell` s or any cell kind with what
    :class:`~effbench.sweep.cell_process.SweepCell` names. Each cell runs in its own supervised process (``python -m``
    its ``worker``). ``resume`` (``True`` or
    ``"rerun-failed"``) skips cells whose result is valid, ``ok`` and measured under the cell's settings, and reruns
    the rest (``"rerun"`` maps each rerun cell, missing ones included, to why); ``"keep-failed"`` also skips valid results of failed cells. ``timeout`` (seconds) bounds
    each cell. ``lock`` takes ``OUT``'s lock for the run (pass False when the caller holds it), waiting up to
    ``wait`` seconds for another runner (None: refuse at once). ``"status"`` counts the statuses of the cells
    run now, ``"final"`` those of every cell of the sweep afterwards. ``executor`` runs the cells
    (:func:`effbench.sweep.executors.get_executor`; default: local, one at a time); every result's ``env`` records
    it (``executor``) and where the cell ran (``node``). An interrupt (Ctrl-C, SIGTERM) keeps every
    finished cell and writes the table.
    """
    if resume not in (False, True, *RESUME_MODES):
        raise UsageError(f"resume must be one of {', '.join(RESUME_MODES)}, got {resume!r}")
    ids = [c.cell_id for c in cells]
    dup = [i for i, n in Counter(ids).items() if n > 1]
    if dup:
        raise UsageError(f"duplicate sweep cells: {', '.join(dup)}")
    out = Path(out)
    with OutputLock(out, wait=wait) if lock else nullcontext():
        return _run_locked(
            cells,
            out,
            resume=resume,
            timeout=timeout,
            progress=progress,
            python=python or sys.executable,
            executor=executor or get_executor("local"),
        )


def _run_locked(
    cells: Sequence[SweepCell],
    out: Path,
    *,
    resume: bool | str,
    timeout: float | None,
    progress: bool,
    python: str,
    executor: Executor,
) -> dict[str, Any]:
    (out / "cells").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    for stale in (out / "cells").glob(".*.tmp"):  # left by a process killed while writing
        stale.unlink(missing_ok=True)
    todo: list[SweepCell] = []
    rerun: dict[str, str] = {}
    for c in cells:
        path = out / "cells" / f"{c.cell_id}.json"
        status, reason = cell_state(path)
        changed = settings_changed(path, c) if status not in ("missing", "unreadable") else None
        if resume and not changed and _finished(status, keep_failed=resume == "keep-failed"):
            continue
        todo.append(c)
        if resume:
            why = f"{status}: {reason}" if reason else status
            rerun[c.cell_id] = f"{why}, measured under other settings: {changed}" if changed else why
    summary: dict[str, Any] = {
        "ran": 0,
        "skipped": len(cells) - len(todo),
        "rerun": rerun,
        "status": Counter(),
        "out": str(out),
    }
    t0 = time.perf_counter()
    bar = make_progress(len(todo)) if progress and todo else None

    def started(cell: SweepCell) -> None:
        if bar is not None:
            bar.started(cell)

    def finished(cell: SweepCell, doc: dict[str, Any] | None, node: dict[str, Any]) -> None:
        path = out / "cells" / f"{cell.cell_id}.json"
        if doc is None:  # the cell's process wrote it (valid): add where it ran
            doc = json.loads(path.read_text())
        doc["env"] = {**(doc.get("env") or {}), "executor": executor.name, "node": node}
        cap_errors(doc, out / "logs" / f"{cell.cell_id}.error.txt")
        write_json_atomic(path, doc)
        summary["status"][doc["status"]] += 1
        summary["ran"] += 1
        if bar is not None:
            bar.finished(cell, doc["status"])

    try:
        with _sigterm_as_interrupt():
            if bar is not None:
                bar.start()
            executor.run(todo, out, timeout=timeout, python=python, started=started, finished=finished)
    finally:
        if bar is not None:
            bar.stop()
        summary["final"] = Counter(cell_state(out / "cells" / f"{c.cell_id}.json")[0] for c in cells)
        summary["table"] = [str(p) for p in write_table(out)]
        summary["seconds"] = time.perf_counter() - t0
    return summary
