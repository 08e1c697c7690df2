"""Model specs: how users name a model everywhere (API and every CLI command).

A spec is one of
- a zoo name: ``fmen_s``;
- a file and an attribute: ``path/to/file.py:ClassOrFactory``;
- a module and an attribute: ``package.module:attr``;
with optional positional (``args``) and JSON keyword arguments (``kwargs``) passed to the class or factory, and an
optional weights path (``weights_key``: the checkpoint entry holding the state dict, or several of which the first
the file has; ``strict=False``: load like a harness's ``load_state_dict(sd, strict=False)``, the keys left out kept
in :attr:`ResolvedModel.loose_load`).

Loading as a harness does it (``own_load_state_dict``, ``load_method``, ``after_load``) is
:mod:`effbench.zoo.loading`; ``root``, the import root a file spec is imported under, is
:mod:`effbench.zoo.imports`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from ..base.errors import ModelError, UsageError
from ..base.identity import ModelIdentity, identity_key
from ..base.model_code import running_model_code
from ..base.thirdparty import model_import_compat
from .imports import import_attribute, model_code_failure, on_path, run_model_code
from .loading import AfterLoad, load_as_harness

if TYPE_CHECKING:
    from .weights import LooseLoad

__all__ = ["AfterLoad", "ModelSpec", "ResolvedModel", "load_model", "module_data_range", "resolve_model"]


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


def _weights_key(value: Any) -> str | tuple[str, ...] | None:
    """A checkpoint entry name, or a non-empty sequence of them (tuple); anything else is a :class:`UsageError`."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise UsageError(f"weights_key must be a string or a list of strings, got {value!r}")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec. ``target`` is a zoo name or ``location:attr``; ``data_range`` (when given) overrides
    the input range the model declares; ``own_load_state_dict``, ``load_method`` and ``after_load`` load and
    prepare the model as a harness does (:mod:`effbench.zoo.loading`)."""

    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    args: tuple[Any, ...] = ()
    root: str | None = None
    weights_key: str | tuple[str, ...] | None = None
    strict: bool = True
    data_range: float | None = None
    own_load_state_dict: bool | None = None
    load_method: str | None = None
    after_load: tuple[AfterLoad, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights_key", _weights_key(self.weights_key))
        object.__setattr__(self, "after_load", tuple(AfterLoad.from_dict(a) for a in self.after_load))
        if self.load_method is not None and not (
            isinstance(self.load_method, str) and self.load_method.isidentifier()
        ):
            raise UsageError(f"load_method must name a method of the model, got {self.load_method!r}")

    @classmethod
    def parse(
        cls, spec: str, kwargs: str | dict[str, Any] | None = None, weights: str | None = None
    ) -> ModelSpec:
        if not spec or not isinstance(spec, str):
            raise UsageError(f"empty or invalid model spec: {spec!r}")
        return cls(spec, _parse_kwargs(kwargs), weights)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (a sweep cell's spec); args and kwargs must themselves be JSON values."""
        return {
            "target": self.target,
            "kwargs": dict(self.kwargs),
            "weights": self.weights,
            "args": list(self.args),
            "root": self.root,
            "weights_key": list(self.weights_key)
            if isinstance(self.weights_key, tuple)
            else self.weights_key,
            "strict": self.strict,
            "data_range": self.data_range,
            "own_load_state_dict": self.own_load_state_dict,
            "load_method": self.load_method,
            "after_load": [a.to_dict() for a in self.after_load],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict` (missing keys take their defaults; unknown keys are a :class:`UsageError`)."""
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise UsageError(f"unknown model spec keys {unknown} in {d!r}")
        target = d.get("target")
        if not isinstance(target, str) or not target:
            raise UsageError(f"model spec has no target: {d!r}")
        data_range = d.get("data_range")
        return cls(
            target,
            _parse_kwargs(d.get("kwargs")),
            d.get("weights"),
            tuple(d.get("args") or ()),
            d.get("root"),
            d.get("weights_key"),
            bool(d.get("strict", True)),
            None if data_range is None else float(data_range),
            d.get("own_load_state_dict"),
            d.get("load_method"),
            tuple(d.get("after_load") or ()),
        )

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
    def root_path(self) -> Path | None:
        """The import root, absolute (``None``: none)."""
        return Path(self.root).expanduser().resolve() if self.root is not None else None

    @property
    def module_name(self) -> str | None:
        """The dotted name a file spec's file is imported under: relative to the import root when it lies there
        and every part is an identifier (``models/team00_RLFN.py`` -> ``models.team00_RLFN``), else ``None``."""
        path, root = self.file_path, self.root_path
        if path is None or root is None or not path.is_relative_to(root):
            return None
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts) if parts and all(p.isidentifier() for p in parts) else None

    @property
    def resolved_target(self) -> str:
        """The target with a file spec's path made absolute: the same model from any working folder."""
        path = self.file_path
        return self.target if path is None else f"{path}:{self.attr}"

    @property
    def name(self) -> str:
        """A short display name: the zoo name or the attribute name."""
        return self.target if self.is_zoo else self.attr

    def key_parts(self) -> dict[str, Any]:
        """What, beyond target, kwargs and weights, makes this spec another model (only what differs from the
        defaults, so older specs keep their identity keys)."""
        parts: dict[str, Any] = {}
        if self.args:
            parts["args"] = list(self.args)
        if self.root is not None:
            parts["root"] = str(self.root_path)
        if self.weights_key is not None:
            wk = self.weights_key
            parts["weights_key"] = list(wk) if isinstance(wk, tuple) else wk
        if not self.strict:
            parts["strict"] = False
        if self.own_load_state_dict is not None:
            parts["own_load_state_dict"] = self.own_load_state_dict
        if self.load_method is not None:
            parts["load_method"] = self.load_method
        if self.after_load:
            parts["after_load"] = [a.to_dict() for a in self.after_load]
        return parts

    def input_range(self) -> float:
        """Input data range: the spec's ``data_range``, else the zoo's metadata, else a ``data_range`` attribute
        on user models, else 255."""
        if self.data_range is not None:
            return float(self.data_range)
        if self.is_zoo:
            from .registry import model_info

            return model_info(self.target).data_range
        attr = self._resolve()
        return float(getattr(attr, "data_range", 255.0))

    def build(self, scale: int = 4, pretrained: bool = False, deploy: bool = True) -> nn.Module:
        """Instantiate the model in eval mode (weights loaded if given)."""
        return self.build_checked(scale, pretrained, deploy)[0]

    def build_checked(
        self, scale: int = 4, pretrained: bool = False, deploy: bool = True
    ) -> tuple[nn.Module, LooseLoad | None]:
        """:meth:`build`, with what a non-strict weights load left out (``None`` for a strict load or none).

        Import, constructor and checkpoint load run under :func:`~effbench.base.model_code.running_model_code`:
        their prints go to stderr and, without CUDA, their ``.cuda()`` calls stay on the CPU (recorded); and under
        :func:`~effbench.base.thirdparty.model_import_compat` (torchvision beside a CPU torch, basicsr)."""
        with running_model_code() as guard, model_import_compat():
            built = self._build_checked(scale, pretrained, deploy)
            guard.attach(built[0])
        return built

    def _build_checked(
        self, scale: int, pretrained: bool, deploy: bool
    ) -> tuple[nn.Module, LooseLoad | None]:
        if self.is_zoo:
            harness = (self.own_load_state_dict, self.load_method, self.after_load)
            if self.args or self.weights_key is not None or not self.strict or any(harness):
                raise UsageError(
                    f"zoo model {self.target!r} takes no args, weights_key, strict=False, own_load_state_dict, "
                    "load_method or after_load"
                )
            from .registry import create_model

            model = create_model(
                self.target,
                scale=scale,
                pretrained=pretrained,
                deploy=deploy,
                weights=self.weights,
                **self.kwargs,
            )
            return model, None
        if pretrained:
            raise UsageError(
                f"--pretrained applies to zoo models only; give weights=PATH for {self.target!r}"
            )
        model = self._construct()
        loose = self._load(model) if self.weights is not None else None
        for call in self.after_load:
            what = f"the after-load call {call.call}()"
            run_model_code(what, lambda c=call: c.apply(model), self.file_path, self.root_path)
        return model.eval(), loose

    def _load(self, model: nn.Module) -> LooseLoad | None:
        """Load :attr:`weights` into ``model`` the way the spec says (:func:`~effbench.zoo.loading.load_as_harness`)."""
        return load_as_harness(
            model,
            str(self.weights),
            weights_key=self.weights_key,
            strict=self.strict,
            own_load_state_dict=self.own_load_state_dict,
            load_method=self.load_method,
            file=self.file_path,
            root=self.root_path,
        )

    def _construct(self) -> nn.Module:
        root = self.root_path
        with on_path(root):
            attr = self._resolve()
            kwargs = dict(self.kwargs)
            if isinstance(attr, nn.Module):
                if kwargs or self.args:
                    raise UsageError(f"{self.target!r} is a module instance; it takes no kwargs or args")
                model = attr
            else:
                given = f"args {self.args} and kwargs {kwargs}" if self.args else f"kwargs {kwargs}"
                try:
                    model = attr(*self.args, **kwargs)
                except TypeError as exc:
                    raise UsageError(f"cannot build {self.target!r} with {given}: {exc}") from exc
                except Exception as exc:  # the user's constructor failed
                    raise model_code_failure(f"building {self.target!r}", exc, self.file_path, root) from exc
        if not isinstance(model, nn.Module):
            raise ModelError(f"{self.target!r} returned {type(model).__name__}, not a torch.nn.Module")
        return model

    def _resolve(self) -> Any:
        location, attr = self.location, self.attr
        if not location or not attr:
            raise UsageError(
                f"model spec {self.target!r} must look like path/to/file.py:Name or package.module:Name"
            )
        return import_attribute(
            location, attr, file=self.file_path, root=self.root_path, module_name=self.module_name
        )


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to measure, with its identity."""

    model: nn.Module
    identity: ModelIdentity
    loose_load: LooseLoad | None = None  # what a non-strict weights load left out

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
    return replace(spec, weights=str(file.resolve()))


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
    spec = replace(
        model_or_spec,
        kwargs={**model_or_spec.kwargs, **_parse_kwargs(kwargs)},
        weights=model_or_spec.weights if weights is None else weights,
    )
    scale = 4 if scale is None else scale
    spec = _with_checkpoint_file(spec, scale, pretrained)
    model, loose = spec.build_checked(scale=scale, pretrained=pretrained, deploy=deploy)
    from .weights import sha256_of

    wsha = sha256_of(spec.weights) if spec.weights is not None else None
    key = identity_key(
        spec=spec.resolved_target,
        kwargs=spec.kwargs,
        weights=wsha,
        scale=scale,
        form=form,
        **spec.key_parts(),
    )
    path = spec.file_path
    identity = ModelIdentity(
        name=spec.name,
        spec=spec.target,
        key=key,
        path=str(path) if path else None,
        module=spec.location if spec.is_module else None,
        kwargs=dict(spec.kwargs),
        args=tuple(spec.args),
        weights=spec.weights,
        weights_sha256=wsha,
        scale=scale,
        form=form,
        data_range=spec.input_range(),
    )
    return ResolvedModel(model, identity, loose)


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
