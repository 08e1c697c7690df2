"""GPU validation of effbench in one call (see scripts/gpu_check.sh, which runs this from the repo root).

Parts (each in try/except, its error recorded; a global time budget; partial results written after every part):
  env       the environment (GPU, driver, CUDA, cuDNN, TF32, clocks, temperature, power)
  peaks     the roofline peaks (matmul/conv FLOP/s, copy bandwidth) calibrated on the device
  steady    every zoo model at x4, 256x256 and 480x270 (W x H) inputs, the steady protocol repeated 5 times
            (run-to-run CV of the median), roofline bound and measured / bound
  ntire     the challenge protocol, one fresh process per model and size, synthetic images unless --dataset
  memory    measured (effbench.memory.measure_cuda_memory) vs predicted (effbench.predict_memory) peak memory,
            every zoo model at 256x256 and at 1920x1080 / scale
  headline  FMEN-S vs E-RFDN runtime and peak memory side by side (paper: -33 % runtime, -74 % memory)
  projection (on request) the zoo measured vs its runtime projection on this GPU, the launch overhead measured,
            the traces kept to refit the cost model (reports/projection/validate.py fit --measured)
  overhead  the timing harness overhead on a 5 ms CPU workload (benchmarks/bench_timing.py's measure)
Writes OUT/gpu_report.tar.gz (reports/gpu/<gpu-name>/{report.md, results.json, *.png}) plus OUT/gpu_report.md and
OUT/gpu_results.json for a quick look. Unpack with: tar -xzf gpu_report.tar.gz -C <repo root>.
CPU dry run: EFFBENCH_GPU_CHECK_DEVICE=cpu python scripts/gpu_check.py --dry-run --out /tmp/gc
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from effbench.report.gpu import render_gpu_figures, render_gpu_markdown  # noqa: E402

PAPER = {
    "runtime_change": -0.331,
    "memory_change": -0.74,
    "fmen_s_ms": 28.07,
    "e_rfdn_ms": 41.97,
    "fmen_s_mib": 204.6,
    "e_rfdn_mib": 788.13,
    "source": "FMEN paper Table 4 (1080Ti, DIV2K valid, NTIRE script)",
}
FMEN_S, E_RFDN = "fmen_s", "e_rfdn"


class Budget:
    def __init__(self, seconds: float) -> None:
        self.t0 = time.perf_counter()
        self.seconds = seconds

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.t0)

    def ok(self, reserve: float = 0.0) -> bool:
        return self.left() > reserve


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)


# ----------------------------------------------------------------------------------------------------- parts
def part_steady(
    R: dict,
    models: list[str],
    sizes: list[tuple[int, int]],
    device: str,
    repeats: int,
    runs: int,
    budget: Budget,
    graphs: bool = False,
) -> None:
    import effbench
    from effbench.timing import WarmupRule

    rule = (
        WarmupRule(window=10, max_seconds=1.0)
        if device == "cuda"
        else WarmupRule(window=2, max_runs=4, max_seconds=0.5)
    )
    for size in sizes:
        for name in models:
            if not budget.ok(150):
                R["steady"].append({"model": name, "size": list(size), "status": "skipped (time budget)"})
                continue
            row: dict[str, Any] = {"model": name, "size": list(size), "cuda_graphs": graphs}
            try:
                model = effbench.create_model(name, scale=4)
                medians, first = [], None
                for k in range(repeats):
                    doc = effbench.benchmark(
                        model,
                        size,
                        scale=4,
                        device=device,
                        repeats=runs,
                        warmup=rule,
                        cuda_graphs=graphs,
                        roofline=(k == 0 and not graphs),
                        energy_seconds=0.5 if k == 0 and not graphs else 0.0,
                    )
                    m = doc["metrics"]
                    rt = m["runtime_ms"]
                    medians.append(rt["median"])
                    if k == 0:
                        first = m
                row.update(
                    {
                        "status": "ok",
                        "median_ms": statistics.median(medians),
                        "medians_ms": medians,
                        "run_to_run_cv": statistics.stdev(medians) / statistics.fmean(medians)
                        if len(medians) > 1
                        else None,
                        "within_run_cv": first["runtime_ms"]["cv"],
                        "first_call_ms": first["runtime_ms"]["first_call"],
                        "warmup_runs": first["runtime_ms"]["warmup_runs"],
                        "peak_memory_bytes": first.get("peak_memory_measured_bytes"),
                        "energy_j_per_image": first.get("energy_j_per_image"),
                        "power_w_mean": first.get("power_w_mean"),
                    }
                )
                rf = first.get("roofline")
                if rf:
                    row.update(
                        {
                            "bound_ms": rf["bound_ms"],
                            "limited_by": rf["limited_by"],
                            "measured_over_bound": row["median_ms"] / rf["bound_ms"],
                            "flops": rf["flops"],
                            "bytes_moved": rf["bytes_moved"],
                        }
                    )
                elif "roofline_error" in first:
                    row["roofline_error"] = first["roofline_error"]
                del model
            except Exception as exc:
                row.update({"status": "error", "error": f"{type(exc).__name__}: {exc}"})
            R["steady"].append(row)
            _free()


def _free() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def ntire_child(args: argparse.Namespace) -> int:
    """One model, one size, the NTIRE protocol, in this fresh process (as the official script runs)."""
    import effbench

    h, w = args.size
    try:
        doc = effbench.benchmark(
            args.ntire_child,
            (h, w),
            scale=4,
            device=args.device,
            protocol="ntire",
            images=args.images,
            dataset=args.dataset,
        )
        m = doc["metrics"]
        row = {
            "status": "ok",
            "mean_ms": m["runtime_ms"]["mean"],
            "first_image_ms": m["runtime_ms"]["first_call"],
            "median_ms": m["runtime_ms"]["median"],
            "images": m["images"],
            "memory_mib": m.get("ntire_memory_mib"),
            "psnr": m.get("psnr"),
            "dataset": doc.get("dataset"),
        }
    except Exception as exc:
        row = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    Path(args.child_out).write_text(json.dumps(row, default=_json_default))
    return 0


def part_ntire(
    R: dict,
    models: list[str],
    sizes: list[tuple[int, int]],
    device: str,
    images: int,
    dataset: str | None,
    budget: Budget,
    work: Path,
) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for size in sizes:
        for name in models:
            row: dict[str, Any] = {"model": name, "size": list(size)}
            if not budget.ok(90):
                row["status"] = "skipped (time budget)"
                R["ntire"].append(row)
                continue
            out = work / f"ntire_{name}_{size[0]}x{size[1]}.json"
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--ntire-child",
                name,
                "--size",
                str(size[0]),
                str(size[1]),
                "--device",
                device,
                "--images",
                str(images),
                "--child-out",
                str(out),
            ]
            if dataset:
                cmd += ["--dataset", dataset]
            try:
                p = subprocess.run(
                    cmd,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=max(10.0, min(120.0, budget.left() - 60)),
                )
                if out.exists():
                    row.update(json.loads(out.read_text()))
                else:
                    row.update({"status": "error", "error": f"exit {p.returncode}: {p.stderr[-800:]}"})
            except subprocess.TimeoutExpired:
                row.update({"status": "timeout"})
            R["ntire"].append(row)


def part_memory(R: dict, models: list[str], device: str, budget: Budget) -> None:
    """Measured vs predicted peak for every zoo model at every scale, at 256x256 and at 1920x1080 / scale."""
    import effbench

    keep = (
        "measured_peak_bytes",
        "predicted_peak_bytes",
        "predicted_plain_bytes",
        "predicted_with_workspace_bytes",
        "difference_with_workspace_pct",
        "cudnn_workspace_max_bytes",
        "cudnn_workspace_by_module",
        "cudnn_workspace_at_predicted_peak_bytes",
        "requested_peak_bytes",
        "allocated_peak_bytes",
        "reserved_peak_bytes",
        "resident_measured_bytes",
        "resident_predicted_bytes",
        "predicted_peak_module",
        "predicted_peak_op",
    )
    for name in models:
        for scale in effbench.model_info(name).scales:
            for size in [(256, 256), (1080 // scale, 1920 // scale)]:
                row: dict[str, Any] = {"model": name, "scale": scale, "size": list(size)}
                if not budget.ok(60):
                    row["status"] = "skipped (time budget)"
                    R["memory"].append(row)
                    continue
                try:
                    model = effbench.create_model(name, scale=scale)
                    pred = effbench.predict_memory(model, size, scale=scale).peak_bytes
                    row["predicted_bytes"] = int(pred)
                    if device == "cuda":
                        from effbench.memory import measure_cuda_memory

                        mem = measure_cuda_memory(model, size, scale=scale)
                        row.update({k: mem.get(k) for k in keep})
                        row["measured_bytes"] = int(mem["measured_peak_bytes"])
                        row["error_pct"] = 100.0 * (row["measured_bytes"] - pred) / row["measured_bytes"]
                    row["status"] = "ok"
                except Exception as exc:
                    row.update({"status": "error", "error": f"{type(exc).__name__}: {exc}"})
                R["memory"].append(row)
                _free()


def part_studies(R: dict, device: str, budget: Budget, work: Path) -> None:
    """The paper's studies (Table 1, Table 2, Sec. 3.1) on this device, each in its own folder."""
    from effbench.studies import run_study

    R["studies"] = {}
    for name, size, repeats in STUDIES:
        if not budget.ok(40):
            R["studies"][name] = {"status": "skipped (time budget)"}
            continue
        t = time.perf_counter()
        try:
            folder = work / "reports" / "gpu" / slug(R.get("env", {}).get("gpu_name") or f"{device}-dry-run")
            if R.get("tag"):
                folder = folder / R["tag"]
            run_study(
                name,
                device=device,
                size=size,
                repeats=repeats,
                out_dir=folder / "studies" / name,
                progress=False,
            )
            R["studies"][name] = {"status": "ok", "seconds": time.perf_counter() - t}
        except Exception as exc:
            R["studies"][name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}


