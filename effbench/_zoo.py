"""Import the zoo package (``models/`` in the source tree, ``effbench.models`` once installed).

An installed distribution ships ``models/`` as ``effbench.models``; an editable install maps it the same way.
Run straight from a source checkout, neither exists, so the folder is loaded by path under that name.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path


def _import_zoo():
    try:
        return importlib.import_module("effbench.models")
    except ModuleNotFoundError as exc:
        if exc.name != "effbench.models":
            raise
    root = Path(__file__).resolve().parent.parent / "models"
    spec = importlib.util.spec_from_file_location(
        "effbench.models", root / "__init__.py", submodule_search_locations=[str(root)]
    )
    if spec is None or spec.loader is None:  # pragma: no cover
        raise ModuleNotFoundError("effbench.models: the zoo folder models/ was not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules["effbench.models"] = module
    spec.loader.exec_module(module)
    return module


zoo = _import_zoo()
