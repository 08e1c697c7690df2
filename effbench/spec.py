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

from .errors import ModelError, UsageError


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
