"""Model identities: what makes a measured model *that* model, and display names that tell clashing ones apart.

Built by :func:`effbench.zoo.resolve_model`; stored in every result document as ``identity`` (with its key as
``model_key``). Reports, gates and scores read them back from documents, so this module needs nothing but the
standard library.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ModelIdentity", "display_names", "identity_key", "result_key"]


@dataclass(frozen=True)
class ModelIdentity:
    """What makes a measured model *that* model, recorded in every result.

    ``key`` is a short hash of the spec (a file spec with its absolute path), constructor args and kwargs, the weights file's SHA-256,
    scale and form: equal keys mean the same model, two files defining ``Net`` get two keys. A model instance
    has no spec; its key hashes its class (module and qualified name) and its parameter and buffer names,
    shapes and dtypes.
    """

    name: str  # display name: zoo name, attribute name, or the class name of an instance
    spec: str  # the spec as given (the class name for an instance)
    key: str
    path: str | None = None  # a file spec's file, absolute
    module: str | None = None  # a module spec's module, or an instance's class module
    kwargs: dict[str, Any] = field(default_factory=dict)
    args: tuple[Any, ...] = ()  # positional constructor arguments
    weights: str | None = None  # the checkpoint file loaded, absolute
    weights_sha256: str | None = None
    scale: int | None = None  # None: an instance whose scale was not given
    form: str = "deploy"  # "deploy" or "train"
    data_range: float = 255.0

    def __hash__(self) -> int:
        return hash(self.key)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form stored under ``"identity"`` in result documents."""
        return {
            "key": self.key,
            "name": self.name,
            "spec": self.spec,
            "path": self.path,
            "module": self.module,
            "kwargs": dict(self.kwargs),
            "args": list(self.args),
            "weights": self.weights,
            "weights_sha256": self.weights_sha256,
            "scale": self.scale,
            "form": self.form,
            "data_range": self.data_range,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelIdentity:
        """Inverse of :meth:`as_dict`."""
        return cls(
            name=str(d["name"]),
            spec=str(d["spec"]),
            key=str(d["key"]),
            path=d.get("path"),
            module=d.get("module"),
            kwargs=dict(d.get("kwargs") or {}),
            args=tuple(d.get("args") or ()),
            weights=d.get("weights"),
            weights_sha256=d.get("weights_sha256"),
            scale=d.get("scale"),
            form=str(d.get("form", "deploy")),
            data_range=float(d.get("data_range", 255.0)),
        )

    @classmethod
    def of_result(cls, doc: dict[str, Any]) -> ModelIdentity:
        """The identity of a result document; documents written before identities get their display name as key."""
        if isinstance(doc.get("identity"), dict):
            return cls.from_dict(doc["identity"])
        name = str(doc.get("model"))
        return cls(name=name, spec=str(doc.get("spec") or name), key=name, scale=doc.get("scale"))


def identity_key(**parts: Any) -> str:
    """A short stable hash of the parts that make a model that model (the same in every process)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def result_key(doc: dict[str, Any]) -> str:
    """The key that rows, gate entries and scores group a result document by: its ``model_key``, else its name."""
    return str(doc.get("model_key") or doc.get("model"))


def _path_suffixes(paths: list[str]) -> list[str]:
    """The shortest trailing parts of each path that tell the distinct paths apart."""
    parts = [Path(p).parts for p in paths]
    for n in range(1, max(len(p) for p in parts) + 1):
        tails = ["/".join(p[-n:]) for p in parts]
        if len(set(tails)) == len(set(paths)):
            return tails
    return list(paths)


def display_names(identities: Iterable[ModelIdentity]) -> dict[str, str]:
    """Display name per identity key: unique names as they are, clashing ones qualified by what differs.

    ``Net`` from ``a/model.py`` and ``b/model.py`` become ``Net (a/model.py)`` and ``Net (b/model.py)`` (the
    shortest distinguishing path suffix); same-location clashes are told apart by form, scale, kwargs or weights,
    and by the key when nothing else differs.
    """
    unique = list({i.key: i for i in identities}.values())
    by_name: dict[str, list[ModelIdentity]] = {}
    for ident in unique:
        by_name.setdefault(ident.name, []).append(ident)
    out: dict[str, str] = {}
    for name, group in by_name.items():
        if len(group) == 1:
            out[group[0].key] = name
            continue
        where = _path_suffixes([i.path or i.module or i.spec for i in group])
        columns = [
            where,
            [i.form for i in group],
            [f"x{i.scale}" if i.scale is not None else "" for i in group],
            [json.dumps(i.kwargs, sort_keys=True) if i.kwargs else "" for i in group],
            [Path(i.weights).name if i.weights else "" for i in group],
        ]
        varying = [c for c in columns if len(set(c)) > 1]
        labels = [", ".join(v for v in row if v) for row in zip(*varying)] if varying else [""] * len(group)
        if len(set(labels)) < len(labels):
            labels = [f"{lab}, {i.key}" if lab else i.key for lab, i in zip(labels, group)]
        for ident, lab in zip(group, labels):
            out[ident.key] = f"{name} ({lab})"
    return out
