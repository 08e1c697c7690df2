"""Plugins: modules outside effbench that register models, counting conventions or metrics.

A plugin is an ordinary Python module that, on import, calls the registration functions of the layers it extends
(:func:`effbench.zoo.registry.register_model`, :func:`effbench.counting.register_convention`,
:func:`effbench.base.catalogue.register_metric`). effbench imports every plugin named in

- the ``EFFBENCH_PLUGINS`` environment variable: entries separated by ``,`` or the OS path separator, each a dotted
  module name (``my_lab.sr_models``) or the path of a ``.py`` file;
- the ``effbench.plugins`` entry-point group of installed distributions;

once per process, the first time any registry is queried (:func:`load_plugins`).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import re
import sys
from importlib import metadata
from pathlib import Path
from types import ModuleType

from .errors import UsageError

__all__ = ["ENV_VAR", "ENTRY_POINT_GROUP", "import_file", "load_plugins", "plugin_names"]

ENV_VAR = "EFFBENCH_PLUGINS"
ENTRY_POINT_GROUP = "effbench.plugins"

_loaded: dict[str, ModuleType] = {}
_loading = False


@functools.cache
def _entry_point_names() -> tuple[str, ...]:
    """The ``effbench.plugins`` entry points of the installed distributions, read once per process (scanning every
    distribution's metadata takes milliseconds, and every registry query asks)."""
    try:
        return tuple(ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # a broken distribution's metadata must not take effbench down
        return ()


def plugin_names() -> list[str]:
    """The plugins named by ``EFFBENCH_PLUGINS`` and the ``effbench.plugins`` entry points, in load order."""
    names = [
        p.strip() for p in re.split(rf"[,{re.escape(os.pathsep)}]", os.environ.get(ENV_VAR, "")) if p.strip()
    ]
    return names + list(_entry_point_names())


def import_file(path: Path, prefix: str) -> ModuleType:
    """Import the Python file ``path`` once per process (as ``<prefix>_<hash of the path>`` in ``sys.modules``).

    The exception the file's code raises passes through, and the half-imported module is forgotten.
    """
    mod_name = f"{prefix}_{abs(hash(str(path))):x}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[mod_name]
        raise
    return module


def _import(name: str) -> ModuleType:
    if name.endswith(".py") or os.sep in name or "/" in name:
        path = Path(name).expanduser().resolve()
        if not path.is_file():
            raise UsageError(f"{ENV_VAR}: plugin file not found: {path}")
        return import_file(path, "effbench_plugin")
    return importlib.import_module(name.split(":", 1)[0])


def load_plugins() -> list[ModuleType]:
    """Import every plugin not imported yet (idempotent; re-reads ``EFFBENCH_PLUGINS`` on each call)."""
    global _loading
    if _loading:  # a plugin that queries a registry while it is being imported
        return list(_loaded.values())
    _loading = True
    try:
        for name in plugin_names():
            if name in _loaded:
                continue
            try:
                _loaded[name] = _import(name)
            except UsageError:
                raise
            except Exception as exc:
                raise UsageError(f"plugin {name!r} failed to import: {type(exc).__name__}: {exc}") from exc
    finally:
        _loading = False
    return list(_loaded.values())
