"""The effbench model zoo: one architecture per file, each registering its factories with
:func:`effbench.zoo.registry.register_model`. Every module in this package is imported on first use of the
registry, so adding a file adds its models."""

from __future__ import annotations

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")
