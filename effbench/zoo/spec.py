"""Model specs: how users name a model everywhere (API and every CLI command).

A spec is one of
- a zoo name: ``fmen_s``;
- a file and an attribute: ``path/to/file.py:ClassOrFactory``;
- a module and an attribute: ``package.module:attr``;
with optional positional (``args``) and JSON keyword arguments (``kwargs``) passed to the class or factory, and an
optional weights path (``weights_key``: the checkpoint entry holding the state dict, or several of which the first
the file has; ``strict=False``: load like a harness's ``load_state_dict(sd, strict=False)``, the keys left out kept
in :attr:`ResolvedModel.loose_load`).

Loading as a harness does it: a model whose class overrides ``load_state_dict`` is given the checkpoint's state
dict through that override (``own_load_state_dict``; ``None``: whenever the class overrides it), as
``model.load_state_dict(torch.load(path), strict=...)`` would (an override may fuse branches before loading);
``load_method="load_weights"`` lets the model load its checkpoint itself (``model.load_weights(path)``). Then the
``after_load`` calls run in order (:class:`AfterLoad`: ``model.repa()``, or ``switch_deploy()`` on every submodule
that has it), with or without weights, so a re-parameterised entry is measured in its deploy form.

``root`` is an import root, on ``sys.path`` while the model is imported and built (entries that ``import models.x``).
A file spec whose file lies under the root is imported under its dotted name relative to it (``models/team00.py``
-> ``models.team00``), so relative imports inside packages work; a top-level package of that name cached from
another folder (another challenge's ``models``) is forgotten first. A package the file imports but that is not
installed is a :class:`ModelError` saying ``missing package 'timm'``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from torch import nn

from ..base.errors import CheckpointError, EffbenchError, ModelError, UsageError
from ..base.identity import ModelIdentity, identity_key
from ..base.model_code import running_model_code
from ..base.plugins import import_file
from ..base.thirdparty import model_import_compat

if TYPE_CHECKING:
    from .weights import LooseLoad


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


@contextmanager
def _on_path(root: Path | None) -> Iterator[None]:
    """``root`` first on ``sys.path`` for the duration (nothing when ``None``)."""
    if root is None:
        yield
        return
    entry = str(root)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()  # the folder may have changed since a finder listed it
    try:
        yield
    finally:
        if entry in sys.path:
            sys.path.remove(entry)


#: the import root and module of each top-level package :func:`_import_under` imported
_ROOT_OF: dict[str, tuple[Path, ModuleType]] = {}


def _import_under(name: str, root: Path) -> ModuleType:
    """Import the dotted module ``name`` with ``root`` on the path, first forgetting a cached top-level package of
    that name that came from elsewhere (another root, or the ordinary path) when ``root`` has its own."""
    top = name.partition(".")[0]
    own = (root / top).is_dir() or (root / f"{top}.py").is_file()
    cached = sys.modules.get(top)
    if own and cached is not None and _ROOT_OF.get(top) != (root, cached):
        for key in [k for k in sys.modules if k == top or k.startswith(f"{top}.")]:
            del sys.modules[key]
    module = importlib.import_module(name)
    if own:
        _ROOT_OF[top] = (root, sys.modules[top])
    return module


def _forget_rooted_packages() -> None:
    """Forget the packages :func:`_import_under` imported from an import root, before an import without one: a
    model file that says ``from models.x import y`` must not find another challenge's ``models``."""
    for top, (_, module) in list(_ROOT_OF.items()):
        if sys.modules.get(top) is module:
            for key in [k for k in sys.modules if k == top or k.startswith(f"{top}.")]:
                del sys.modules[key]
        del _ROOT_OF[top]


