"""The model zoo: the registry, model specs and their identities, checkpoints and re-parameterisation."""

from __future__ import annotations

from ..base.identity import ModelIdentity, display_names
from .registry import create_model, list_models, model_info, register_model
from .spec import ModelSpec, load_model, resolve_model

__all__ = [
    "ModelIdentity",
    "ModelSpec",
    "create_model",
    "display_names",
    "list_models",
    "load_model",
    "model_info",
    "register_model",
    "resolve_model",
]
