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
import linecache
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

if TYPE_CHECKING:
    from ..base.modules import ModuleStack
    from ..zoo.spec import ModelSpec, ResolvedModel

__all__ = [
    "FirstForward",
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


class UnavailableCode:
    """While active, records what the entry's own code (files under ``root``) tried to import or compile and
    could not: an ``import`` that raised ``ImportError`` and a ``torch.utils.cpp_extension.load``/``load_inline``
    that failed. When the build still succeeds, the entry went on without them, on another code path than the
    organisers' machine ran (a C++/CUDA extension's Python fallback)."""

    def __init__(self, root: str | None) -> None:
        self.root = root
        self._failed: list[dict[str, str]] = []
        self._imported: set[str] = set()  # last components of the modules imported after all
        self._patched: list[tuple[Any, str, Any]] = []

    @property
    def failed(self) -> list[dict[str, str]]:
        """The failures the code did not make good: an import retried another way (``from .x`` then ``from
        x``) that then worked is not one."""
        return [f for f in self._failed if f["name"].rsplit(".", 1)[-1] not in self._imported]

    def _ours(self, globals_: Any) -> bool:
        f = str((globals_ or {}).get("__file__") or "")
        return bool(f) and (self.root is None or f.startswith(self.root))

    def _wrap_extension_loaders(self) -> None:
        mod = sys.modules.get("torch.utils.cpp_extension")
        if mod is None or any(m is mod for m, _, _ in self._patched):
            return
        for attr in ("load", "load_inline"):
            original = getattr(mod, attr)

            def loader(*args: Any, _original: Any = original, _attr: str = attr, **kwargs: Any) -> Any:
                try:
                    return _original(*args, **kwargs)
                except Exception as exc:
                    name = kwargs.get("name", args[0] if args else "?")
                    self._failed.append(
                        {
                            "name": str(name),
                            "how": f"torch.utils.cpp_extension.{_attr}",
                            "error": str(exc)[:300],
                        }
                    )
                    raise

            self._patched.append((mod, attr, original))
            setattr(mod, attr, loader)

    def __enter__(self) -> UnavailableCode:
        import builtins

        original = builtins.__import__

        def importer(name: str, globals_: Any = None, *args: Any, **kwargs: Any) -> Any:
            try:
                module = original(name, globals_, *args, **kwargs)
            except ImportError as exc:
                if self._ours(globals_):
                    self._failed.append({"name": name, "how": "import", "error": str(exc)[:300]})
                raise
            if name:
                self._imported.add(name.rsplit(".", 1)[-1])
            self._wrap_extension_loaders()
            return module

        self._patched.append((builtins, "__import__", original))
        builtins.__import__ = importer
        self._wrap_extension_loaders()
        return self

    def __exit__(self, *exc: Any) -> None:
        for mod, attr, original in reversed(self._patched):
            setattr(mod, attr, original)
        self._patched.clear()


@dataclass
class HarnessBuild:
    """An entry built as ``select_model()`` builds it, with the memory its construction allocated."""

    resolved: ResolvedModel  #: the entry and its identity
    construction_peak_bytes: int  #: the peak of live tensors while building (constructor forwards included)
    construction_on_device: bool  #: the constructor asked for CUDA: its peak is in ``max_memory_allocated``
    construction_peak_op: str = ""
    #: CUDA-only packages the entry imported that effbench's CPU stand-ins replaced (:mod:`effbench.base.stand_ins`)
    stand_ins: tuple[str, ...] = ()
    #: imports and extension builds of the entry's own code that failed and that it went on without
    unavailable: tuple[dict[str, str], ...] = ()


def build_as_harness(spec: ModelSpec, scale: int) -> HarnessBuild:
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

    root = spec.root_path or (spec.file_path.parent if spec.file_path is not None else None)
    with (
        cuda_package_stand_ins() as stood_in,
        UnavailableCode(None if root is None else str(root)) as missing,
    ):
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            resolved = resolve_model(spec, scale=scale)
            peak = torch.cuda.max_memory_allocated() - before
            on_device, live_op = peak > 0, ""
        else:
            with LivePeak() as live:
                resolved = resolve_model(spec, scale=scale)
            peak, live_op = live.peak_bytes, live.peak_op
            on_device = bool(cuda_redirects(resolved.model))
    return HarnessBuild(resolved, int(peak), on_device, live_op, tuple(stood_in), tuple(missing.failed))


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


@dataclass
class FirstForward:
    """What the harness's first forward did, replayed for real (:func:`run_first_forward`)."""

    changed: bool = False  #: the model's layout changed (branches fused or deleted)
    as_built: nn.Module | None = None  #: a copy of the model before it, when it changed
    error: str = ""  #: why no size ran (each size's error)
    exception: BaseException | None = None  #: the last size's exception
    opaque_ops: list[dict[str, Any]] = field(default_factory=list)  #: outputs written outside the dispatcher


_EMPTY_OPS = frozenset(
    f"aten.{n}"
    for n in (
        "empty.memory_format",
        "empty_like.default",
        "new_empty.default",
        "empty_strided.default",
        "new_empty_strided.default",
    )
)


class _OpaqueWrites(TorchDispatchMode):
    """Finds tensors made empty (``torch.empty``/``empty_like``/``new_empty``) that an op then reads although no
    op wrote them: something outside the dispatcher (a C++/CUDA extension's kernel, a NumPy view) filled them,
    and no trace sees what it computed. Names the calls into compiled code that ran between (``sys.setprofile``
    ``c_call`` events of functions from outside torch and the standard library)."""

    def __init__(self, modules: ModuleStack) -> None:
        super().__init__()
        self.modules = modules
        # storage key -> (weak ref, op, module, op index, model code line)
        self.unwritten: dict[int, tuple[Any, str, str, int, tuple[str, int] | None]] = {}
        self.found: list[dict[str, Any]] = []
        self.calls: list[tuple[int, str]] = []  # (op index, qualified name) of calls into compiled code
        self.index = 0

    def profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "c_call":
            return
        module = getattr(arg, "__module__", None) or ""
        top = module.split(".")[0]
        if top and top not in ("torch", "builtins") and top not in sys.stdlib_module_names:
            self.calls.append(
                (self.index, f"{module}.{getattr(arg, '__qualname__', getattr(arg, '__name__', '?'))}")
            )

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        from torch.multiprocessing.reductions import StorageWeakRef
        from torch.utils._pytree import tree_leaves

        kwargs = kwargs or {}
        self.index += 1
        out = func(*args, **kwargs)
        outs = {t.untyped_storage()._cdata for t in tree_leaves(out) if isinstance(t, torch.Tensor)}
        for t in tree_leaves((args, kwargs)):
            if not isinstance(t, torch.Tensor):
                continue
            key = t.untyped_storage()._cdata
            rec = self.unwritten.get(key)
            if rec is None or rec[0].expired():
                continue
            if key in outs:
                if func._schema.is_mutable:  # written in place or as out=: a traced write
                    del self.unwritten[key]
                continue  # a view of it: still unwritten
            del self.unwritten[key]
            made_at, made_where = rec[3], rec[4]
            read_where = _model_code_line()
            names = sorted({n for i, n in self.calls if made_at <= i <= self.index})
            between = _lines_between(made_where, read_where)
            self.found.append(
                {
                    "made_by": rec[1],
                    "module": rec[2],
                    "made_at": _where(made_where),
                    "read_by": str(func),
                    "read_at": _where(read_where),
                    "written_by": names or between or ["a call outside the dispatcher"],
                }
            )
        if str(func) in _EMPTY_OPS:
            where = _model_code_line()
            for t in tree_leaves(out):
                if isinstance(t, torch.Tensor):
                    st = t.untyped_storage()
                    self.unwritten[st._cdata] = (
                        StorageWeakRef(st),
                        str(func),
                        self.modules.current,
                        self.index,
                        where,
                    )
        return out


_OWN_CODE = (str(Path(torch.__file__).parent), str(Path(__file__).resolve().parents[1]))


def _model_code_line() -> tuple[str, int] | None:
    """(file, line) of the innermost caller outside torch and effbench: the model code running now."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith(_OWN_CODE) and not name.startswith("<"):
            return name, frame.f_lineno
        frame = frame.f_back
    return None


def _where(at: tuple[str, int] | None) -> str:
    return "" if at is None else f"{at[0]}:{at[1]}"


def _lines_between(made: tuple[str, int] | None, read: tuple[str, int] | None) -> list[str]:
    """The source lines after the one that made the empty tensor, up to the one that read it (same file): where
    the opaque call that filled it is."""
    if made is None or read is None or made[0] != read[0] or read[1] <= made[1]:
        return []
    lines = (linecache.getline(made[0], n).strip() for n in range(made[1] + 1, read[1]))
    return [line for line in lines if line and not line.startswith("#")][:3]


def _model_state(model: nn.Module) -> tuple[Any, ...]:
    """The layout and every plain scalar attribute of every module (a flag a forward sets says it changed)."""
    scalars = tuple(
        (name, key, value)
        for name, m in model.named_modules()
        for key, value in sorted(vars(m).items())
        if isinstance(value, (bool, int, float, str)) and not key.startswith("_")
    )
    return model_layout(model), scalars


def _meta_probe(model: nn.Module, harness: Harness, size: tuple[int, int]) -> bool | None:
    """Whether the first forward changes the model, found on a meta-device copy (no arithmetic): ``False`` when
    it ran and changed nothing, ``True`` when it changed something, ``None`` when it could not run there (values
    needed, tensors of its own, a compiled call): only then does the real forward have to tell."""
    from ..base.model_code import replace_tensor_attributes, running_model_code

    try:
        probe = copy.deepcopy(model).to("meta")
        replace_tensor_attributes(probe, lambda t: t.to("meta"))
        before = _model_state(probe)
        x = torch.empty((1, 3, *size), device="meta")
        with running_model_code(probe), torch.set_grad_enabled(harness.forward_grad):
            probe(x)
        return _model_state(probe) != before
    except Exception:
        return None


def run_first_forward(
    model: nn.Module, harness: Harness, sizes: Sequence[tuple[int, int]], data_range: float = 1.0
) -> FirstForward:
    """Run the harness's first validation forward on ``model`` for real, on the CPU, as the harness runs it
    (autograd as it has it, a random image in ``data_range``), at the first of ``sizes`` it accepts, and keep
    what the forward does to the model: whether its layout changed (with a copy of the model as built, for the
    figures beside) and the outputs written outside the dispatcher (:class:`_OpaqueWrites`). A model whose
    forward runs on a meta-device copy and changes nothing there (:func:`_meta_probe`) is not run for real."""
    from ..base.model_code import running_model_code
    from ..base.modules import ModuleStack

    if _meta_probe(model, harness, tuple(sizes[0])) is False:
        return FirstForward()  # it ran on meta tensors and changed nothing: the real one would not either
    before = model_layout(model)
    try:
        snapshot = copy.deepcopy(model)
    except Exception:  # a model that cannot be copied: its as-built form is not kept
        snapshot = None
    errors = []
    result = FirstForward()
    gen = torch.Generator().manual_seed(0)
    for h, w in sizes:
        x = torch.rand((1, 3, h, w), generator=gen) * data_range
        modules = ModuleStack(model)
        watch = _OpaqueWrites(modules)
        previous = sys.getprofile()
        try:
            with running_model_code(model), torch.set_grad_enabled(harness.forward_grad), modules, watch:
                sys.setprofile(watch.profile)
                try:
                    # a forward that samples (Gumbel routing) does the same every run, the caller's RNG untouched
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(0)
                        model(x)
                finally:
                    sys.setprofile(previous)
        except Exception as exc:
            errors.append(f"{h}x{w}: {type(exc).__name__}: {exc}")
            result.exception = exc
            continue
        result.changed = model_layout(model) != before
        result.as_built = snapshot if result.changed else None
        result.opaque_ops = watch.found
        result.exception = None
        return result
    result.error = "; ".join(errors)
    return result
