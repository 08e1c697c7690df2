"""Reports, NTIRE scores, the CI regression gate and the pytest plugin.

Imported lazily: ``import effbench.report`` pulls in neither torch nor matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "render_report": "effbench.report.render",
    "build_table": "effbench.report.table",
    "split_groups": "effbench.report.table",
    "render_markdown": "effbench.report.markdown",
    "compute_scores": "effbench.report.scores",
    "YEARS": "effbench.report.scores",
    "run_gate": "effbench.report.gate",  # the function effbench.report.gate.gate (the name `gate` is the module)
    "GateResult": "effbench.report.gate",
    "load_for_gate": "effbench.report.gate",
    "mann_whitney_u": "effbench.report.stats",
    "bootstrap_ratio_ci": "effbench.report.stats",
    "save_baseline": "effbench.report.baseline",
    "update_baseline": "effbench.report.baseline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'effbench.report' has no attribute {name!r}")
