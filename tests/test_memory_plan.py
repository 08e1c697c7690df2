"""Memory you can plan with: budgets, the planner, GPU workspace profiles, reserved memory, dtypes and layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from effbench.base.errors import UsageError
from effbench.base.inputs import parse_bytes
from effbench.cli import main
from effbench.memory import predict_memory, replay_memory_cpu
from effbench.memory.calibrate import calibrate_workspace, profile_from_validation
from effbench.memory.plan import plan_memory
from effbench.memory.workspace import ConvSignature, GpuProfile, load_profile, profile_names

ROOT = Path(__file__).resolve().parent.parent
RUN2 = ROOT / "reports/gpu/nvidia-h200/run2/results.json"
GiB = 1 << 30


# --- budgets -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("8GiB", 8 * GiB),
        ("512MiB", 512 << 20),
        ("8e9", 8_000_000_000),
        ("1.5 GB", 1_500_000_000),
        (4096, 4096),
    ],
)
def test_parse_bytes_reads_binary_and_decimal_units(text: str | int, nbytes: int) -> None:
    assert parse_bytes(text) == nbytes


@pytest.mark.parametrize("text", ["8XB", "lots", "0", "-1GiB", "inf", "nan", True])
def test_parse_bytes_refuses_bad_amounts(text: object) -> None:
    with pytest.raises(UsageError, match="bad memory amount"):
        parse_bytes(text)  # type: ignore[arg-type]


# --- the planner ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["fmen_s", "e_rfdn"])
def test_plan_at_8gib_fits_and_one_step_above_does_not(model: str) -> None:
    plan = plan_memory(model, 8 * GiB, scale=4)
    assert plan.monotone
    for fit in (plan.square, plan.wide, plan.tile):
        assert fit.size is not None
        at = predict_memory(model, fit.size, scale=4).peak_bytes
        above = predict_memory(model, fit.next_size, scale=4).peak_bytes
        assert at == fit.peak_bytes <= 8 * GiB < above == fit.next_peak_bytes
    h, w = plan.wide.size  # type: ignore[misc]
    assert abs(h / w - 9 / 16) < 1e-3
    assert plan.square.next_size == (plan.square.size[0] + 1,) * 2  # type: ignore[index]


def test_tiles_leave_room_for_the_image_held_on_the_device() -> None:
    free = plan_memory("fmen_s", 1 * GiB)
    held = plan_memory("fmen_s", 1 * GiB, image=(1080, 1920), overlap=16)
    assert held.held_bytes > 0
    assert held.tile.size[0] < free.tile.size[0]  # type: ignore[index]
    assert held.tile.peak_bytes <= 1 * GiB < held.tile.next_peak_bytes  # type: ignore[operator]
    stride = held.tile.size[0] - 16  # type: ignore[index]
    rows, cols = held.tiles  # type: ignore[misc]
    assert (rows - 1) * stride + held.tile.size[0] >= 1080 and (cols - 1) * stride + held.tile.size[0] >= 1920  # type: ignore[index]


def test_a_budget_below_the_smallest_input_says_nothing_fits() -> None:
    plan = plan_memory("fmen_s", 1 << 20)
    assert plan.square.size is None and plan.square.next_peak_bytes > 1 << 20


def test_cli_budget_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["memory", "fmen_s", "--budget", "512MiB", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["budget_bytes"] == 512 << 20
    assert doc["square"]["peak_bytes"] <= 512 << 20 < doc["square"]["next_peak_bytes"]


# --- workspace profiles --------------------------------------------------------------------------------------------
def _sig(**kw: object) -> ConvSignature:
    base = dict(
        kernel=(3, 3),
        stride=(1, 1),
        padding=(1, 1),
        dilation=(1, 1),
        groups=1,
        in_channels=8,
        out_channels=8,
        transposed=False,
        dtype="float32",
        layout="contiguous",
    )
    return ConvSignature(**{**base, **kw})  # type: ignore[arg-type]


def test_workspace_interpolates_in_pixels_and_says_when_it_extrapolates() -> None:
    sig = _sig()
    prof = GpuProfile("t", {}, {sig: [(10, 10, 1024), (20, 20, 4096)]})
    assert (prof.workspace(sig, (1, 8, 10, 10)).bytes, prof.workspace(sig, (1, 8, 10, 10)).how) == (
        1024,
        "grid",
    )
    mid = prof.workspace(sig, (1, 8, 10, 25))  # 250 px: 1024 + 3072 * 150 / 300 = 2560
    assert (mid.bytes, mid.how) == (2560, "interpolated")
    same = prof.workspace(sig, (1, 8, 40, 10))  # 400 px, as the 20x20 point
    assert (same.bytes, same.how) == (4096, "grid")
    beyond = prof.workspace(sig, (2, 8, 20, 20))  # batch 2: 800 px, on the line through the end points
    assert (beyond.bytes, beyond.how) == (8192, "extrapolated")  # 4096 + 3072 * 400 / 300, in 512-byte blocks
    below = prof.workspace(sig, (1, 8, 5, 5))  # 25 px: 1024 - 3072 * 75 / 300 = 256 B, one 512-byte block
    assert (below.bytes, below.how) == (512, "extrapolated")
    steep = GpuProfile("t", {}, {sig: [(10, 10, 512), (20, 20, 4096)]})
    assert steep.workspace(sig, (1, 8, 5, 5)).bytes == 0  # the line goes below 0 there: clamped
    assert prof.workspace(_sig(in_channels=16), (1, 16, 10, 10)).how == "missing"


def test_profile_round_trips_through_json(tmp_path: Path) -> None:
    prof = GpuProfile("t", {"gpu": "X"}, {_sig(): [(10, 10, 512)]}, cuda_context_bytes=5 << 20)
    back = load_profile(prof.save(tmp_path / "t.json"))
    assert back.convs == prof.convs and back.key["gpu"] == "X" and back.cuda_context_bytes == 5 << 20


def test_unknown_profile_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown GPU profile 'nope'.*nvidia-h200"):
        load_profile("nope")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_profile(bad)


def test_calibrate_without_cuda_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UsageError, match="needs a CUDA GPU"):
        calibrate_workspace([_sig()])


def test_the_h200_profile_ships_and_matches_its_recorded_run() -> None:
    assert "nvidia-h200" in profile_names()
    shipped = load_profile("nvidia-h200")
    doc = json.loads(RUN2.read_text())
    rebuilt = profile_from_validation(doc["memory"], doc["env"], name="nvidia-h200", source="")
    assert shipped.convs == rebuilt.convs
    assert shipped.key["gpu"] == "NVIDIA H200" and shipped.key["cudnn"] == 91900


def _run2_errors(profile: GpuProfile, rows: list[dict]) -> list[tuple[float, float]]:
    """(allocated, reserved) relative errors of the prediction with ``profile`` on run2's cells. The measured
    reserved peak includes what the process held before (allocated_peak - measured_peak), counted as reserved."""
    out = []
    for r in rows:
        p = predict_memory(r["model"], tuple(r["size"]), scale=r["scale"], gpu_profile=profile)
        reserved = r["reserved_peak_bytes"] - (r["allocated_peak_bytes"] - r["measured_peak_bytes"])
        out.append(
            (
                (p.peak_bytes - r["measured_peak_bytes"]) / r["measured_peak_bytes"],
                (p.reserved_peak_bytes - reserved) / reserved,
            )
        )
    return out


def test_with_the_h200_profile_every_run2_cell_is_within_2_percent() -> None:
    rows = json.loads(RUN2.read_text())["memory"]
    errors = _run2_errors(load_profile("nvidia-h200"), rows)
    assert len(errors) == 38
    assert sum(abs(a) <= 0.02 for a, _ in errors) == 38
    assert sum(abs(r) <= 0.05 for _, r in errors) == 38


def test_workspace_at_a_conv_enters_the_allocator() -> None:
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1)).eval()
    plain = predict_memory(model, (32, 32), channels=8)
    sig = _sig()
    prof = GpuProfile("t", {}, {sig: [(32, 32, 30 << 20)]})
    ws = predict_memory(model, (32, 32), channels=8, gpu_profile=prof)
    assert ws.workspace_peak_bytes == 30 << 20
    assert ws.peak_bytes == plain.peak_bytes + (30 << 20)  # a large-pool block, split exactly
    assert ws.reserved_peak_bytes >= plain.reserved_peak_bytes + (30 << 20)
    assert any("workspace from GPU profile t" in n for n in ws.notes)


# --- reserved memory, dtypes, layouts ------------------------------------------------------------------------------
def test_reserved_covers_allocated_and_is_in_the_metrics() -> None:
    r = predict_memory("fmen_s", (64, 64))
    assert r.reserved_peak_bytes >= r.peak_bytes
    assert r.reserved_peak_bytes % (2 << 20) == 0  # whole segments
    assert r.metrics()["peak_memory_reserved_predicted_bytes"] == r.reserved_peak_bytes
    from effbench.base.catalogue import metric

    assert metric("peak_memory_reserved_predicted_bytes").unit == "MiB"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_halves_the_live_blocks(dtype: torch.dtype) -> None:
    full = predict_memory("fmen_s", (64, 64), device_model="plain")
    half = predict_memory("fmen_s", (64, 64), device_model="plain", dtype=dtype)
    assert half.dtype == str(dtype).replace("torch.", "")
    assert abs(half.peak_bytes / full.peak_bytes - 0.5) < 0.01


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 12, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.a(x))
        return nn.functional.pixel_shuffle(self.b(y) + 1.0, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_channels_last_fake_replay_equals_real_cpu_replay(dtype: torch.dtype) -> None:
    net = _Net().to(dtype=dtype, memory_format=torch.channels_last).eval()
    a = predict_memory(net, (16, 16), dtype=dtype, memory_format="channels_last", device_model="plain")
    b = replay_memory_cpu(net, (16, 16), dtype=dtype, memory_format="channels_last")
    assert a.memory_format == "channels_last"
    assert [(e["op"], e["live_bytes"]) for e in a.timeline] == [
        (e["op"], e["live_bytes"]) for e in b.timeline
    ]


def test_bad_memory_format_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="unknown memory format 'nhwc'"):
        predict_memory("fmen_s", (32, 32), memory_format="nhwc")


def test_the_planner_is_public_api() -> None:
    import effbench
    import effbench.memory

    assert effbench.plan_memory is effbench.memory.plan_memory
    assert "plan_memory" in effbench.__all__ and "plan_memory" in effbench.memory.__all__