def _missing_package(exc: BaseException) -> str | None:
    """The top-level package a ``ModuleNotFoundError`` names when it cannot be found at all (else ``None``)."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.partition(".")[0]
    try:
        return top if importlib.util.find_spec(top) is None else None
    except (ImportError, ValueError):
        return None


def _failure(what: str, exc: Exception, file: Path | None, root: Path | None) -> ModelError:
    """The :class:`ModelError` for user code that raised ``exc`` (call inside the import root's context)."""
    message = f"{what} failed: {type(exc).__name__}: {exc}"
    top = exc.name.partition(".")[0] if isinstance(exc, ModuleNotFoundError) and exc.name else None
    local = None
    if top is not None and root is None and file is not None:
        # a folder beside the file names the module: the repository root is what is missing from the path
        # (also when a package of that name from elsewhere was found instead)
        local = next((d for d in file.parents if (d / top).is_dir() or (d / f"{top}.py").is_file()), None)
    if local is not None:
        message += f" ({top!r} is a folder of {local}: give that folder as the import root)"
    elif (missing := _missing_package(exc)) is not None:
        message += f" (missing package {missing!r}: install it to build this model)"
    return ModelError(message)


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
    def from_dict(cls, d: Any) -> AfterLoad:
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


def _weights_key(value: Any) -> str | tuple[str, ...] | None:
    """A checkpoint entry name, or a non-empty sequence of them (tuple); anything else is a :class:`UsageError`."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise UsageError(f"weights_key must be a string or a list of strings, got {value!r}")


@contextmanager
def _checkpoints_on_cpu() -> Iterator[None]:
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


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec. ``target`` is a zoo name or ``location:attr``; ``data_range`` (when given) overrides
    the input range the model declares; ``own_load_state_dict``, ``load_method`` and ``after_load`` load and
    prepare the model as a harness does (see the module doc)."""

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
            self._model_code(f"the after-load call {call.call}()", lambda c=call: c.apply(model))
        return model.eval(), loose

    def _load(self, model: nn.Module) -> LooseLoad | None:
        """Load :attr:`weights` into ``model`` the way the spec says (see the module doc)."""
        from .weights import LooseLoad, load_checkpoint, load_checkpoint_loose, read_state_dict

        weights = str(self.weights)
        if self.load_method is not None:
            method = getattr(model, self.load_method, None)
            if not callable(method):
                raise UsageError(
                    f"load_method {self.load_method!r}: {type(model).__name__} has no such method"
                )
            with _checkpoints_on_cpu():
                self._model_code(
                    f"{type(model).__name__}.{self.load_method}({weights!r})", lambda: method(weights)
                )
            return None
        own = self.own_load_state_dict
        if own is None:
            own = type(model).load_state_dict is not nn.Module.load_state_dict
        if not own:
            if self.strict:
                load_checkpoint(model, weights, entry=self.weights_key)
                return None
            return load_checkpoint_loose(model, weights, self.weights_key)
        sd = read_state_dict(weights, self.weights_key)
        try:
            with _on_path(self.root_path):
                result = model.load_state_dict(sd, strict=self.strict)
        except Exception as exc:
            raise CheckpointError(
                f"loading checkpoint {Path(weights).name} ({weights}) through {type(model).__name__}'s own "
                f"load_state_dict failed: {type(exc).__name__}: {exc}"
            ) from exc
        if self.strict:
            return None
        missing = tuple(getattr(result, "missing_keys", ()) or ())
        return LooseLoad(missing, tuple(getattr(result, "unexpected_keys", ()) or ()))

    def _model_code(self, what: str, call: Any) -> Any:
        """Run ``call()`` (the model's own code) with the import root on the path; its failure is a
        :class:`ModelError` naming ``what``."""
        root = self.root_path
        with _on_path(root):
            try:
                return call()
            except (UsageError, EffbenchError):
                raise
            except Exception as exc:
                raise _failure(what, exc, self.file_path, root) from exc

    def _construct(self) -> nn.Module:
        root = self.root_path
        with _on_path(root):
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
                    raise _failure(f"building {self.target!r}", exc, self.file_path, root) from exc
        if not isinstance(model, nn.Module):
            raise ModelError(f"{self.target!r} returned {type(model).__name__}, not a torch.nn.Module")
        return model

    def _resolve(self) -> Any:
        location, attr = self.location, self.attr
        if not location or not attr:
            raise UsageError(
                f"model spec {self.target!r} must look like path/to/file.py:Name or package.module:Name"
            )
        path, root = self.file_path, self.root_path
        with _on_path(root), model_import_compat():
            if path is not None:
                if not path.is_file():
                    raise UsageError(f"model file not found: {path}")
                name = self.module_name
                if not (name and root):
                    _forget_rooted_packages()
                try:
                    module = (
                        _import_under(name, root) if name and root else import_file(path, "effbench_user")
                    )
                except UsageError:
                    raise
                except Exception as exc:
                    raise _failure(f"importing {path}", exc, path, root) from exc
            else:
                try:
                    module = _import_under(location, root) if root else importlib.import_module(location)
                except ModuleNotFoundError as exc:
                    ours = exc.name == location or location.startswith(f"{exc.name}.")
                    if exc.name and not ours and _missing_package(exc):
                        raise _failure(f"importing {location!r}", exc, None, root) from exc
                    raise UsageError(f"cannot import module {location!r}: {exc}") from exc
                except ImportError as exc:
                    raise UsageError(f"cannot import module {location!r}: {exc}") from exc
        try:
            return getattr(module, attr)
        except AttributeError:
            raise UsageError(f"{location!r} has no attribute {attr!r}{_suggest(module, attr)}") from None


def _suggest(module: Any, attr: str) -> str:
    """``; did you mean 'Net'?`` for a name close to ``attr`` in ``module``, else the torch modules it defines."""
    import difflib

    public = [n for n in vars(module) if not n.startswith("_")]
    close = difflib.get_close_matches(attr, public, n=3, cutoff=0.6)
    if close:
        return f"; did you mean {' or '.join(repr(c) for c in close)}?"
    nets = [
        n
        for n, v in vars(module).items()
        if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == module.__name__
    ]
    return f"; it defines {', '.join(nets)}" if nets else ""


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
