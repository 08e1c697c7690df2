"""The predicted memory as a CUDA memory snapshot, read back with PyTorch's own snapshot tooling."""

from __future__ import annotations

import base64
import pickle
import pickletools
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.cuda import _memory_viz as viz

from effbench.base.errors import UsageError
from effbench.memory import predict_memory
from effbench.memory.snapshot import measured_snapshot, predict_snapshot, write_snapshot

SIZE = (48, 40)


def _flamegraph_lines(lines: str) -> str:
    """Stands in for flamegraph.pl (which memory_viz downloads): the folded lines themselves."""
    return lines


def _active_timeline_peak(snapshot: dict[str, Any], device: int = 0) -> int:
    """The top of the viewer's Active Memory Timeline: blocks alive before the trace (active at the end, never
    allocated in it) plus the trace's allocations, each counted from its alloc to its free (requested sizes)."""
    events = snapshot["device_traces"][device]
    allocated_in_trace: dict[int, int] = {}
    freed_before_alloc = 0
    for e in events:
        if e["action"] == "alloc":
            allocated_in_trace[e["addr"]] = e["size"]
        elif e["action"] == "free_completed":
            if allocated_in_trace.pop(e["addr"], None) is None:
                freed_before_alloc += e["size"]
    live_at_end = allocated_in_trace.keys()
    initial = freed_before_alloc + sum(
        b["requested_size"]
        for seg in snapshot["segments"]
        if seg["device"] == device
        for b in seg["blocks"]
        if b["state"] == "active_allocated" and b["address"] not in live_at_end
    )
    total = peak = initial
    for e in events:
        if e["action"] == "alloc":
            total += e["size"]
        elif e["action"] == "free_completed":
            total -= e["size"]
        peak = max(peak, total)
    return peak


@pytest.fixture(scope="module")
def rlfn_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from effbench.cli import main

    d = tmp_path_factory.mktemp("snap")
    out = {}
    for at in ("end", "peak"):
        out[at] = d / f"rlfn_{at}.pickle"
        size = "x".join(map(str, SIZE))
        assert main(["memory", "rlfn", "--size", size, "--snapshot", str(out[at]), "--snapshot-at", at]) == 0
    return out


