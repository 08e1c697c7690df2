"""CPU stand-ins for CUDA-only packages that challenge entries import (``mamba_ssm``, ``causal_conv1d``), written in
this project (:mod:`.ops`: ``torch.library`` custom ops with fake implementations and FLOP formulas).

:func:`cuda_package_stand_ins` makes them importable under the packages' own names only while it is active,
and only for the packages the host cannot import; on exit the stand-in modules leave ``sys.path`` and
``sys.modules`` again (the entry that imported them keeps its references), so the user's environment is
unchanged.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["STAND_INS", "cuda_package_stand_ins"]

#: the packages stood in for
STAND_INS = ("mamba_ssm", "causal_conv1d")
_SITE = Path(__file__).resolve().parent / "site"


def _importable(name: str) -> bool:
    if importlib.util.find_spec(name) is None:
        return False
    try:  # installed but unusable (a CUDA build on a CPU host)
        importlib.import_module(name)
    except Exception:
        return False
    return True


@contextlib.contextmanager
def cuda_package_stand_ins() -> Iterator[list[str]]:
    """While active, ``import mamba_ssm`` / ``import causal_conv1d`` find the stand-ins when the real package
    cannot be imported here. Yields a list that, on exit, names the stand-ins the code inside imported."""
    used: list[str] = []
    needed = tuple(n for n in STAND_INS if n not in sys.modules and not _importable(n))
    if not needed:
        yield used
        return
    site = str(_SITE)
    sys.path.append(site)
    try:
        yield used
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(site)
        for name in list(sys.modules):
            top = name.split(".")[0]
            if top in needed and str(getattr(sys.modules[name], "__file__", "") or "").startswith(site):
                del sys.modules[name]
                if top not in used:
                    used.append(top)
        used.sort()
        importlib.invalidate_caches()
