"""Challenge mode measures each entry as the organisers' harness does (effbench.challenge.harness): counts after
the harness's first forwards, on its input distributions, dtypes as the model has them, memory over the whole
harness run (construction, autograd, autocast), CPU stand-ins for CUDA-only packages, and entries a trace
cannot see through named for what they are. The entries are in tests/data/challenge_harness; the counts they
are checked against come from the organisers' tools (fvcore) run by that folder's test_demo.py, the memory from
the tensors the harness keeps alive, worked out here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from effbench.challenge.cells import EntryCell
from effbench.challenge.entry_process import measure_entry
from effbench.challenge.harness import harness_of
from effbench.challenge.years import year_rules
from effbench.memory import round_size
from effbench.zoo.spec import ModelSpec

DATA = Path(__file__).parent / "data" / "challenge_harness"
SHARED = Path(os.environ.get("EFFBENCH_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
NTIRE2025 = SHARED / "challenges" / "ntire2025"
_PKG = str(Path(__file__).resolve().parents[1])
MIB = 2**20


def _cell(target: str, *, root: Path = DATA, memory: tuple[int, int] = (32, 32), **model: Any) -> EntryCell:
    rules = year_rules(2025)
    spec = {"target": f"{root}/{target}", "root": str(root), "data_range": 1.0, **model}
    return EntryCell(
        entry=target.rsplit(":", 1)[1],
        model=spec,
        year=2025,
        parts=("static", "memory"),
        counting=dict(rules.counting),
        counting_size=(256, 256),
        memory_size=memory,
        harness=harness_of(2025).to_dict(),
    )


def measure(target: str, **kw: Any) -> dict[str, Any]:
    return measure_entry(_cell(target, **kw))


def organisers(*model_ids: int) -> dict[int, dict[str, int]]:
    """What the organisers' tools give for the entries, run as the folder's test_demo.py runs them (in a fresh
    process, mamba_ssm being effbench's stand-in there as here)."""
    site = Path(_PKG) / "effbench" / "base" / "stand_ins" / "site"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(DATA), _PKG, str(site)])}
    res = subprocess.run(
        [sys.executable, "test_demo.py", "--model_ids", *map(str, model_ids)],
        cwd=DATA,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    return {r["model_id"]: r for r in rows}


@pytest.fixture(scope="module")
def official() -> dict[int, dict[str, int]]:
    return organisers(1, 6, 7, 8)


def _params_bytes(model: torch.nn.Module) -> int:
    return sum(round_size(p.numel() * p.element_size()) for p in model.parameters())


def _plain() -> torch.nn.Module:
    """The parameters of models/common.py's Plain: conv(3 -> 64, 3x3), conv(64 -> 48, 3x3)."""
    return torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.Conv2d(64, 48, 3))


@pytest.mark.slow
def test_an_entry_that_changes_itself_on_its_first_forward_is_counted_changed(official: dict) -> None:
    doc = measure("models/team01_mutate.py:MutateNet")
    m = doc["metrics"]
    assert doc["status"] == "ok", doc.get("error")
    assert m["changed_by_first_forward"] is True
    assert (m["params"], m["flops"]) == (official[1]["params"], official[1]["flops"])
    assert m["convs"] == official[1]["convs"] == 3
    assert m["as_built"]["params"] == m["params"] + 32 * 32 + 32  # the deleted 1x1 branch, shown beside


def test_input_dependent_counts_are_a_range_containing_the_organisers_draws() -> None:
    from fvcore.nn import FlopCountAnalysis

    doc = measure("models/team02_route.py:RouteNet")
    m = doc["metrics"]
    assert doc["status"] == "ok", doc.get("error")
    assert m["input_dependent"] is True
    lo, hi = m["ranges"]["flops"]
    assert lo < hi
    spec = ModelSpec.from_dict({"target": f"{DATA}/models/team02_route.py:RouteNet", "root": str(DATA)})
    model = spec.build()
    gen = torch.Generator().manual_seed(1234)
    for _ in range(4):  # fvcore on torch.rand, as the harness calls it, with draws of its own
        analysis = FlopCountAnalysis(model, torch.rand(1, 3, 256, 256, generator=gen))
        analysis.unsupported_ops_warnings(False)
        assert lo <= analysis.total() <= hi


