"""The FMEN paper's efficiency studies as built-in experiments (``effbench study NAME``).

* ``blocks`` (Table 1): EDSR-baseline and FMEN with RB, PB and ERB (deploy form).
* ``attention`` (Table 2): a 15-ERB baseline with CCA, ESA or HFAB (FMEN) after every 3 ERBs.
* ``fusion`` (Sec. 3.1): plain vs fusion topology of equal params and MACs, N = 2..6 fused features.

Each study is a declared, frozen table (:data:`STUDIES`, :class:`Study`, :class:`Variant`; rows added with
:func:`register_variant`); :func:`run_study` runs it through the sweep machinery and writes ``study.json``,
``study.md`` and ``study.png``.
"""

from __future__ import annotations

from .definitions import (
    STUDIES,
    Study,
    Variant,
    attention_variant,
    get_study,
    register_study,
    register_variant,
)
from .execute import StudySettings, run_study
from .formulas import block_memory, fusion_formula
from .models_file import write_models_file
from .verdicts import analyse_study

__all__ = [
    "STUDIES",
    "Study",
    "StudySettings",
    "Variant",
    "analyse_study",
    "attention_variant",
    "block_memory",
    "fusion_formula",
    "get_study",
    "register_study",
    "register_variant",
    "run_study",
    "write_models_file",
]
