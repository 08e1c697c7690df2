"""Model specs: how users name a model everywhere (API and every CLI command).

A spec is one of
- a zoo name: ``fmen_s``;
- a file and an attribute: ``path/to/file.py:ClassOrFactory``;
- a module and an attribute: ``package.module:attr``;
with optional JSON keyword arguments (``kwargs``) passed to the class or factory, and an optional weights path.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..base.errors import ModelError, UsageError
from ..base.identity import ModelIdentity, identity_key
from ..base.plugins import import_file


def _parse_kwargs(kwargs: str | dict[str, Any] | None) -> dict[str, Any]:
    """Model kwargs given as a dict or as JSON text (``""``/``None``: none) -> a new dict."""
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs) if kwargs.strip() else {}
        except json.JSONDecodeError as exc:
            raise UsageError(f"model kwargs are not valid JSON ({exc}): {kwargs!r}") from None
        if not isinstance(kwargs, dict):
            raise UsageError(f"model kwargs must be a JSON object, got {kwargs!r}")
    return dict(kwargs or {})


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec. ``target`` is a zoo name or ``location:attr``."""

    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None

    @classmethod
    def parse(
        cls, spec: str, kwargs: str | dict[str, Any] | None = None, weights: str | None = None
    ) -> ModelSpec:
        if not spec or not isinstance(spec, str):
            raise UsageError(f"empty or invalid model spec: {spec!r}")
        return cls(spec, _parse_kwargs(kwargs), weights)

    @property
    def is_zoo(self) -> bool:
        """A zoo name (no ``location:attr``)."""
        return ":" not in self.target

    @property
    def location(self) -> str:
        """The file or module part of ``location:attr`` (empty for a zoo name)."""
        return self.target.rpartition(":")[0]

    @property
    def attr(self) -> str:
        """The attribute part of ``location:attr`` (empty for a zoo name)."""
        return "" if self.is_zoo else self.target.rpartition(":")[2]

    @property
    def is_file(self) -> bool:
        """A ``path/to/file.py:Name`` spec."""
        loc = self.location
        return not self.is_zoo and (loc.endswith(".py") or "/" in loc or "\\" in loc)

    @property
    def is_module(self) -> bool:
        """A ``package.module:Name`` spec."""
        return not self.is_zoo and not self.is_file

    @property
    def file_path(self) -> Path | None:
        """The absolute path of a file spec's file (``None`` for zoo and module specs)."""
        return Path(self.location).expanduser().resolve() if self.is_file else None

    @property
    def resolved_target(self) -> str:
        """The target with a file spec's path made absolute: the same model from any working folder."""
        path = self.file_path
        return self.target if path is None else f"{path}:{self.attr}"

    @property
    def name(self) -> str:
        """A short display name: the zoo name or the attribute name."""
        return self.target if self.is_zoo else self.attr

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
                self.target,
                scale=scale,
                pretrained=pretrained,
                deploy=deploy,
                weights=self.weights,
                **self.kwargs,
            )
        if pretrained:
            raise UsageError(
                f"--pretrained applies to zoo models only; give weights=PATH for {self.target!r}"
            )
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
        location, attr = self.location, self.attr
        if not location or not attr:
            raise UsageError(
                f"model spec {self.target!r} must look like path/to/file.py:Name or package.module:Name"
            )
        path = self.file_path
        if path is not None:
            if not path.is_file():
                raise UsageError(f"model file not found: {path}")
            try:
                module = import_file(path, "effbench_user")
            except UsageError:
                raise
            except Exception as exc:
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


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to measure, with its identity."""

    model: nn.Module
    identity: ModelIdentity

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def data_range(self) -> float:
        return self.identity.data_range


def module_data_range(model: nn.Module) -> float:
    """Input range of a model instance: its ``data_range`` attribute, else its zoo family's, else 255."""
    if hasattr(model, "data_range"):
        return float(model.data_range)
    from .registry import _REGISTRY, _load_zoo

    _load_zoo()
    ranges = {i.data_range for i in _REGISTRY.values() if i.factory.__module__ == type(model).__module__}
    return ranges.pop() if len(ranges) == 1 else 255.0


