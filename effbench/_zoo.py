"""Make ``effbench.models`` (the zoo) importable in every layout.

An installed distribution ships ``models/`` as ``effbench.models``, and an editable install maps it the same way.
Run straight from a source checkout (``PYTHONPATH=.``, as on the GPU validation machine), neither exists: a
meta-path finder, consulted after the regular ones, then maps ``effbench.models`` to the checkout's ``models/``,
so ``import effbench.models.fmen`` and specs like ``effbench.models.imdn:CCA`` work everywhere.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

_SOURCE_ZOO = Path(__file__).resolve().parent.parent / "models"


class _SourceZooFinder(importlib.abc.MetaPathFinder):
    """Finds ``effbench.models`` in the source checkout when no other finder does."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "effbench.models" or not (_SOURCE_ZOO / "__init__.py").is_file():
            return None
        return importlib.util.spec_from_file_location(
            fullname, _SOURCE_ZOO / "__init__.py", submodule_search_locations=[str(_SOURCE_ZOO)]
        )


def install_finder() -> None:
    if not any(isinstance(f, _SourceZooFinder) for f in sys.meta_path):
        sys.meta_path.append(_SourceZooFinder())


def import_zoo():
    """Import the zoo package, which registers every model."""
    install_finder()
    return importlib.import_module("effbench.models")
