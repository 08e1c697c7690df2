"""An entry's counts under a year's rules: one trace, each metric under the convention of the year's tool, and
every convention's figures from the same trace (what the year's tool leaves out, against ``full``).

Parameters stay in the model's own dtypes (fp16 parameters, ``x.half()`` inside ``forward``) and the input is fp32,
as the harness feeds it. A model whose forward depends on the input's values (routing, early exits: the trace
needs a real forward) is counted on several draws of each tool's input, as the tools get it:

- fvcore's ``torch.rand(1, 3, H, W)``: :data:`INPUT_DRAWS` seeded ``torch.rand`` draws;
- the hook tool's ``torch.FloatTensor(1, 3, H, W)``: uninitialised CPU memory (moved to the GPU by ``.to(device)``
  on the organisers' machine, so it is the CPU allocator's block either way), which holds what the allocator
  hands back: zeros (fresh pages: the first trace), the bytes of a tensor the harness freed (an image or a
  feature map: the ``torch.rand`` draws stand for it) or a table of heap addresses a freed Python or allocator
  structure left there (:func:`heap_pointers`, :data:`HEAP_DRAWS` draws, each address split into two float32:
  its low word, of any magnitude, and its high word, a denormal). Which one a run gets changes from run to run
  (address-space randomisation, hash randomisation), so the organisers' figure for such an entry is one draw.

A forward that draws random numbers itself (``F.gumbel_softmax``, sampling) counts differently on one input from
run to run; every draw is made with the global RNG seeded (its own seed), so effbench's figures are reproducible,
and ``rng_in_forward`` says so. Each metric's draws are those of its own tool's input (fvcore's: the
``torch.rand`` draws; the hook tool's: all of them). An entry whose draws differ is marked ``input_dependent``:
``draw_ranges`` holds each metric's [min, max] over its draws, ``ranges`` that range widened to the
:data:`COVERAGE` prediction interval of one more draw (Student's t on the draws; the organisers' figure is one
draw of the same distribution), and the value given is the median of the draws.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

__all__ = [
    "COVERAGE",
    "HEAP_DRAWS",
    "INPUT_DRAWS",
    "heap_pointers",
    "prediction_interval",
    "t_quantile",
    "year_counts",
]

#: seeded torch.rand draws of fvcore's input for a model whose counts depend on the input's values
INPUT_DRAWS = 4
#: draws of the hook tool's uninitialised input holding a table of heap addresses (:func:`heap_pointers`)
HEAP_DRAWS = 3
#: the probability that one more draw (the organisers' run) falls in a metric's ``ranges``
COVERAGE = 0.999
#: draws after the first of each kind stop when the next one would end past this many seconds (a model that takes
#: minutes per forward on a CPU); the draws made are recorded
DRAW_SECONDS = 180.0
_METRICS = ("flops", "macs", "activations", "convs")
_RAND_TOOL = (
    "fvcore"  #: the convention of the only tool that draws torch.rand; the others read uninitialised memory
)
_Fill = Callable[[tuple[int, ...], torch.dtype, torch.device], torch.Tensor]


def _rand(seed: int) -> _Fill:
    def make(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(shape, generator=gen, dtype=dtype).to(device)

    return make


def _rng_seed(kind: str, seed: int) -> int:
    """The global RNG's seed for draw ``seed`` of ``kind``: none the inputs' generators use (a forward's noise
    drawn from the stream its input came from would be the input's own numbers)."""
    return 0x5EED0000 + 0x100 * ("rand", "heap").index(kind) + seed


def heap_pointers(shape: Sequence[int], seed: int) -> torch.Tensor:
    """An fp32 tensor of ``shape`` holding what a freed table of 8-byte heap addresses leaves in a block the CPU
    allocator hands back: two addresses (two objects a few pages apart, 16-byte aligned) repeated, in an x86-64
    user-space region (the ``brk`` heap at 0x55..-0x56.. or ``mmap`` memory at 0x7f..), each read as two float32,
    its low word (a value of any magnitude and sign) then its high word (a denormal)."""
    gen = torch.Generator().manual_seed(seed)

    def below(n: int) -> int:
        return int(torch.randint(0, n, (1,), generator=gen))

    high = (0x5500 + below(0x200)) if below(2) else (0x7F00 + below(0x100))
    low = below(2**32) & ~0xF
    words = []
    for _ in range(2):
        words += [(low + 16 * below(4096)) & 0xFFFFFFFF, high]
    n = math.prod(shape)
    signed = [w - 2**32 if w >= 2**31 else w for w in words]
    table = torch.tensor(signed * (n // 4 + 1), dtype=torch.int32)[:n]
    return table.view(torch.float32).reshape(tuple(shape)).clone()


def _heap(seed: int) -> _Fill:
    def make(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        return heap_pointers(shape, seed).to(device=device, dtype=dtype)

    return make


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (``p`` > 0.5) of Student's t distribution with ``df`` degrees of freedom."""
    if not 0.5 < p < 1 or df < 1:
        raise ValueError(f"t_quantile needs 0.5 < p < 1 and df >= 1, got p={p}, df={df}")
    # CDF(x) = 1/2 + c * integral_0^atan(x/sqrt(df)) cos(u)^(df-1) du (x = sqrt(df) tan u): smooth, Simpson's rule
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(math.pi)

    def cdf(x: float) -> float:
        top, n = math.atan(x / math.sqrt(df)), 400
        h = top / n
        s = sum((4 if i % 2 else 2) * math.cos(i * h) ** (df - 1) for i in range(1, n))
        return 0.5 + c * h / 3 * (1 + math.cos(top) ** (df - 1) + s)

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return hi


def prediction_interval(values: Sequence[float], coverage: float = COVERAGE) -> tuple[float, float]:
    """The two-sided ``coverage`` prediction interval of one more draw from the distribution ``values`` were drawn
    from (normal, Student's t on their mean and standard deviation); ``values`` themselves when they agree or are
    fewer than two."""
    if len(values) < 2 or min(values) == max(values):
        return float(min(values)), float(max(values))
    n = len(values)
    half = t_quantile((1 + coverage) / 2, n - 1) * statistics.stdev(values) * math.sqrt(1 + 1 / n)
    mean = statistics.fmean(values)
    return mean - half, mean + half


def year_counts(
    model: nn.Module,
    label: str,
    counting: Mapping[str, str],
    size: Sequence[int],
    scale: int = 4,
    draws: int = INPUT_DRAWS,
    force_real: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(counts, profiles)``: ``counts`` holds ``params`` and each other metric of ``counting`` (metric ->
    convention) on a 1x3x``size`` input, plus ``counting``, ``counting_input``, ``trace_engine``,
    ``by_convention`` and ``uncounted_ops`` (ops the FLOPs convention has no rule for); for a model whose counts
    depend on the input's values also ``input_dependent`` (True), ``ranges`` and ``draw_ranges`` (metric -> [min,
    max]), ``rng_in_forward`` and ``input_draws`` (each draw's figures). ``draws``: the torch.rand draws (0: none,
    nor any other). ``profiles`` maps each convention (``full`` included) to its
    :class:`~effbench.counting.profile.Profile` on the first trace. ``force_real``: a real forward only (a
    model the shapes-only replays cannot run)."""
    from ..counting.profile import profile_trace, trace_model

    with torch.random.fork_rng(devices=[]):  # a forward drawing random numbers counts the same every time
        torch.manual_seed(0x5EED0000 - 1)
        trace, _ = trace_model(
            model, tuple(size), scale=scale, label=label, keep_dtypes=True, force_real=force_real
        )
    conventions = sorted({*counting.values(), "full"})
    profiles = {c: profile_trace(trace, c, label) for c in conventions}
    counts: dict[str, Any] = {"params": int(trace.params)}
    for metric, conv in counting.items():
        if metric != "params":
            counts[metric] = int(getattr(profiles[conv], metric))
    counts["counting"] = dict(counting)
    counts["counting_input"] = list(trace.input_shape)
    counts["trace_engine"] = trace.engine
    counts["by_convention"] = {c: {k: int(getattr(p, k)) for k in _METRICS} for c, p in profiles.items()}
    if "flops" in counting:
        counts["uncounted_ops"] = sorted(profiles[counting["flops"]].unknown_ops)
    if trace.engine == "real" and draws > 0:
        counts.update(_input_draws(model, label, counting, size, scale, draws, profiles))
    return counts, profiles


def _input_draws(
    model: nn.Module,
    label: str,
    counting: Mapping[str, str],
    size: Sequence[int],
    scale: int,
    draws: int,
    zeros: Mapping[str, Any],
) -> dict[str, Any]:
    """The counts of a value-dependent model on the draws of each tool's input beside the zero input's: first
    one torch.rand and one heap-table draw; when neither counts differently from the zero input, nothing more
    (a value-dependent forward whose counts are not); else the rest of the draws of each kind whose tool's
    metrics differ over the draws so far (a tool whose metrics every draw counts alike gets no more)."""
    from ..counting.profile import profile_trace, trace_model

    convs = sorted(zeros)
    figures: dict[str, dict[str, dict[str, int]]] = {
        "zeros": {c: {k: int(getattr(p, k)) for k in _METRICS} for c, p in zeros.items()}
    }
    rng_used = False

    def draw(name: str, seed: int, fill: _Fill) -> None:
        nonlocal rng_used
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            before = torch.random.get_rng_state()
            try:
                trace, _ = trace_model(
                    model,
                    tuple(size),
                    scale=scale,
                    label=label,
                    keep_dtypes=True,
                    force_real=True,
                    real_input=fill,
                )
            except Exception as exc:
                # an input this model cannot take (a NaN it converts to an int): recorded, not counted
                figures[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}  # type: ignore[dict-item]
                return
            rng_used |= not torch.equal(before, torch.random.get_rng_state())
        figures[name] = {
            c: {k: int(getattr(profile_trace(trace, c, label), k)) for k in _METRICS} for c in convs
        }

    def own(metric: str) -> list[int]:
        """The metric's figures over the draws of its own tool's input."""
        conv = counting[metric]
        return [
            f[conv][metric]
            for name, f in figures.items()
            if "error" not in f and (conv != _RAND_TOOL or name.startswith("rand"))
        ]

    def varies(rand_tool: bool) -> bool:
        """Whether a metric of fvcore's (``rand_tool``) or of the other tools differs over the draws so far."""
        ms = [m for m, c in counting.items() if m != "params" and (c == _RAND_TOOL) == rand_tool]
        made = [f for f in figures.values() if "error" not in f]
        return any(len({f[counting[m]][m] for f in made}) > 1 for m in ms)

    started = time.perf_counter()
    draw("rand0", _rng_seed("rand", 0), _rand(0))
    draw("heap0", _rng_seed("heap", 0), _heap(0))
    done = [f for f in figures.values() if "error" not in f]
    if all(f == figures["zeros"] for f in done):
        return {"input_draws": figures}  # a value-dependent forward whose counts are not: no range to find
    cut: list[str] = []
    for kind, n, fill, rand_tool in (("rand", draws, _rand, True), ("heap", HEAP_DRAWS, _heap, False)):
        seed = 1
        while seed < n and varies(rand_tool):
            elapsed = time.perf_counter() - started
            made = len(figures) - 1
            if elapsed + elapsed / made > DRAW_SECONDS:
                cut.append(f"{kind}{seed}-{kind}{n - 1}")  # the next draw would not fit: recorded
                break
            draw(f"{kind}{seed}", _rng_seed(kind, seed), fill(seed))
            seed += 1
    out: dict[str, Any] = {"input_draws": figures, "rng_in_forward": rng_used}
    if cut:
        out["draws_not_made"] = cut
    draw_ranges: dict[str, list[int]] = {}
    ranges: dict[str, list[int]] = {}
    values: dict[str, int] = {}
    for metric in counting:
        if metric == "params":
            continue
        seen = own(metric)
        if not seen:  # every draw of its tool's input failed: the first trace's figure stands
            continue
        lo, hi = prediction_interval(seen)
        draw_ranges[metric] = [min(seen), max(seen)]
        ranges[metric] = [max(0, min(min(seen), math.floor(lo))), max(max(seen), math.ceil(hi))]
        values[metric] = int(statistics.median_low(seen))
    out["input_dependent"] = any(lo != hi for lo, hi in draw_ranges.values())
    if out["input_dependent"]:
        out["ranges"] = ranges
        out["draw_ranges"] = draw_ranges
        out["range_coverage"] = COVERAGE
        out.update(values)
    return out
