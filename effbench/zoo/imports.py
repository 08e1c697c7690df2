"""Importing other people's model code: a file or module imported under an import root, packages from another
root forgotten first, and failures turned into a :class:`~effbench.base.errors.ModelError` that says what is
missing.

``root`` is an import root, on ``sys.path`` while the model is imported and built (entries that ``import
models.x``). A file whose path lies under the root is imported under its dotted name relative to it
(``models/team00.py`` -> ``models.team00``), so relative imports inside packages work; a top-level package of that
name cached from another folder (another challenge's ``models``) is forgotten first. A package the file imports
but that is not installed is a :class:`ModelError` saying ``missing package 'timm'``.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from torch import nn

from ..base.errors import EffbenchError, ModelError, UsageError
from ..base.plugins import import_file
from ..base.thirdparty import model_import_compat

__all__ = [
    "forget_rooted_packages",
    "import_attribute",
    "import_under",
    "missing_package",
    "model_code_failure",
    "on_path",
    "run_model_code",
]

T = TypeVar("T")


@contextmanager
def on_path(root: Path | None) -> Iterator[None]:
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


#: the import root and module of each top-level package :func:`import_under` imported
_ROOT_OF: dict[str, tuple[Path, ModuleType]] = {}


def import_under(name: str, root: Path) -> ModuleType:
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


def forget_rooted_packages() -> None:
    """Forget the packages :func:`import_under` imported from an import root, before an import without one: a
    model file that says ``from models.x import y`` must not find another challenge's ``models``."""
    for top, (_, module) in list(_ROOT_OF.items()):
        if sys.modules.get(top) is module:
            for key in [k for k in sys.modules if k == top or k.startswith(f"{top}.")]:
                del sys.modules[key]
        del _ROOT_OF[top]


def missing_package(exc: BaseException) -> str | None:
    """The top-level package a ``ModuleNotFoundError`` names when it cannot be found at all (else ``None``)."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.partition(".")[0]
    try:
        return top if importlib.util.find_spec(top) is None else None
    except (ImportError, ValueError):
        return None


def model_code_failure(what: str, exc: Exception, file: Path | None, root: Path | None) -> ModelError:
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
    elif (missing := missing_package(exc)) is not None:
        message += f" (missing package {missing!r}: install it to build this model)"
    return ModelError(message)


def run_model_code(what: str, call: Callable[[], T], file: Path | None, root: Path | None) -> T:
    """Run ``call()`` (the model's own code) with the import root on the path; its failure is a
    :class:`ModelError` naming ``what``."""
    with on_path(root):
        try:
            return call()
        except (UsageError, EffbenchError):
            raise
        except Exception as exc:
            raise model_code_failure(what, exc, file, root) from exc


def import_attribute(
    location: str, attr: str, *, file: Path | None, root: Path | None, module_name: str | None
) -> Any:
    """The attribute ``attr`` of a model file (``file``, imported as ``module_name`` under ``root`` when both are
    given) or of the module named ``location``; a :class:`UsageError` or :class:`ModelError` says what failed."""
    with on_path(root), model_import_compat():
        if file is not None:
            if not file.is_file():
                raise UsageError(f"model file not found: {file}")
            if not (module_name and root):
                forget_rooted_packages()
            try:
                module = (
                    import_under(module_name, root)
                    if module_name and root
                    else import_file(file, "effbench_user")
                )
            except UsageError:
                raise
            except Exception as exc:
                raise model_code_failure(f"importing {file}", exc, file, root) from exc
        else:
            try:
                module = import_under(location, root) if root else importlib.import_module(location)
            except ModuleNotFoundError as exc:
                ours = exc.name == location or location.startswith(f"{exc.name}.")
                if exc.name and not ours and missing_package(exc):
                    raise model_code_failure(f"importing {location!r}", exc, None, root) from exc
                raise UsageError(f"cannot import module {location!r}: {exc}") from exc
            except ImportError as exc:
                raise UsageError(f"cannot import module {location!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UsageError(f"{location!r} has no attribute {attr!r}{_suggest(module, attr)}") from None


def _suggest(module: ModuleType, attr: str) -> str:
    """``; did you mean 'Net'?`` for a name close to ``attr`` in ``module``, else the torch modules it defines."""
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
