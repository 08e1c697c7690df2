"""The model zoo: the registry, model specs resolved with their identities, checkpoints, re-parameterisation."""

from __future__ import annotations

from .registry import create_model, list_models, model_info, register_model
from .spec import ModelSpec, load_model, resolve_model

__all__ = [
    "ModelSpec",
    "create_model",
    "list_models",
    "load_model",
    "model_info",
    "register_model",
    "resolve_model",
]
