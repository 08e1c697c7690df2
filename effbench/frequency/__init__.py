"""Frequency analysis: the FMEN paper's power-spectrum study (Sec. 4.3, Fig. 6-8) for any block of any model.

``effbench.psd(model, images)`` captures each chosen block's input and output, and reports radially averaged,
normalised power spectra and the share of energy above a frequency split. See :mod:`.spectrum` for the exact
definitions and :data:`.result.AVERAGING` for how tiles and images are combined.
"""

from __future__ import annotations

from .analysis import PSDOptions, psd
from .block_psd import BlockPSD
from .capture import tile_boxes
from .result import AVERAGING, PSDResult
from .select import BODY_NAMES, DEFAULT_BLOCKS, default_blocks, select_modules
from .spectrum import (
    frequency_axis,
    high_share,
    normalised_curve,
    power_spectrum,
    radial_profile,
    resample_curve,
    ring_index,
)

__all__ = [
    "AVERAGING",
    "BODY_NAMES",
    "DEFAULT_BLOCKS",
    "BlockPSD",
    "PSDOptions",
    "PSDResult",
    "default_blocks",
    "frequency_axis",
    "high_share",
    "normalised_curve",
    "power_spectrum",
    "psd",
    "radial_profile",
    "resample_curve",
    "ring_index",
    "select_modules",
    "tile_boxes",
]
