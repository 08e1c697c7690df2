"""``effbench run [CONFIG.toml]``: a sweep (models x scales x sizes x devices), one fresh process per cell.

With no arguments: the default comparison, every zoo model at x4 on the best device present (CUDA: 256x256 LR
inputs; CPU: 64x64 LR inputs and at most 4 s of timed runs per model), into ``runs/default``, followed by a report
in ``runs/default/report``.

Exit codes: 0 every cell of the sweep ok, 1 some cell ended not ok (error, timeout, oom, ...), 2 usage error,
3 the output folder is locked by another runner (named in the message; see ``--wait``), 130 interrupted (Ctrl-C),
143 terminated (SIGTERM). Interrupted or terminated, finished cells are kept and ``results.csv`` is written.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..backends import backend_names, dtype_names
from ..base.errors import UsageError
from ..sweep.runner import RESUME_MODES
from ._common import add_executor_arguments
from ._options import add_calibration, calibration_from_args

if TYPE_CHECKING:
    from ..sweep.config import SweepConfig

NAME = "run"
HELP = "run a sweep (default: the whole zoo at x4 on the best device) and write results and a report"


def _resume_mode(text: str) -> str:
    if text not in RESUME_MODES:  # e.g. `--resume sweep.toml`: the optional value swallowed the config
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a resume mode ({', '.join(RESUME_MODES)}); put CONFIG.toml before --resume"
        )
    return text


def _wait_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds; put CONFIG.toml before --wait"
        ) from None
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative number of seconds, got {text}")
    return seconds


def _measure_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one registered measurement")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "config",
        nargs="?",
        default=None,
        metavar="CONFIG.toml",
        help="sweep configuration (keys: models, scales, sizes, devices, protocols, dtypes, "
        "backends, repeats, threads, dataset, roofline, static, breakdown, timing, measure, calibration, "
        "timeout, out, executor, jobs, address, allow_shared_cpu, gpu_type, slurm_partition)",
    )
    parser.add_argument(
        "--models", nargs="+", default=None, help="zoo names or specs (default: the whole zoo)"
    )
    parser.add_argument("--scales", nargs="+", type=int, default=None, help="default: 4")
    parser.add_argument(
        "--sizes", nargs="+", default=None, help="LR sizes HxW (default: 256x256 on CUDA, 64x64 on CPU)"
    )
    parser.add_argument("--devices", nargs="+", default=None, help="cpu, cuda, auto (default: auto)")
    parser.add_argument(
        "--protocols", nargs="+", choices=["steady", "ntire"], default=None, help="default: steady"
    )
    parser.add_argument("--dtypes", nargs="+", choices=dtype_names(), default=None, help="default: fp32")
    add_calibration(parser)
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=backend_names(),
        default=None,
        help="eager, compile, onnxruntime, tensorrt (default: eager)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs per cell (default: 100 on CUDA; on CPU until the median's 95%% CI is within "
        "2%% of it, at most --budget seconds)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        dest="budget_s",
        help="seconds of timed runs per CPU cell (default 4)",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per cell")
    parser.add_argument(
        "--dataset", default=None, metavar="DIR", help="LR/HR images: adds PSNR to every cell"
    )
    parser.add_argument(
        "--roofline", action="store_true", help="add the calibrated roofline bound to each cell"
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="add each cell's time per operator kind (torch.profiler; conv GFLOP/s by layer shape)",
    )
    parser.add_argument(
        "--measure",
        type=_measure_names,
        default=None,
        metavar="NAME[,NAME...]",
        help="extra registered measurements for every cell (effbench.base.measurement; a plugin's, named in "
        "EFFBENCH_PLUGINS): their metrics land in each result and the report",
    )
    parser.add_argument(
        "--no-static", action="store_true", help="skip static metrics and memory prediction (runtime only)"
    )
    parser.add_argument(
        "--no-timing",
        action="store_true",
        help="static metrics and predicted memory only: device-free cells (one per model x scale x size), "
        "which --jobs and the cluster executors run many at once",
    )
    add_executor_arguments(parser)
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder (default: runs/default)")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="rerun-failed",
        default=None,
        type=_resume_mode,
        metavar="keep-failed",
        help="skip cells already measured ok and rerun the others (failed, timed out, unreadable); "
        "--resume=keep-failed also keeps the failed ones",
    )
    parser.add_argument(
        "--wait",
        nargs="?",
        const=math.inf,
        default=None,
        type=_wait_seconds,
        metavar="SECONDS",
        help="if another runner holds the output folder, wait for it (at most SECONDS; no value: "
        "no limit) instead of refusing",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per cell before it is killed (default 900)"
    )
    parser.add_argument("--no-report", action="store_true", help="do not render the report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _check_values(cfg: SweepConfig) -> None:
    """Refuse impossible values before any cell is launched, naming the flag (or config key) at fault."""
    import torch

    for flag, value in (("--repeats", cfg.repeats), ("--threads", cfg.threads)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UsageError(f"{flag} must be a positive integer, got {value!r}")
    if cfg.budget_s is not None and not cfg.budget_s > 0:
        raise UsageError(f"--budget must be a positive number of seconds, got {cfg.budget_s}")
    if cfg.timeout is not None and not cfg.timeout > 0:
        raise UsageError(f"--timeout must be positive, got {cfg.timeout}")
    for s in cfg.scales:
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise UsageError(f"--scales must be positive integers, got {s!r}")
    for h, w in cfg.sizes:
        if h <= 0 or w <= 0:
            raise UsageError(f"--sizes: height and width must be positive, got {h}x{w}")
    _check_fits(cfg)
    for d in cfg.devices:
        if str(d).startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"--devices {d}: CUDA is not available here (use --devices cpu or auto)")


def _check_fits(cfg: SweepConfig) -> None:
    """Refuse a size whose x``scale`` output image alone (3 channels, fp32) is larger than this machine's memory:
    no cell of it could run (the per-cell memory check then refines this for each model)."""
    from ..sweep.supervise import memory_limit_bytes

    limit = memory_limit_bytes()
    if not limit:
        return
    for h, w in cfg.sizes:
        for s in cfg.scales:
            need = 3 * 4 * h * s * w * s
            if need > limit:
                raise UsageError(
                    f"--sizes {h}x{w} at x{s}: the output image alone needs {need / 2**30:.4g} GiB, more than "
                    f"this machine's {limit / 2**30:.1f} GiB of memory"
                )


def run(args: argparse.Namespace) -> int:
    from ..base.inputs import parse_size
    from ..sweep import SweepConfig, load_config, run_sweep
    from ..sweep.executors import get_executor
    from ..sweep.lock import OutputLock
    from ..sweep.runner import SweepTerminated

    cfg = load_config(args.config) if args.config else SweepConfig()
    for key in (
        "models",
        "scales",
        "devices",
        "protocols",
        "dtypes",
        "backends",
        "repeats",
        "budget_s",
        "threads",
        "dataset",
        "timeout",
        "out",
        "executor",
        "jobs",
        "address",
        "allow_shared_cpu",
        "gpu_type",
        "slurm_partition",
    ):
        val = getattr(args, key)
        if val is not None:
            setattr(cfg, key, val)
    if args.sizes is not None:
        cfg.sizes = [parse_size(s) for s in args.sizes]
    if args.measure:
        cfg.measure = [*cfg.measure, *args.measure]
    cfg.calibration = list(calibration_from_args(args, cfg.calibration))
    cfg.roofline = cfg.roofline or args.roofline
    cfg.breakdown = cfg.breakdown or args.breakdown
    cfg.static = cfg.static and not args.no_static
    cfg.timing = cfg.timing and not args.no_timing
    _check_values(cfg)
    executor = get_executor(cfg.executor, **cfg.executor_options())
    # repeats None: each cell's benchmark default (CPU: until the median's CI is within 2%)
    cells = cfg.cells()
    out = Path(cfg.out or "runs/default")
    with OutputLock(out, wait=args.wait):  # held over the sweep and its report
        print(f"effbench run: {len(cells)} cells -> {out} (executor {executor.name})")
        try:
            summary = run_sweep(
                cells,
                out,
                resume=args.resume or False,
                timeout=cfg.timeout or 900.0,
                progress=not args.no_progress,
                lock=False,
                executor=executor,
            )
        except SweepTerminated:
            print(
                f"effbench run: terminated (SIGTERM): the running cell was killed; finished cells are kept in "
                f"{out / 'cells'} and the table in {out / 'results.csv'}",
                file=sys.stderr,
            )
            return 143
        for cell_id, why in summary["rerun"].items():
            print(f"resume: reran {cell_id} (was {why.splitlines()[0]})")
        status = ", ".join(f"{k} {v}" for k, v in sorted(summary["status"].items())) or "nothing to run"
        print(
            f"ran {summary['ran']} cells, skipped {summary['skipped']} finished ones in {summary['seconds']:.1f} s: "
            f"{status}"
        )
        for p in summary.get("table", []):
            print(f"table: {p}")
        if not args.no_report:
            try:
                from ..report import render_report

                written = render_report(out / "cells", out / "report", title="effbench comparison")
                md = [p for p in written if str(p).endswith(".md")]
                print(f"report: {md[0] if md else out / 'report'}")
            except Exception as exc:  # the measurements are on disk; a report problem must not hide them
                print(f"effbench run: report not written ({type(exc).__name__}: {exc})")
    final = summary["final"]
    not_ok = sum(n for k, n in final.items() if k != "ok")
    if not_ok:
        print(
            f"effbench run: {not_ok} of {len(cells)} cells are not ok "
            f"({', '.join(f'{k} {n}' for k, n in sorted(final.items()) if k != 'ok')}); exit code 1",
            file=sys.stderr,
        )
    return 1 if not_ok else 0
