"""effbench: measure how efficient image super-resolution models really are.

The pipeline: a model (:func:`create_model`; :func:`resolve_model` for any spec, with its :class:`ModelIdentity`)
-> static counting (:func:`profile`), memory prediction (:func:`predict_memory`), timing (:func:`benchmark`), quality
(:func:`evaluate`, :func:`imresize`), frequency analysis (:func:`psd`) -> results -> reports.
Public names are imported lazily so that ``import effbench`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "create_model": "effbench.zoo.registry",
    "list_models": "effbench.zoo.registry",
    "model_info": "effbench.zoo.registry",
    "register_model": "effbench.zoo.registry",
    "PretrainedCfg": "effbench.zoo.registry",
    "reparameterize": "effbench.zoo.reparam",
    "load_model": "effbench.zoo.spec",
    "ModelSpec": "effbench.zoo.spec",
    "ModelIdentity": "effbench.base.identity",
    "resolve_model": "effbench.zoo.spec",
    "display_names": "effbench.base.identity",
    "profile": "effbench.counting",
    "predict_memory": "effbench.memory",
    "plan_memory": "effbench.memory",
    "benchmark": "effbench.timing",
    "imresize": "effbench.quality",
    "psnr": "effbench.quality",
    "ssim": "effbench.quality",
    "evaluate": "effbench.quality",
    "psd": "effbench.frequency",
    "EffbenchError": "effbench.base.errors",
    "UsageError": "effbench.base.errors",
    "ModelError": "effbench.base.errors",
    "CheckpointError": "effbench.base.errors",
    "UnknownModelError": "effbench.base.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'effbench' has no attribute {name!r}")
