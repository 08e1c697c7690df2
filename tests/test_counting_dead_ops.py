"""Dead ops under the ``fvcore`` convention: fvcore counts the graph of a JIT trace, whose dead-code elimination
drops every op whose result never reaches the output (nor writes to memory that does, nor to the model's input,
parameters or buffers). Each model here is counted by real fvcore ``FlopCountAnalysis`` and by effbench's
``fvcore`` convention, integer for integer; ``full`` still counts every op the forward ran."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from effbench.counting import compare_conventions

SHAPE = (1, 4, 8, 12)
CONV = 4 * 4 * 3 * 3 * 8 * 12  # fvcore's FLOPs of one 4->4 3x3 convolution on 8x12: 13,824


def _conv() -> nn.Conv2d:
    return nn.Conv2d(4, 4, 3, padding=1)


def _merged(conv: nn.Conv2d) -> torch.Tensor:
    """A re-parameterisation as RepVGG-like blocks do it in eval: a convolution over the weights themselves."""
    w = conv.weight.data.clone().detach()
    return F.conv2d(w, w.permute(1, 0, 2, 3), padding=2)[:, :, 1:4, 1:4].contiguous()


class MergedIntoData(nn.Module):
    """Merges weights with ``F.conv2d`` and assigns them through ``.data`` (as NTIRE 2025's SFNet Conv3XC does):
    the merge is dead to the JIT, which sees the parameter, not the assignment."""

    def __init__(self) -> None:
        super().__init__()
        self.source, self.target = _conv(), _conv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.target.weight.data = _merged(self.source)
        return self.target(x)


class MergedCopiedIntoData(MergedIntoData):
    """The merge copied into ``weight.data`` in place: a write to a tensor the JIT does not trace, dead too."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.target.weight.data.copy_(_merged(self.source))
        return self.target(x)


class MergedCopiedIntoParameter(MergedIntoData):
    """The merge copied into the parameter itself: a write to a graph input, which the JIT keeps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.source.weight
        with torch.no_grad():
            self.target.weight.copy_(F.conv2d(w, w.permute(1, 0, 2, 3), padding=2)[:, :, 1:4, 1:4])
        return self.target(x)


class UnusedBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = _conv(), nn.Linear(12, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)  # noqa: F841 (computed, never used)
        z = self.fc(x) @ x.transpose(-1, -2)  # noqa: F841
        return x * 2


class DeadTensorMutated(nn.Module):
    """An in-place op on a tensor nothing reads afterwards: dead, and so is what it adds."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = _conv(), _conv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        y.add_(self.b(x))
        return x * 2


class InPlaceOnLiveView(nn.Module):
    """An in-place op on a view of the returned tensor: live, with the convolution feeding it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = _conv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x * 2
        out[:, :2].add_(self.conv(x)[:, :2])
        return out


class InPlaceOnLiveChunk(InPlaceOnLiveView):
    """The same through ``chunk``, whose outputs are a list of views."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x * 2
        first, _ = out.chunk(2, dim=1)
        first.add_(self.conv(x)[:, :2])
        return out


class InPlaceOnLiveTensor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = _conv(), _conv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        y.mul_(torch.sigmoid(self.b(x)))
        return y


class WritesItsBuffer(nn.Module):
    """A write to module state (a buffer): kept by the JIT although the output does not read it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = _conv()
        self.register_buffer("last", torch.zeros(SHAPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.last.copy_(self.conv(x))
        return x * 2


class WritesItsInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = _conv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        x.add_(self.conv(x))
        return y


class ScoreToInt(nn.Module):
    """Scores whose only use is a Python int (the number of channels to pick, as NTIRE 2025's 16_SCMSR counts the
    windows a sample keeps): dead to the JIT, whose trace keeps the int as a constant. Each round's dead tensors
    are freed during the forward (the real engine: ``int()`` needs values), and the tensors made next are given
    their ids by Python."""

    def __init__(self) -> None:
        super().__init__()
        self.head, self.tail, self.score = _conv(), _conv(), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(x)
        for _ in range(6):
            pooled = y.mean((2, 3))
            hits = torch.zeros_like(pooled).scatter_(-1, self.score(pooled).argmax(-1, keepdim=True), 1.0)
            k = int(hits.sum())  # the dead branch ends here
            del hits
            order = torch.argsort(pooled, dim=1)[:, :k]
            y = y + y.index_select(1, order[0])
        return self.tail(y)


# model -> real fvcore's total, which the checks below also assert is what the JIT's DCE gives
CASES: dict[type[nn.Module], int] = {
    MergedIntoData: CONV,
    MergedCopiedIntoData: CONV,
    # + the merge: a batch of 4 weights, a 4x4x3x3 kernel, 5x5 output positions (before the slice)
    MergedCopiedIntoParameter: CONV + 4 * (4 * 4 * 3 * 3) * 5 * 5,
    UnusedBranch: 0,
    DeadTensorMutated: 0,
    InPlaceOnLiveView: CONV,
    InPlaceOnLiveChunk: CONV,
    InPlaceOnLiveTensor: 2 * CONV,
    WritesItsBuffer: CONV,
    WritesItsInput: CONV,
}


def _fvcore(build: Callable[[], nn.Module]) -> int:
    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with torch.no_grad():
        fa = FlopCountAnalysis(build().eval(), torch.rand(SHAPE))
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        return int(fa.total())


def _ours(build: Callable[[], nn.Module]) -> dict[str, int]:
    profiles = compare_conventions(build().eval(), SHAPE[2:], ["fvcore", "full"], channels=SHAPE[1])
    return {name: p.flops for name, p in profiles.items()}


@pytest.mark.parametrize("model", list(CASES), ids=[m.__name__ for m in CASES])
def test_fvcore_convention_drops_what_the_jit_trace_drops(model: type[nn.Module]) -> None:
    pytest.importorskip("fvcore")
    expected = _fvcore(model)
    assert expected == CASES[model]  # what the JIT keeps, as the case's docstring says
    assert _ours(model)["fvcore"] == expected


@pytest.mark.parametrize(
    "model", [MergedIntoData, MergedCopiedIntoData, UnusedBranch, DeadTensorMutated], ids=lambda m: m.__name__
)
def test_full_still_counts_the_ops_the_forward_ran(model: type[nn.Module]) -> None:
    counts = _ours(model)
    # 2 FLOPs per multiply-add of every convolution run, dead ones included
    assert counts["full"] > 2 * counts["fvcore"] + 2 * CONV - 1


def test_a_dead_branch_ending_in_an_int_counts_the_same_every_time() -> None:
    """The liveness pass keys tensors by object, not by ``id()``: a freed dead tensor's id taken by a live one
    made a dead write look live in some counts and not in others (the score's Linear, +8 FLOPs here)."""
    pytest.importorskip("fvcore")
    expected = _fvcore(ScoreToInt)
    assert expected == 2 * CONV  # the head and the tail; the scores are dead
    model = ScoreToInt().eval()
    counts = [
        compare_conventions(model, SHAPE[2:], ["fvcore"], channels=SHAPE[1])["fvcore"].flops for _ in range(5)
    ]
    assert counts == [expected] * 5


def test_live_ops_marks_each_recorded_op() -> None:
    from effbench.counting._trace import record

    trace = record(UnusedBranch().eval(), SHAPE)
    alive = trace.live_ops()
    assert len(alive) == len(trace.ops)
    live = {op.packet for op, a in zip(trace.ops, alive) if a}
    dead = {op.packet for op, a in zip(trace.ops, alive) if not a}
    assert live == {"aten.mul"}
    assert {"aten.convolution", "aten.addmm"} <= dead or {"aten.convolution", "aten.mm"} <= dead