def _instance_identity(model: nn.Module, scale: int | None, form: str) -> ModelIdentity:
    cls = type(model)
    layout = [
        (n, tuple(t.shape), str(t.dtype)) for n, t in [*model.named_parameters(), *model.named_buffers()]
    ]
    key = identity_key(cls=f"{cls.__module__}.{cls.__qualname__}", layout=layout, scale=scale, form=form)
    return ModelIdentity(
        name=cls.__name__,
        spec=cls.__name__,
        key=key,
        module=cls.__module__,
        scale=scale,
        form=form,
        data_range=module_data_range(model),
    )


def _with_checkpoint_file(spec: ModelSpec, scale: int, pretrained: bool) -> ModelSpec:
    """``spec`` with the checkpoint it loads named by its absolute file, found (and fetched) once: the model is
    then built from the very file whose hash its identity records. A zoo model at a scale it lacks is left to
    :meth:`ModelSpec.build`, which names the scales it has."""
    if spec.is_zoo and (pretrained or spec.weights is not None):
        from .registry import model_info
        from .weights import resolve_checkpoint

        info = model_info(spec.target)
        if scale not in info.scales:
            return spec
        file = resolve_checkpoint(info, scale, spec.weights)[0]
    elif spec.weights is not None:
        file = Path(spec.weights).expanduser()
    else:
        return spec
    return ModelSpec(spec.target, spec.kwargs, str(file.resolve()))


def resolve_model(
    model_or_spec: nn.Module | str | ModelSpec | ResolvedModel,
    *,
    scale: int | None = 4,
    pretrained: bool = False,
    deploy: bool = True,
    weights: str | None = None,
    kwargs: str | dict[str, Any] | None = None,
) -> ResolvedModel:
    """The one way every entry point turns its ``model_or_spec`` argument into a model with its identity.

    An ``nn.Module`` is used as it is (``pretrained``/``weights``/``kwargs`` then make no sense; ``scale=None``
    records that its scale is unknown). A spec string or :class:`ModelSpec` is built in eval mode at ``scale``
    (``None``: 4) with ``kwargs`` (merged over the spec's) and ``weights`` (overriding the spec's). A
    :class:`ResolvedModel` (what a command resolved from its arguments) is passed through with its identity.
    """
    if isinstance(model_or_spec, ResolvedModel):
        if pretrained or weights is not None or kwargs:
            raise UsageError("pretrained/weights/kwargs apply to a model spec, not to a resolved model")
        return model_or_spec
    form = "deploy" if deploy else "train"
    if isinstance(model_or_spec, nn.Module):
        if pretrained or weights is not None or kwargs:
            raise UsageError("pretrained/weights/kwargs apply to a model spec, not to a model instance")
        return ResolvedModel(model_or_spec, _instance_identity(model_or_spec, scale, form))
    if isinstance(model_or_spec, str):
        model_or_spec = ModelSpec.parse(model_or_spec)
    if not isinstance(model_or_spec, ModelSpec):
        raise UsageError(
            "expected an nn.Module or a model spec (zoo name, path/file.py:Name, package.module:Name), "
            f"got {type(model_or_spec).__name__}"
        )
    spec = ModelSpec(
        model_or_spec.target,
        {**model_or_spec.kwargs, **_parse_kwargs(kwargs)},
        model_or_spec.weights if weights is None else weights,
    )
    scale = 4 if scale is None else scale
    spec = _with_checkpoint_file(spec, scale, pretrained)
    model = spec.build(scale=scale, pretrained=pretrained, deploy=deploy)
    from .weights import sha256_of

    wsha = sha256_of(spec.weights) if spec.weights is not None else None
    key = identity_key(spec=spec.resolved_target, kwargs=spec.kwargs, weights=wsha, scale=scale, form=form)
    path = spec.file_path
    identity = ModelIdentity(
        name=spec.name,
        spec=spec.target,
        key=key,
        path=str(path) if path else None,
        module=spec.location if spec.is_module else None,
        kwargs=dict(spec.kwargs),
        weights=spec.weights,
        weights_sha256=wsha,
        scale=scale,
        form=form,
        data_range=spec.data_range(),
    )
    return ResolvedModel(model, identity)


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
    return resolve_model(
        spec, scale=scale, pretrained=pretrained, deploy=deploy, weights=weights, kwargs=kwargs
    ).model
