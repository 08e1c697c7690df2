"""Loading and preparing a model as a challenge harness does.

A model whose class overrides ``load_state_dict`` is given the checkpoint's state dict through that override
(``own_load_state_dict``; ``None``: whenever the class overrides it), as ``model.load_state_dict(torch.load(path),
strict=...)`` would (an override may fuse branches before loading); ``load_method="load_weights"`` lets the model
load its checkpoint itself (``model.load_weights(path)``). Then the ``after_load`` calls run in order
(:class:`AfterLoad`: ``model.repa()``, or ``switch_deploy()`` on every submodule that has it), with or without
weights, so a re-parameterised entry is measured in its deploy form.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..base.errors import CheckpointError, UsageError
from .imports import on_path, run_model_code
from .weights import LooseLoad, load_checkpoint, load_checkpoint_loose, read_state_dict

__all__ = ["AfterLoad", "checkpoints_on_cpu", "load_as_harness"]


@dataclass(frozen=True)
class AfterLoad:
    """A method call a harness makes on the model after loading it: ``model.<call>(*args, **kwargs)``, or, with
    ``each_module``, the call on every submodule that has the method (``for m in model.modules(): if hasattr(m,
    call): m.<call>()``)."""

    call: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    each_module: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.call, str) or not self.call.isidentifier():
            raise UsageError(f"after-load call must name a method, got {self.call!r}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"call": self.call}
        if self.args:
            d["args"] = list(self.args)
        if self.kwargs:
            d["kwargs"] = dict(self.kwargs)
        if self.each_module:
            d["each_module"] = True
        return d

    @classmethod
    def from_dict(cls, d: object) -> AfterLoad:
        """From ``{"call": NAME, "args": [...], "kwargs": {...}, "each_module": bool}``; a :class:`UsageError`
        names what is wrong."""
        if isinstance(d, AfterLoad):
            return d
        if not isinstance(d, dict) or "call" not in d:
            raise UsageError(f"an after-load call is a table with a 'call' key, got {d!r}")
        unknown = sorted(set(d) - {"call", "args", "kwargs", "each_module"})
        if unknown:
            raise UsageError(f"after-load call {d!r}: unknown key {', '.join(unknown)}")
        args, kwargs, each = d.get("args", []), d.get("kwargs", {}), d.get("each_module", False)
        if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict) or not isinstance(each, bool):
            raise UsageError(
                f"after-load call {d!r}: args must be an array, kwargs a table, each_module true or false"
            )
        return cls(d["call"], tuple(args), dict(kwargs), each)

    def apply(self, model: nn.Module) -> int:
        """Make the call; returns how many modules it was made on. A method the model lacks is a
        :class:`UsageError` (with ``each_module``: when no submodule has it)."""
        if self.each_module:
            targets = [m for m in model.modules() if callable(getattr(m, self.call, None))]
            if not targets:
                raise UsageError(
                    f"after-load call {self.call}(): no module of {type(model).__name__} has that method"
                )
        elif callable(getattr(model, self.call, None)):
            targets = [model]
        else:
            raise UsageError(f"after-load call {self.call}(): {type(model).__name__} has no such method")
        for m in targets:
            getattr(m, self.call)(*self.args, **self.kwargs)
        return len(targets)


@contextmanager
def checkpoints_on_cpu() -> Iterator[None]:
    """On a host without CUDA, ``torch.load`` in model code maps CUDA-saved tensors to the CPU (a model that loads
    its own checkpoint, as a harness on a GPU host would)."""
    import torch

    if torch.cuda.is_available():
        yield
        return
    load = torch.load

    def on_cpu(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("map_location") is None and len(args) < 2:
            kwargs["map_location"] = "cpu"
        return load(*args, **kwargs)

    torch.load = on_cpu
    try:
        yield
    finally:
        torch.load = load


def load_as_harness(
    model: nn.Module,
    weights: str,
    *,
    weights_key: str | tuple[str, ...] | None,
    strict: bool,
    own_load_state_dict: bool | None,
    load_method: str | None,
    file: Path | None,
    root: Path | None,
) -> LooseLoad | None:
    """Load ``weights`` into ``model`` the way a harness does (see the module doc); returns what a non-strict load
    left out (``None`` for a strict load or one the model made itself). ``file`` and ``root`` are the model
    file and its import root, for the model code's failures."""
    if load_method is not None:
        method = getattr(model, load_method, None)
        if not callable(method):
            raise UsageError(f"load_method {load_method!r}: {type(model).__name__} has no such method")
        with checkpoints_on_cpu():
            run_model_code(
                f"{type(model).__name__}.{load_method}({weights!r})", lambda: method(weights), file, root
            )
        return None
    own = own_load_state_dict
    if own is None:
        own = type(model).load_state_dict is not nn.Module.load_state_dict
    if not own:
        if strict:
            load_checkpoint(model, weights, entry=weights_key)
            return None
        return load_checkpoint_loose(model, weights, weights_key)
    sd = read_state_dict(weights, weights_key)
    try:
        with on_path(root):
            result = model.load_state_dict(sd, strict=strict)
    except Exception as exc:
        raise CheckpointError(
            f"loading checkpoint {Path(weights).name} ({weights}) through {type(model).__name__}'s own "
            f"load_state_dict failed: {type(exc).__name__}: {exc}"
        ) from exc
    if strict:
        return None
    missing = tuple(getattr(result, "missing_keys", ()) or ())
    return LooseLoad(missing, tuple(getattr(result, "unexpected_keys", ()) or ()))
