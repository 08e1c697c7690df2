"""Model specs: how users name a model everywhere (API and every CLI command).

A spec is one of
- a zoo name: ``fmen_s``;
- a file and an attribute: ``path/to/file.py:ClassOrFactory``;
- a module and an attribute: ``package.module:attr``;
with optional JSON keyword arguments (``kwargs``) passed to the class or factory, and an optional weights path.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..base.errors import ModelError, UsageError


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec. ``target`` is a zoo name or ``location:attr``."""

    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None

    @classmethod
    def parse(cls, spec: str, kwargs: str | dict[str, Any] | None = None, weights: str | None = None) -> ModelSpec:
        if not spec or not isinstance(spec, str):
            raise UsageError(f"empty or invalid model spec: {spec!r}")
        if isinstance(kwargs, str):
            try:
                kwargs = json.loads(kwargs) if kwargs.strip() else {}
            except json.JSONDecodeError as exc:
                raise UsageError(f"model kwargs are not valid JSON ({exc}): {kwargs!r}") from None
            if not isinstance(kwargs, dict):
                raise UsageError(f"model kwargs must be a JSON object, got {kwargs!r}")
        return cls(spec, dict(kwargs or {}), weights)

    @property
    def is_zoo(self) -> bool:
        return ":" not in self.target

    @property
    def name(self) -> str:
        """A short display name: the zoo name or the attribute name."""
        return self.target if self.is_zoo else self.target.rsplit(":", 1)[1]

    def data_range(self) -> float:
        """Input data range: the zoo's metadata, a ``data_range`` attribute on user models, else 255."""
        if self.is_zoo:
            from .registry import model_info

            return model_info(self.target).data_range
        attr = self._resolve()
        return float(getattr(attr, "data_range", 255.0))

    def build(self, scale: int = 4, pretrained: bool = False, deploy: bool = True) -> nn.Module:
        """Instantiate the model in eval mode (weights loaded if given)."""
        if self.is_zoo:
            from .registry import create_model

            return create_model(
                self.target, scale=scale, pretrained=pretrained, deploy=deploy, weights=self.weights, **self.kwargs
            )
        if pretrained:
            raise UsageError(f"--pretrained applies to zoo models only; give weights=PATH for {self.target!r}")
        attr = self._resolve()
        kwargs = dict(self.kwargs)
        if isinstance(attr, nn.Module):
            if kwargs:
                raise UsageError(f"{self.target!r} is a module instance; it takes no kwargs")
            model = attr
        else:
            try:
                model = attr(**kwargs)
            except TypeError as exc:
                raise UsageError(f"cannot build {self.target!r} with kwargs {kwargs}: {exc}") from exc
            except Exception as exc:  # the user's constructor failed
                raise ModelError(f"building {self.target!r} failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(model, nn.Module):
            raise ModelError(f"{self.target!r} returned {type(model).__name__}, not a torch.nn.Module")
        if self.weights is not None:
            from .weights import load_checkpoint

            load_checkpoint(model, self.weights)
        return model.eval()

    def _resolve(self) -> Any:
        location, _, attr = self.target.rpartition(":")
        if not location or not attr:
            raise UsageError(f"model spec {self.target!r} must look like path/to/file.py:Name or package.module:Name")
        if location.endswith(".py") or "/" in location or "\\" in location:
            path = Path(location).expanduser().resolve()
            if not path.is_file():
                raise UsageError(f"model file not found: {path}")
            mod_name = f"effbench_user_{abs(hash(str(path)))}"
            module = sys.modules.get(mod_name)
            if module is None:
                spec = importlib.util.spec_from_file_location(mod_name, path)
                if spec is None or spec.loader is None:
                    raise UsageError(f"cannot import {path}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[mod_name] = module
                try:
                    spec.loader.exec_module(module)
                except Exception as exc:
                    del sys.modules[mod_name]
                    raise ModelError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
        else:
            try:
                module = importlib.import_module(location)
            except ImportError as exc:
                raise UsageError(f"cannot import module {location!r}: {exc}") from exc
        try:
            return getattr(module, attr)
        except AttributeError:
            raise UsageError(f"{location!r} has no attribute {attr!r}") from None


def load_model(
    spec: str | ModelSpec,
    scale: int = 4,
    *,
    pretrained: bool = False,
    deploy: bool = True,
    weights: str | None = None,
    kwargs: str | dict[str, Any] | None = None,
) -> nn.Module:
    """Build any model from a spec (zoo name, ``file.py:Name`` or ``package.module:Name``)."""
    if isinstance(spec, str):
        spec = ModelSpec.parse(spec, kwargs=kwargs, weights=weights)
    return spec.build(scale=scale, pretrained=pretrained, deploy=deploy)


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to measure, with the names and input range the harness reports."""

    model: nn.Module
    name: str  # display name: zoo name, attribute name, or the class name of an instance
    spec: str  # the spec string (the class name for an instance)
    data_range: float


def module_data_range(model: nn.Module) -> float:
    """Input range of a model instance: its ``data_range`` attribute, else its zoo family's, else 255."""
    if hasattr(model, "data_range"):
        return float(model.data_range)
    from .registry import _REGISTRY, _load_zoo

    _load_zoo()
    ranges = {i.data_range for i in _REGISTRY.values() if i.factory.__module__ == type(model).__module__}
    return ranges.pop() if len(ranges) == 1 else 255.0


def resolve_model(
    model_or_spec: nn.Module | str | ModelSpec,
    *,
    scale: int = 4,
    pretrained: bool = False,
    deploy: bool = True,
    weights: str | None = None,
) -> ResolvedModel:
    """The one way every measurement turns its ``model_or_spec`` argument into a model.

    An ``nn.Module`` is used as it is (``pretrained``/``weights`` then make no sense); a spec string or
    :class:`ModelSpec` is built at ``scale`` (``weights`` overrides the spec's).
    """
    if isinstance(model_or_spec, nn.Module):
        if pretrained or weights is not None:
            raise UsageError("pretrained/weights apply to a model spec, not to a model instance")
        name = type(model_or_spec).__name__
        return ResolvedModel(model_or_spec, name, name, module_data_range(model_or_spec))
    if isinstance(model_or_spec, str):
        spec = ModelSpec.parse(model_or_spec, weights=weights)
    elif isinstance(model_or_spec, ModelSpec):
        spec = model_or_spec if weights is None else ModelSpec(model_or_spec.target, model_or_spec.kwargs, weights)
    else:
        raise UsageError(
            "expected an nn.Module or a model spec (zoo name, path/file.py:Name, package.module:Name), "
            f"got {type(model_or_spec).__name__}"
        )
    model = spec.build(scale=scale, pretrained=pretrained, deploy=deploy)
    return ResolvedModel(model, spec.name, spec.target, spec.data_range())
