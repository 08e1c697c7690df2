"""effbench's CPU stand-in for mamba_ssm (effbench.base.stand_ins): the selective scan, the state update and the
Mamba block's reference path, importable while effbench builds an entry."""

__version__ = "0.0+effbench.stand_in"

from mamba_ssm.modules.mamba_simple import Mamba  # noqa: E402
from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # noqa: E402

__all__ = ["Mamba", "selective_scan_fn"]
