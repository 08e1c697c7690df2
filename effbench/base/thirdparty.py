"""Third-party packages that model files import, made importable beside the installed torch while model code is
imported (:func:`model_import_compat`, used by :mod:`effbench.zoo.spec`).

- **torchvision** wheels on PyPI are built against a CUDA torch: beside a CPU torch their C extension does not
  load, and since torchvision 0.18 the import itself then fails (``operator torchvision::nms does not exist``: it
  registers fake kernels for ``nms`` and ``qnms`` whether or not the extension loaded). When the extension cannot
  load, the two operators are declared here (their schemas, no kernel), so ``import torchvision`` works: models,
  layers and transforms written in Python work; its compiled ops (``nms``, ``roi_align``, ``deform_conv2d``, ...)
  stay missing and torchvision says so when one is called.
- **basicsr** 1.4.2 imports ``torchvision.transforms.functional_tensor``, renamed ``_functional_tensor`` in
  torchvision 0.17: while active, the old name is an alias of the new one where torchvision lacks it.

Both act only on what is missing: a torchvision whose extension loads, or one that has ``functional_tensor``, is
left alone.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

__all__ = ["model_import_compat", "torchvision_ops_defined"]

#: old module names -> where their contents live now (only used when the old name does not exist)
_ALIASES = {"torchvision.transforms.functional_tensor": "torchvision.transforms._functional_tensor"}
_LIBRARY: Any = None  # the torchvision op definitions made here (kept alive for the process)


def torchvision_ops_defined() -> bool:
    """Whether ``torchvision::nms`` exists in this process (its extension loaded, or defined here)."""
    try:
        torch.ops.torchvision.nms.default  # noqa: B018 (a lookup that raises when the op is not defined)
    except (AttributeError, RuntimeError):
        return False
    return True


def _define_torchvision_ops() -> None:
    """Before torchvision's first import: load its C extension as torchvision would, else define the operators its
    import needs."""
    global _LIBRARY
    if "torchvision" in sys.modules or torchvision_ops_defined():
        return
    spec = importlib.machinery.PathFinder.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    for lib in sorted(Path(next(iter(spec.submodule_search_locations))).glob("_C*.so")):
        with contextlib.suppress(OSError, RuntimeError):
            torch.ops.load_library(str(lib))
    if torchvision_ops_defined():
        return
    library = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):  # the schemas torchvision's import registers fake kernels for; no kernel here
        library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY = library


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Acts before torchvision's first import (first on ``sys.meta_path``) and finds the renamed modules' old
    names (last on it, so a module that exists under the old name wins)."""

    def __init__(self, first: bool) -> None:
        self.first = first

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if self.first:
            if name == "torchvision":
                _define_torchvision_ops()
            return None
        if name in _ALIASES:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        real = importlib.import_module(_ALIASES[module.__name__])
        module.__dict__.update({k: v for k, v in vars(real).items() if not k.startswith("__")})


@contextlib.contextmanager
def model_import_compat() -> Iterator[None]:
    """While active, ``import torchvision`` works beside a CPU torch and ``torchvision.transforms.functional_tensor``
    resolves (see the module doc). Nesting is harmless."""
    first, last = _Finder(True), _Finder(False)
    sys.meta_path.insert(0, first)
    sys.meta_path.append(last)
    try:
        yield
    finally:
        for finder in (first, last):
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(finder)
