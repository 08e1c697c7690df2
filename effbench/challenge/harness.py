"""What a year's harness (the organisers' ``test_demo.py``) does to an entry, modelled on a CPU host.

The published figures are not those of one clean inference forward; they are what the harness records:

- **construction**: ``select_model()`` builds the entry; a constructor that moves itself to CUDA and runs forwards
  (``self.cuda()(torch.randn(1, 3, 256, 256).cuda())``, warm-up loops) does so with autograd on, and
  ``max_memory_allocated`` is never reset, so that peak is in the published memory;
- **freezing**: ``model.eval()``, ``requires_grad = False`` on every named parameter, ``model.to(device)``;
- **the validation run**: ``model(img_lr)`` per image *without* ``torch.no_grad()`` (harmless once the parameters
  are frozen, unless the model makes tensors that require grad), fp32 inputs in the entry's data range, CUDA
  autocast or ``half()`` inside ``forward`` as the model has them; ``max_memory_allocated`` after the set;
- **the counts**, taken *after* the validation (and test) run: an entry that changes itself on its first forward
  (fuses or deletes its training branches) is counted in its changed form; FLOPs by fvcore on ``torch.rand(1, 3,
  256, 256)`` (2024 onwards), #Acts and #Conv (and FLOPs in 2022-2023) by the hook tool on an uninitialised
  ``torch.FloatTensor(1, 3, 256, 256)``; an entry whose counts depend on the input's values is counted on
  several draws (:mod:`effbench.challenge.counts`).

Every year from 2022 to 2026 runs this same sequence (``test_demo.py`` ``select_model()``, ``run()``, ``main()``;
2024 wraps one entry's forward in ``no_grad``, which changes nothing for frozen parameters).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "Harness",
    "HarnessBuild",
    "build_as_harness",
    "freeze_as_harness",
    "harness_of",
    "model_layout",
    "run_first_forward",
]


@dataclass(frozen=True)
class Harness:
    """The parts of one year's ``test_demo.py`` that change what it records (see the module docstring)."""

    year: int
    source: str
    freezes_parameters: bool = True  #: select_model(): ``v.requires_grad = False`` for every named parameter
    forward_grad: bool = True  #: run(): ``model(img_lr)`` outside ``torch.no_grad()``
    counts_after_run: bool = True  #: main(): the counting tools run after the validation (and test) run
    fvcore_input: str = "torch.rand"  #: the FLOPs tool's input (2024+)
    hook_input: str = "torch.FloatTensor (uninitialised)"  #: the hook tool's input
    #: the sizes effbench replays the harness's first forward at, the first one the model accepts (a real CPU
    #: forward: small, as only what it does to the model matters; fp16 convolutions are slow on a CPU)
    first_forward_sizes: tuple[tuple[int, int], ...] = ((16, 16), (64, 64))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["first_forward_sizes"] = [list(hw) for hw in self.first_forward_sizes]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Harness:
        d = dict(d)
        if "first_forward_sizes" in d:
            d["first_forward_sizes"] = tuple(tuple(hw) for hw in d["first_forward_sizes"])
        return cls(**d)


_SOURCES = {
    2022: "https://github.com/ofsoundof/NTIRE2022_ESR test_demo.py select_model(), run(), main()",
    2023: "https://github.com/ofsoundof/NTIRE2023_ESR test_demo.py select_model(), run(), main()",
    2024: "https://github.com/Amazingren/NTIRE2024_ESR test_demo.py select_model(), run(), main()",
    2025: "https://github.com/Amazingren/NTIRE2025_ESR test_demo.py select_model(), run(), main()",
    2026: "https://github.com/Amazingren/NTIRE2026_ESR test_demo.py select_model(), run(), main()",
}


def harness_of(year: int) -> Harness:
    """The harness of ``year`` (every year with rules: :func:`effbench.challenge.years.year_rules`)."""
    from .years import year_rules

    rules = year_rules(year)  # a UsageError naming the valid years
    return Harness(rules.year, _SOURCES.get(rules.year, "test_demo.py select_model(), run(), main()"))


