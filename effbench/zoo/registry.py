"""The model zoo registry, in the spirit of timm: entry points registered by decorator, one ``create_model``.

Each architecture file in ``effbench/zoo/models/`` registers its factories with
:func:`register_model`, together with a :class:`ModelInfo` (scales, input data range, paper reference and the
official checkpoints per scale).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..base.errors import UnknownModelError, UsageError
from .info import ModelInfo, PretrainedCfg

if TYPE_CHECKING:
    from torch import nn


_REGISTRY: dict[str, ModelInfo] = {}


def _first_line(doc: str | None) -> str:
    lines = (doc or "").strip().splitlines()
    return lines[0] if lines else ""


def _where(fn: Callable[..., Any]) -> tuple[str, str]:
    return getattr(fn, "__module__", ""), getattr(fn, "__qualname__", "")


def register_model(
    name: str,
    *,
    scales: tuple[int, ...],
    data_range: float,
    paper: str,
    description: str = "",
    pretrained: dict[int, PretrainedCfg | tuple[PretrainedCfg, ...]] | None = None,
    has_deploy_form: bool = False,
    reference: bool = False,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a factory ``fn(scale=..., deploy=..., **overrides) -> nn.Module`` under ``name``."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        known = _REGISTRY.get(name)
        same = known is not None and (known.factory is fn or _where(known.factory) == _where(fn))
        if (
            known is not None and not same
        ):  # the same definition imported again (a reloaded module) is no clash
            raise ValueError(f"model {name!r} registered twice")
        ckpts = {s: (c,) if isinstance(c, PretrainedCfg) else tuple(c) for s, c in (pretrained or {}).items()}
        _REGISTRY[name] = ModelInfo(
            name=name,
            factory=fn,
            scales=tuple(scales),
            data_range=float(data_range),
            paper=paper,
            description=description or _first_line(fn.__doc__),
            pretrained=ckpts,
            has_deploy_form=has_deploy_form,
            reference=reference,
        )
        return fn

    return wrap


def _load_zoo() -> None:
    """Import the zoo's model files and the plugins (each registers its factories on import)."""
    import importlib

    from ..base.plugins import load_plugins

    importlib.import_module("effbench.zoo.models")
    load_plugins()


def any_registered() -> bool:
    """Whether this process has registered a model yet (the zoo loaded, or a factory registered directly); reads
    nothing and imports nothing."""
    return bool(_REGISTRY)


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    _load_zoo()
    return sorted(_REGISTRY)


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a zoo model; raises :class:`UnknownModelError` naming the closest names."""
    _load_zoo()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint}. Known models: {', '.join(sorted(_REGISTRY))}"
        ) from None


def create_model(
    name: str,
    scale: int = 4,
    pretrained: bool = False,
    deploy: bool = True,
    weights: str | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build a zoo model by name and scale.

    ``deploy=False`` gives the train-time form of re-parameterisable models (FMEN family); other models ignore
    it. ``pretrained=True`` loads the official checkpoint from the weights cache (or downloads it and checks its
    SHA-256); ``weights=PATH`` loads any checkpoint file. The model is returned in eval mode.
    """
    info = model_info(name)
    if scale not in info.scales:
        raise UsageError(
            f"model {name!r} has no scale x{scale}; available: {', '.join(f'x{s}' for s in info.scales)}"
        )
    model = info.factory(scale=scale, deploy=deploy, **overrides)
    if pretrained or weights is not None:
        from .weights import load_pretrained

        load_pretrained(model, info, scale=scale, path=weights, deploy=deploy)
    return model.eval()
