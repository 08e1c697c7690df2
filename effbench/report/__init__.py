"""Reports: tables, markdown, HTML and figures (rendering only; the CI gate lives in :mod:`effbench.ci`, NTIRE
scores in :mod:`effbench.challenge.scores`).

Imported lazily: ``import effbench.report`` pulls in neither torch nor matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "render_report": "effbench.report.render",
    "build_table": "effbench.report.table",
    "split_groups": "effbench.report.table",
    "render_table_markdown": "effbench.report.markdown",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'effbench.report' has no attribute {name!r}")
