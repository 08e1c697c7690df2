"""The model zoo: the registry, model specs resolved with their identities, checkpoints, re-parameterisation.

Importing the package loads the registry alone (no torch); the model specs load on first use.
"""

from __future__ import annotations

from typing import Any

from .registry import create_model, list_models, model_info, register_model

__all__ = [
    "ModelSpec",
    "create_model",
    "list_models",
    "load_model",
    "model_info",
    "register_model",
    "resolve_model",
]

_FROM_SPEC = ("ModelSpec", "load_model", "resolve_model")


def __getattr__(name: str) -> Any:
    if name in _FROM_SPEC:
        from . import spec

        return getattr(spec, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