@dataclass
class HarnessBuild:
    """An entry built as ``select_model()`` builds it, with the memory its construction allocated."""

    resolved: Any  #: the :class:`~effbench.zoo.spec.ResolvedModel`
    construction_peak_bytes: int  #: the peak of live tensors while building (constructor forwards included)
    construction_on_device: bool  #: the constructor asked for CUDA: its peak is in ``max_memory_allocated``
    construction_peak_op: str = ""
    #: CUDA-only packages the entry imported that effbench's CPU stand-ins replaced (:mod:`effbench.base.stand_ins`)
    stand_ins: tuple[str, ...] = ()


def build_as_harness(spec: Any, scale: int) -> HarnessBuild:
    """Build ``spec`` (a :class:`~effbench.zoo.spec.ModelSpec`) under :class:`~effbench.memory.lifetime.LivePeak`.

    On a host without CUDA the constructor's ``.cuda()`` calls stay on the CPU
    (:func:`~effbench.base.model_code.running_model_code`); when it made any, what it allocated is what the
    harness's GPU would have held (the parameters it moved and the forwards it ran). On a CUDA host the
    construction is measured there (``max_memory_allocated`` around the build). CUDA-only packages the host
    cannot import (``mamba_ssm``, ``causal_conv1d``) are CPU stand-ins while the entry is built."""
    from ..base.model_code import cuda_redirects
    from ..base.stand_ins import cuda_package_stand_ins
    from ..memory.lifetime import LivePeak
    from ..zoo.spec import resolve_model

    with cuda_package_stand_ins() as stood_in:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            resolved = resolve_model(spec, scale=scale)
            peak = torch.cuda.max_memory_allocated() - before
            return HarnessBuild(resolved, int(peak), peak > 0, stand_ins=tuple(stood_in))
        with LivePeak() as live:
            resolved = resolve_model(spec, scale=scale)
    on_device = bool(cuda_redirects(resolved.model))
    return HarnessBuild(resolved, int(live.peak_bytes), on_device, live.peak_op, tuple(stood_in))


def freeze_as_harness(model: nn.Module, harness: Harness) -> None:
    """``model.eval()`` and, as the year's ``select_model()`` ends, no parameter requiring grad."""
    model.eval()
    if harness.freezes_parameters:
        for _, p in model.named_parameters():
            p.requires_grad = False


def model_layout(model: nn.Module) -> tuple[Any, ...]:
    """What a forward that changes the model changes: its parameters, buffers and modules (names, shapes,
    dtypes, types)."""
    tensors = tuple(
        (n, tuple(t.shape), str(t.dtype)) for n, t in [*model.named_parameters(), *model.named_buffers()]
    )
    return tensors, tuple((n, type(m).__name__) for n, m in model.named_modules())


def run_first_forward(
    model: nn.Module, harness: Harness, sizes: Sequence[tuple[int, int]], data_range: float = 1.0
) -> tuple[bool, nn.Module | None, str]:
    """Run the harness's first validation forward on ``model`` for real, on the CPU, as the harness runs it
    (autograd as it has it, a random image in ``data_range``), at the first of ``sizes`` it accepts, and keep
    what the forward does to the model. Returns ``(changed, as_built, error)``: whether the model's layout
    changed, a copy of the model as built when it did (for the figures beside), and why no size ran."""
    from ..base.model_code import running_model_code

    before = model_layout(model)
    try:
        snapshot = copy.deepcopy(model)
    except Exception:  # a model that cannot be copied: its as-built form is not kept
        snapshot = None
    errors = []
    gen = torch.Generator().manual_seed(0)
    for h, w in sizes:
        x = torch.rand((1, 3, h, w), generator=gen) * data_range
        try:
            with running_model_code(model), torch.set_grad_enabled(harness.forward_grad):
                model(x)
        except Exception as exc:
            errors.append(f"{h}x{w}: {type(exc).__name__}: {exc}")
            continue
        changed = model_layout(model) != before
        return changed, (snapshot if changed else None), ""
    return False, None, "; ".join(errors)