def _load(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        return pickle.load(f)


def test_the_written_snapshot_reads_in_pytorchs_memory_viz_tools(rlfn_files: dict[str, Path]) -> None:
    end, peak = _load(rlfn_files["end"]), _load(rlfn_files["peak"])
    summary = viz.segsum(end)  # asserts that blocks add up to every segment and to the reserved total
    assert f"segments: {len(end['segments'])}" in summary
    text = viz.trace(end)
    assert f"{len(end['device_traces'][0])} entries" in text and "cudaMalloc" in text
    assert "active_allocated" in viz.segments(end, format_flamegraph=_flamegraph_lines)
    assert "fea_conv.weight" in viz.memory(peak, format_flamegraph=_flamegraph_lines)
    assert "only_after" in viz.compare(
        end["segments"][:1], end["segments"], format_flamegraph=_flamegraph_lines
    )
    plots = [
        (viz.trace_plot(end), end),
        (viz.trace_plot(end, plot_segments=True), end),
        (viz.segment_plot(peak), peak),
    ]
    for html, shown in plots:
        encoded = html.split('"base64": "')[1].split('"')[0]
        assert pickle.loads(base64.b64decode(encoded)) == shown


# The opcodes the JavaScript unpickler of PyTorch's viewer (torch/utils/viz/MemoryViz.js, pytorch.org/memory_viz)
# reads; any other one makes it throw "UNKNOWN OPCODE".
VIEWER_OPCODES = set(
    "PROTO FRAME STOP MARK MEMOIZE BINPUT LONG_BINPUT BINGET LONG_BINGET EMPTY_DICT EMPTY_LIST EMPTY_TUPLE DICT "
    "SETITEM SETITEMS LIST APPEND APPENDS TUPLE TUPLE1 TUPLE2 TUPLE3 BININT BININT1 BININT2 LONG1 BINFLOAT "
    "SHORT_BINUNICODE BINUNICODE NEWTRUE NEWFALSE NONE".split()
)


def test_the_pickle_uses_only_what_the_browser_viewer_unpickles(rlfn_files: dict[str, Path]) -> None:
    for path in rlfn_files.values():
        used = {op.name for op, _arg, _pos in pickletools.genops(path.read_bytes())}
        assert used <= VIEWER_OPCODES, used - VIEWER_OPCODES


def test_the_sum_of_active_blocks_at_the_peak_is_the_predicted_peak(rlfn_files: dict[str, Path]) -> None:
    peak = _load(rlfn_files["peak"])
    predicted = predict_memory("rlfn", SIZE).peak_bytes
    active = sum(b["size"] for s in peak["segments"] for b in s["blocks"] if b["state"] == "active_allocated")
    assert active == predicted
    assert sum(s["allocated_size"] for s in peak["segments"]) == predicted
    assert peak["device_traces"][0][-1]["action"] == "alloc"


def test_the_viewers_timeline_peak_is_the_predicted_requested_peak(rlfn_files: dict[str, Path]) -> None:
    end, peak = _load(rlfn_files["end"]), _load(rlfn_files["peak"])
    snap = predict_snapshot("rlfn", SIZE)
    assert _active_timeline_peak(end) == _active_timeline_peak(peak) == snap.requested_peak_bytes
    assert snap.requested_peak_bytes <= snap.peak_bytes == predict_memory("rlfn", SIZE).peak_bytes
    assert sum(s["total_size"] for s in end["segments"]) == snap.reserved_bytes


def test_the_trace_is_a_complete_record_of_the_blocks_alive_at_the_end(rlfn_files: dict[str, Path]) -> None:
    end = _load(rlfn_files["end"])
    live: dict[int, int] = {}
    for e in end["device_traces"][0]:
        if e["action"] == "alloc":
            assert e["addr"] not in live
            live[e["addr"]] = e["size"]
        elif e["action"] == "free_completed":
            assert live.pop(e["addr"]) == e["size"]
    active = {
        b["address"]: b["requested_size"]
        for s in end["segments"]
        for b in s["blocks"]
        if b["state"] == "active_allocated"
    }
    assert live == active
    segs = [e for e in end["device_traces"][0] if e["action"] == "segment_alloc"]
    assert [(e["addr"], e["size"]) for e in segs] == [
        (s["address"], s["total_size"]) for s in end["segments"]
    ]


def test_frames_name_the_modules_with_the_model_file_and_the_pass(rlfn_files: dict[str, Path]) -> None:
    end = _load(rlfn_files["end"])
    convs = [
        e["frames"]
        for e in end["device_traces"][0]
        if e["action"] == "alloc" and e["frames"][0]["name"].endswith("aten.convolution.default")
    ]
    names = [[f["name"] for f in fr] for fr in convs]
    assert ["B1.c1_r (Conv2d)", "B1 (RLFB)", "<model> (RLFN)", "warm forward"] == names[1][1:]
    assert any(n[-1] == "measured forward" for n in names)
    assert convs[1][2]["filename"].endswith("rlfn.py") and convs[1][2]["line"] > 0


class _Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 3, padding=1)
        self.up = nn.PixelShuffle(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.up(y) if y.abs().max() >= 0 else self.up(-y)


def test_snapshot_refuses_what_it_cannot_stand_for(tmp_path: Path) -> None:
    from effbench.cli import main

    with pytest.raises(UsageError, match="data-dependent"):
        predict_snapshot(_Gated().eval(), (16, 16))
    with pytest.raises(UsageError, match="snapshot point"):
        predict_snapshot("rlfn", SIZE, at="middle")
    with pytest.raises(UsageError, match=".pickle"):
        write_snapshot({}, tmp_path / "x.png")
    out = tmp_path / "s.pickle"
    assert main(["memory", "rlfn", "--snapshot", str(out), "--device-model", "plain"]) == 2
    assert main(["memory", "rlfn", "imdn", "--snapshot", str(out)]) == 2
    assert not out.exists()


@pytest.mark.gpu
def test_measured_snapshot_reads_in_memory_viz_beside_the_prediction(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    measured = measured_snapshot("rlfn", (64, 64))
    predicted = predict_snapshot("rlfn", (64, 64))
    viz.segsum(measured)
    assert _active_timeline_peak(measured) > 0
    print(
        f"viewer peak measured {_active_timeline_peak(measured)} predicted {predicted.requested_peak_bytes}"
    )
    write_snapshot(measured, tmp_path / "m.pickle")