def test_a_constructor_forward_with_autograd_is_in_the_predicted_memory() -> None:
    # conv(3->64) -> ReLU -> conv(64->48) -> PixelShuffle at 128x128 with autograd on: at the pixel shuffle the
    # input (3), the ReLU's output (64, saved for conv2's backward), conv2's output (48) and the shuffle's (48)
    # are alive, in units of H x W fp32, plus the parameters
    doc = measure("models/team03_ctor_forward.py:CtorForwardNet")
    m = doc["metrics"]
    assert doc["status"] == "ok", doc.get("error")
    expected = _params_bytes(_plain()) + round_size(3 * 128 * 128 * 4) + round_size(64 * 128 * 128 * 4)
    expected += 2 * round_size(48 * 128 * 128 * 4)
    assert m["memory_peak_stage"] == "construction"
    assert m["memory_stages_mib"]["construction"] * MIB == pytest.approx(expected, rel=0.005)
    assert m["memory_predicted_mib"] > 10 * m["memory_inference_mib"]  # the 32x32 validation image


def test_warm_up_forwards_with_autograd_keep_the_previous_graph_alive() -> None:
    # y = self(x) twenty times at 64x64: while a forward runs, the previous y and what its graph saved (the ReLU's
    # output) are alive: 3 + (64 + 48) + (64 + 48 + 48) units of H x W fp32 at the peak
    doc = measure("models/team04_warmup.py:WarmupNet")
    m = doc["metrics"]
    assert doc["status"] == "ok", doc.get("error")
    hw = 64 * 64 * 4
    expected = _params_bytes(_plain()) + sum(round_size(c * hw) for c in (3, 64, 48, 64, 48, 48))
    assert m["memory_stages_mib"]["construction"] * MIB == pytest.approx(expected, rel=0.005)


def test_autocast_in_forward_is_predicted_in_fp16() -> None:
    fp16 = measure("models/team05_autocast.py:AutocastNet", memory=(64, 64))["metrics"]
    fp32 = measure("models/team05_autocast.py:Fp32Net", memory=(64, 64))["metrics"]
    # fp32 peak: parameters, the input and the ReLU's input and output (64 + 64 channels); under autocast the
    # activations are halves, so the peak falls to well under 0.7x
    assert fp16["memory_inference_mib"] < 0.7 * fp32["memory_inference_mib"]
    assert fp16["flops"] == fp32["flops"]


@pytest.mark.slow
def test_fp16_parameters_and_half_in_forward_are_counted(official: dict) -> None:
    doc = measure("models/team06_half.py:HalfNet")
    m = doc["metrics"]
    assert doc["status"] == "ok", doc.get("error")
    assert (m["params"], m["flops"], m["convs"]) == (
        official[6]["params"],
        official[6]["flops"],
        official[6]["convs"],
    )


@pytest.mark.slow
def test_a_selective_scan_counts_with_the_mamba_stand_in(official: dict) -> None:
    doc = measure("models/team07_scan.py:ScanNet")
    m = doc["metrics"]
    assert doc["status"] == "ok", doc.get("error")
    assert m["stand_ins"] == ["mamba_ssm"]
    assert (m["params"], m["flops"]) == (official[7]["params"], official[7]["flops"])  # fvcore: the scan is 0
    # the full convention counts the scan by its FLOP formula, 9 B L D N (+ B D L for D), beside the rest
    scan = 9 * 1 * 256 * 256 * 16 * 8 + 1 * 16 * 256 * 256
    assert m["by_convention"]["full"]["flops"] >= 2 * m["flops"] + scan
    with pytest.raises(ImportError):  # the stand-in is gone once the entry is built
        import mamba_ssm  # noqa: F401


def test_the_selective_scan_stand_in_is_the_recurrence() -> None:
    from effbench.base.stand_ins.ops import scan_reference, selective_scan

    gen = torch.Generator().manual_seed(0)
    b, d, length, n = 2, 4, 70, 3
    u, delta, z = (torch.randn(b, d, length, generator=gen) for _ in range(3))
    a = -torch.rand(d, n, generator=gen)
    bb, cc = torch.randn(b, n, length, generator=gen), torch.randn(b, n, length, generator=gen)
    dd = torch.randn(d, generator=gen)
    x = torch.zeros(b, d, n)
    ys = []
    dt = torch.nn.functional.softplus(delta)
    for i in range(length):
        x = torch.exp(dt[:, :, i, None] * a) * x + dt[:, :, i, None] * bb[:, None, :, i] * u[:, :, i, None]
        ys.append((x * cc[:, None, :, i]).sum(-1))
    want = (torch.stack(ys, -1) + u * dd[:, None]) * torch.nn.functional.silu(z)
    got, last = scan_reference(u, delta, a, bb, cc, dd, z, None, True)
    assert torch.allclose(got, want, atol=1e-4) and torch.allclose(last, x, atol=1e-5)
    assert torch.allclose(selective_scan(u, delta, a, bb, cc, dd, z, None, True)[0], want, atol=1e-4)