def _effbench(args: list[str], log: Path, timeout: float) -> dict:
    """Run ``python -m effbench ARGS`` (its output into ``log``); returns its exit code and seconds."""
    import subprocess

    t = time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        try:
            rc = subprocess.run(
                [sys.executable, "-m", "effbench", *args], stdout=f, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            rc = 124
    return {"rc": rc, "seconds": time.perf_counter() - t, "log": str(log)}


def _folder(R: dict, work: Path, device: str) -> Path:
    folder = work / "reports" / "gpu" / slug(R.get("env", {}).get("gpu_name") or f"{device}-dry-run")
    return folder / R["tag"] if R.get("tag") else folder


def part_calibrate(R: dict, device: str, budget: Budget, work: Path, dry: bool) -> None:
    """The cuDNN workspace calibration: a GPU workspace profile (effbench memory calibrate), committed beside the
    shipped ones when it is new."""
    out = _folder(R, work, device) / "workspace_profile.json"
    if device != "cuda":
        R["calibrate"] = {"status": "skipped (needs CUDA)"}
        return
    R["calibrate"] = _effbench(
        ["memory", "calibrate", "--device", "cuda", "--out", str(out)],
        out.with_suffix(".log"),
        budget.left() - 30,
    )


def part_backends(R: dict, models: list[str], device: str, budget: Budget, work: Path, dry: bool) -> None:
    """The zoo under eager fp32/fp16, compile, ONNX Runtime and TensorRT fp16 at 256x256 and 270x480: one sweep
    (cells that a backend cannot run here say why), then its report with the ranking change."""
    folder = _folder(R, work, device) / "backends"
    sizes = ["16x16"] if dry else ["256x256", "270x480"]
    runs = []
    for backends, dtypes in ((["eager"], ["fp32", "fp16"]), (["compile", "onnxruntime"], ["fp32"]),
                             (["tensorrt"], ["fp16"])):  # fmt: skip
        if not budget.ok(60):
            runs.append({"backends": backends, "status": "skipped (time budget)"})
            continue
        args = ["run", "--models", *models, "--sizes", *sizes, "--devices", device, "--backends", *backends]
        args += ["--dtypes", *dtypes, "--out", str(folder), "--resume", "--timeout", "120"]
        runs.append(
            {
                "backends": backends,
                "dtypes": dtypes,
                **_effbench(args, folder / f"{backends[0]}.log", budget.left() - 20),
            }
        )
    report = _effbench(
        ["report", str(folder / "cells"), "--out", str(folder / "report")], folder / "report.log", 120
    )
    R["backends"] = {"runs": runs, "report": report}


def part_challenge(R: dict, device: str, budget: Budget, work: Path, dry: bool) -> None:
    """Challenge mode's GPU parts: NTIRE 2024 rules on four zoo entries, runtime over synthetic images of the
    year's memory input (510x510) with max_memory_allocated over the run beside the prediction."""
    folder = _folder(R, work, device) / "challenge"
    folder.mkdir(parents=True, exist_ok=True)
    entries = ["rlfn", "e_rfdn", "imdn_ntire", "fmen_s"]
    manifest = ['[challenge]', 'name = "NTIRE 2024 ESR rules, zoo entries"', "year = 2024", 'root = "."',
                'baseline = "rlfn"']  # fmt: skip
    for e in entries:
        manifest += ["", "[[entry]]", f'name = "{e}"', f'model = "{e}"']
    (folder / "manifest.toml").write_text("\n".join(manifest) + "\n")
    parts = "static,memory,runtime"
    R["challenge"] = _effbench(
        ["challenge", str(folder / "manifest.toml"), "--out", str(folder), "--parts", parts, "--device", device,
         "--no-progress", "--timeout", "300"],
        folder / "challenge.log",
        budget.left() - 20,
    )  # fmt: skip


STUDIES = [
    ("attention", (339, 510), 50),
    ("blocks", (339, 510), 50),
    ("fusion", (256, 256), 50),
]  # DIV2K-valid x4 LR


def part_projection(R: dict, models: list[str], device: str, budget: Budget, dry: bool) -> None:
    """The zoo measured against its runtime projection on this GPU (effbench.timing.projection): each model timed
    (steady protocol, cudnn.benchmark=False as the NTIRE harnesses set it) at the NTIRE 2022 protocol's
    mean-equivalent size and projected there from its shapes-only trace; the kernel-launch overhead measured
    (a loop of tiny kernels); every trace's totals kept, so the measurements can refit the cost model
    (reports/projection/validate.py fit --measured results.json). The steady part's rows, when run, are projected
    too."""
    import torch

    import effbench
    from effbench.challenge.projection import year_protocol
    from effbench.timing import WarmupRule
    from effbench.timing.gpus import gpu_spec
    from effbench.timing.projection import load_cost_model, record_trace, spearman, steady_protocol

    name = R.get("env", {}).get("gpu_name") or "cpu"
    out: dict[str, Any] = {"gpu_name": name, "rows": [], "steady_rows": []}
    R["projection"] = out
    try:
        spec = gpu_spec(name)
        out["gpu"] = spec.name
    except Exception as exc:  # measured all the same: the totals and times can describe a new GPU
        spec = None
        out["gpu_error"] = str(exc)
    if device == "cuda":
        x = torch.zeros(16, device="cuda")
        for _ in range(50):
            x.add_(1.0)
        torch.cuda.synchronize()
        n = 2000
        t0 = time.perf_counter()
        for _ in range(n):
            x.add_(1.0)
        torch.cuda.synchronize()
        out["launch_overhead_us_measured"] = (time.perf_counter() - t0) / n * 1e6
    torch.backends.cudnn.benchmark = False
    cm = load_cost_model()
    size = (24, 36) if dry else year_protocol(2022).size
    rule = WarmupRule(window=10, max_seconds=1.0) if device == "cuda" else WarmupRule(window=2, max_runs=3)
    traces: dict[tuple[str, tuple[int, int]], Any] = {}
    for m in models:
        if not budget.ok(120):
            out["rows"].append({"model": m, "size": list(size), "status": "skipped (time budget)"})
            continue
        row: dict[str, Any] = {"model": m, "size": list(size)}
        try:
            model = effbench.create_model(m, scale=4)
            trace = traces[(m, size)] = record_trace(model, size)
            row["totals"] = trace.totals()
            doc = effbench.benchmark(
                model, size, scale=4, device=device, repeats=5 if dry else 50, warmup=rule
            )
            row["measured_ms"] = doc["metrics"]["runtime_ms"]["median"]
            if spec is not None:
                p = cm.project(trace, spec, steady_protocol(size))
                row.update(projected_ms=p.runtime_ms, projected_low_ms=p.low_ms, projected_high_ms=p.high_ms)
            row["status"] = "ok"
        except Exception as exc:
            row.update(status="error", error=f"{type(exc).__name__}: {exc}")
        out["rows"].append(row)
    if spec is not None:
        for r in R.get("steady", []):
            if r.get("status") != "ok" or r.get("cuda_graphs"):
                continue
            key = (r["model"], tuple(r["size"]))
            if key not in traces:
                traces[key] = record_trace(effbench.create_model(r["model"], scale=4), key[1])
            p = cm.project(traces[key], spec, steady_protocol(key[1]))
            out["steady_rows"].append(
                {
                    "model": r["model"],
                    "size": r["size"],
                    "measured_ms": r["median_ms"],
                    "projected_ms": p.runtime_ms,
                }
            )
        ok = [r for r in out["rows"] + out["steady_rows"] if "projected_ms" in r and "measured_ms" in r]
        if len(ok) >= 2:
            meas, proj = [r["measured_ms"] for r in ok], [r["projected_ms"] for r in ok]
            out["spearman"] = spearman(proj, meas)
            out["median_abs_error"] = statistics.median(abs(p / m - 1) for p, m in zip(proj, meas))


def part_headline(R: dict) -> None:
    def pick(rows: list[dict], model: str, size: list[int], key: str) -> float | None:
        for r in rows:
            if (
                r["model"] == model
                and r["size"] == size
                and r.get("status") == "ok"
                and r.get("scale", 4) == 4
                and not r.get("cuda_graphs")
            ):
                return r.get(key)
        return None

    out = []
    for size in sorted({tuple(r["size"]) for r in R["steady"] + R["ntire"]}):
        s = list(size)
        for proto, rows, rkey, mkey in (
            ("steady", R["steady"], "median_ms", "peak_memory_bytes"),
            ("ntire", R["ntire"], "mean_ms", "memory_mib"),
        ):
            a_t, b_t = pick(rows, FMEN_S, s, rkey), pick(rows, E_RFDN, s, rkey)
            a_m, b_m = pick(rows, FMEN_S, s, mkey), pick(rows, E_RFDN, s, mkey)
            if mkey == "peak_memory_bytes":
                a_m = a_m / 2**20 if a_m else None
                b_m = b_m / 2**20 if b_m else None
            out.append(
                {
                    "size": s,
                    "protocol": proto,
                    "fmen_s_ms": a_t,
                    "e_rfdn_ms": b_t,
                    "fmen_s_mib": a_m,
                    "e_rfdn_mib": b_m,
                    "runtime_change": (a_t / b_t - 1) if a_t and b_t else None,
                    "memory_change": (a_m / b_m - 1) if a_m and b_m else None,
                }
            )
    R["headline"] = {"paper": PAPER, "rows": out}


def part_overhead(R: dict) -> None:
    """The harness overhead on a 5 ms busy CPU workload (same measure as benchmarks/bench_timing.py)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_timing import WORK_MS, BusyWait  # type: ignore[import-not-found]

    import effbench
    from effbench.timing import WarmupRule

    model = BusyWait()
    doc = effbench.benchmark(
        model,
        (8, 8),
        device="cpu",
        repeats=50,
        threads=1,
        warmup=WarmupRule(window=3, max_runs=9, max_seconds=1.0),
    )
    rt = doc["metrics"]["runtime_ms"]
    over = [s - i for s, i in zip(rt["samples"], model.inner_ms[-50:])]
    med = statistics.median(over)
    R["overhead"] = {
        "work_ms": WORK_MS,
        "median_ms": rt["median"],
        "overhead_median_us": med * 1e3,
        "overhead_pct": 100 * med / WORK_MS,
        "overhead_max_us": max(over) * 1e3,
    }


def write_outputs(R: dict, work: Path, out: Path) -> None:
    name = slug(R.get("env", {}).get("gpu_name") or f"{R['device']}-dry-run")
    folder = work / "reports" / "gpu" / name
    if R.get("tag"):
        folder = folder / R["tag"]
    folder.mkdir(parents=True, exist_ok=True)
    R["seconds"] = time.perf_counter() - R["_t0"]
    clean = {k: v for k, v in R.items() if not k.startswith("_")}
    (folder / "results.json").write_text(json.dumps(clean, indent=1, default=_json_default))
    try:
        R["figures"] = render_gpu_figures(R, folder)
    except Exception as exc:
        R["parts"]["plots"] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    (folder / "report.md").write_text(render_gpu_markdown(R))
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".gpu_report.tar.gz.tmp"
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(folder, arcname=str(folder.relative_to(work)))
    os.replace(tmp, out / "gpu_report.tar.gz")
    shutil.copyfile(folder / "report.md", out / "gpu_report.md")
    shutil.copyfile(folder / "results.json", out / "gpu_results.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT", "gpu_check_out"))
    ap.add_argument("--budget", type=float, default=400.0, help="seconds for everything (default 400)")
    ap.add_argument("--device", default=os.environ.get("EFFBENCH_GPU_CHECK_DEVICE"))
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes, 2 repeats: checks the script on CPU")
    ap.add_argument("--models", nargs="+", default=None)
    ap.add_argument(
        "--dataset", default=None, help="LR/HR folder for the ntire part (default: synthetic images)"
    )
    ap.add_argument("--images", type=int, default=10, help="synthetic images per ntire run")
    ap.add_argument(
        "--parts",
        default="steady,memory,ntire,overhead",
        help="comma-separated parts to run (steady, graphs, memory, ntire, overhead, studies, calibrate, "
        "backends, challenge, projection)",
    )
    ap.add_argument("--tag", default=None, help="sub-folder of reports/gpu/<gpu-name>/ (default: none)")
    ap.add_argument("--ntire-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--size", nargs=2, type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import torch

    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.ntire_child:
        return ntire_child(args)

    budget = Budget(args.budget)
    out = Path(args.out)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"effbench_gpu_check_{os.getpid()}"
    R: dict[str, Any] = {
        "device": args.device,
        "dry_run": args.dry_run,
        "tag": args.tag,
        "parts": {},
        "steady": [],
        "ntire": [],
        "memory": [],
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "_t0": time.perf_counter(),
    }
    if args.dry_run:
        sizes, repeats, runs, images = [(16, 16), (16, 24)], 2, 3, 2
    else:
        sizes, repeats, runs, images = [(256, 256), (270, 480)], 5, 50, args.images

    def part(name: str, fn, *a) -> None:
        t = time.perf_counter()
        try:
            fn(*a)
            R["parts"][name] = {"status": "ok"}
        except Exception as exc:
            R["parts"][name] = {
                "status": "error",
                "error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}",
            }
        R["parts"][name]["seconds"] = time.perf_counter() - t
        print(
            f"[gpu_check] {name}: {R['parts'][name]['status']} in {R['parts'][name]['seconds']:.1f} s "
            f"({budget.left():.0f} s left)",
            flush=True,
        )
        try:
            write_outputs(R, work, out)
        except Exception as exc:
            print(f"[gpu_check] writing outputs failed: {exc}", flush=True)

    import effbench

    models: list[str] = []

    def p_env() -> None:
        from effbench.base.env import capture_env

        R["env"] = capture_env(args.device)
        # references (bicubic: MATLAB imresize in numpy) are not networks: nothing to measure on a GPU
        zoo = [
            m
            for m in effbench.list_models()
            if 4 in effbench.model_info(m).scales and not effbench.model_info(m).reference
        ]
        dry = [m for m in (FMEN_S, E_RFDN) if m in zoo] or zoo[:2]
        chosen = args.models or (dry if args.dry_run else zoo)
        # the headline pair first, so that a tight time budget still compares them
        models.extend(sorted(chosen, key=lambda m: (m not in (FMEN_S, E_RFDN), m)))
        R["models"] = models

    def p_peaks() -> None:
        from effbench.timing.roofline import calibrate_peaks

        R["peaks"] = calibrate_peaks(args.device)

    part("env", p_env)
    part("peaks", p_peaks)
    todo = {p.strip() for p in args.parts.split(",") if p.strip()}
    if "steady" in todo:
        part("steady", part_steady, R, models, sizes, args.device, repeats, runs, budget)
    if "graphs" in todo and args.device == "cuda":
        part("graphs", part_steady, R, models, sizes, args.device, repeats, runs, budget, True)
    if "memory" in todo:
        part("memory", part_memory, R, models, args.device, budget)
    if "ntire" in todo:
        part("ntire", part_ntire, R, models, sizes, args.device, images, args.dataset, budget, work)
    if "studies" in todo:
        part("studies", part_studies, R, args.device, budget, work)
    if "calibrate" in todo:
        part("calibrate", part_calibrate, R, args.device, budget, work, args.dry_run)
    if "backends" in todo:
        part("backends", part_backends, R, models, args.device, budget, work, args.dry_run)
    if "challenge" in todo:
        part("challenge", part_challenge, R, args.device, budget, work, args.dry_run)
    if "projection" in todo:
        part("projection", part_projection, R, models, args.device, budget, args.dry_run)
    part("headline", part_headline, R)
    if "overhead" in todo and budget.ok(20):
        part("overhead", part_overhead, R)
    print(f"[gpu_check] done in {time.perf_counter() - R['_t0']:.0f} s; outputs in {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
