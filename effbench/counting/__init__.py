"""Static metrics: params, MACs, FLOPs, activations and #conv under several conventions.

``full`` (default, every arithmetic op), ``ntire2022`` (the official NTIRE 2022/2023 hook tool, exactly) and
``fvcore`` (``fvcore.nn.FlopCountAnalysis(...).total()``, exactly), plus any convention a plugin registers
(:mod:`effbench.base.plugins`). One shapes-only forward pass on fake tensors is recorded (:func:`trace_model`)
and each convention is a table of pure counting rules applied to it, so several conventions cost one trace.
"""

from __future__ import annotations

from typing import Any

from ._records import OpTrace
from ._trace import record
from .conventions import (
    Convention,
    Cost,
    convention_names,
    get_convention,
    register_convention,
)
from .profile import DEFAULT_CONVENTION, Profile, compare_conventions, profile, profile_trace, trace_model

__all__ = [
    "CONVENTION_NAMES",
    "DEFAULT_CONVENTION",
    "Convention",
    "Cost",
    "Profile",
    "OpTrace",
    "compare_conventions",
    "convention_names",
    "get_convention",
    "profile",
    "profile_trace",
    "record",
    "register_convention",
    "trace_model",
]


def __getattr__(name: str) -> Any:
    if name == "CONVENTION_NAMES":  # read from the registry each time: conventions loaded later appear too
        return convention_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