@pytest.mark.slow
def test_an_extension_that_cannot_be_imported_counts_the_python_path_and_says_so(official: dict) -> None:
    doc = measure("models/team08_ext_fallback.py:ExtFallbackNet")
    m = doc["metrics"]
    assert doc["status"] == "ok", doc.get("error")
    differs = m["counted_path_differs"]
    assert [u["name"] for u in differs["unavailable"]] == ["team08_fused_attention_cuda"]
    assert m["flops"] == official[8]["flops"] == differs["figures"]["fvcore"]["flops"]
    assert differs["figures"]["full"]["flops"] > m["flops"]


def test_an_output_written_outside_the_trace_is_an_opaque_op_with_its_name() -> None:
    doc = measure("models/team09_opaque.py:OpaqueNet")
    assert doc["status"] == "opaque_op"
    assert "np.copyto(" in doc["error"] and "empty_like" in doc["error"]
    (op,) = doc["metrics"]["opaque_ops"]
    assert op["made_at"].endswith("team09_opaque.py:18") and op["read_at"].endswith("team09_opaque.py:20")


def test_a_jiterator_kernel_needs_cuda_with_the_reason() -> None:
    doc = measure("models/team10_jiterator.py:JiteratorNet")
    assert doc["status"] == "needs_cuda"
    assert "Jiterator" in doc["error"]


@pytest.mark.slow
def test_forked_cells_run_alone_a_killed_entry_takes_no_neighbour_down(tmp_path: Path) -> None:
    from effbench.challenge.manifest import load_manifest
    from effbench.challenge.run import run_challenge
    from effbench.sweep.executors.local import LocalExecutor

    manifest = tmp_path / "m.toml"
    lines = ["[challenge]", 'name = "harness"', "year = 2025", f'root = "{DATA}"', 'baseline = "03"', ""]
    for name, target in (
        ("03", "models/team03_ctor_forward.py:CtorForwardNet"),
        ("11", "models/team11_crash.py:CrashNet"),
        ("06", "models/team06_half.py:HalfNet"),
    ):
        lines += ["[[entry]]", f'name = "{name}"', f'model = "{target}"', "data_range = 1.0", ""]
    manifest.write_text("\n".join(lines))
    summary = run_challenge(
        load_manifest(manifest), tmp_path / "out", progress=False, executor=LocalExecutor(2)
    )
    rows = {r["name"]: r for r in summary["leaderboard"]}
    assert rows["03"]["status"] == "ok" and rows["06"]["status"] == "ok"
    assert rows["11"]["status"] in ("error", "oom") and "signal 9" in rows["11"]["error"]
    doc = json.loads(next((tmp_path / "out" / "cells").glob("03-*.json")).read_text())
    assert doc["cell"]["fork_server"]  # it was forked, not started afresh


@pytest.mark.skipif(not NTIRE2025.is_dir(), reason=f"the NTIRE 2025 repository is not in {NTIRE2025}")
def test_the_2025_baseline_is_exact_to_the_log_and_its_memory_within_1pc() -> None:
    # NTIRE2025-EfficientSR.log: #Params 0.2762 M, FLOPs 16.7035 G, #Activations 111.1167 M, #Conv2d 65, Max Memory
    # 662.886 MiB over the DIV2K_LSDIR_valid run
    doc = measure(
        "models/team00_EFDN.py:EFDN",
        root=NTIRE2025,
        memory=tuple(year_rules(2025).memory.largest_lr),
        weights=str(NTIRE2025 / "model_zoo" / "team00_EFDN.pth"),
    )
    m = doc["metrics"]
    assert doc["status"] == "ok", doc.get("error")
    assert round(m["params"] / 1e6, 4) == 0.2762
    assert round(m["flops"] / 1e9, 4) == 16.7035
    assert round(m["activations"] / 1e6, 4) == 111.1167
    assert m["convs"] == 65
    assert m["memory_predicted_mib"] == pytest.approx(662.886, rel=0.01)


def test_cuda_only_packages_and_toolkits_are_needs_cuda_not_missing_packages() -> None:
    from effbench.challenge.statuses import build_status

    assert build_status(ModuleNotFoundError("No module named 'triton'", name="triton")) == "needs_cuda"
    assert build_status(ModuleNotFoundError("No module named 'timm'", name="timm")) == "missing_package"
    assert build_status(OSError("CUDA_HOME environment variable is not set")) == "needs_cuda"
