"""Static metrics: params, MACs, FLOPs, activations and #conv under three conventions.

``full`` (default, every arithmetic op), ``ntire2022`` (the official NTIRE 2022/2023 hook tool, exactly) and
``fvcore`` (``fvcore.nn.FlopCountAnalysis(...).total()``, exactly). One shapes-only forward pass on fake
tensors is recorded (:func:`trace_model`) and each convention is a table of pure counting rules applied to it.
"""

from __future__ import annotations

from ._trace import OpTrace, record
from .conventions import CONVENTIONS, Convention, Cost, get_convention
from .profile import DEFAULT_CONVENTION, Profile, compare_conventions, profile, profile_trace, trace_model

CONVENTION_NAMES = ("full", "ntire2022", "fvcore")

__all__ = [
    "CONVENTIONS",
    "CONVENTION_NAMES",
    "DEFAULT_CONVENTION",
    "Convention",
    "Cost",
    "Profile",
    "OpTrace",
    "compare_conventions",
    "get_convention",
    "profile",
    "profile_trace",
    "record",
    "trace_model",
]
