"""Radially averaged power spectra of 2-D maps (the pipeline of the FMEN paper's Fig. 7).

Definitions used everywhere in :mod:`effbench.frequency`:

- The *power spectrum* of a map ``x`` (H x W) is ``|fftshift(fft2(x))|^2``, centred so that the zero
  frequency sits at index ``(H // 2, W // 2)``.
- *Normalised radial frequency* ``rho = sqrt((ky / (H/2))^2 + (kx / (W/2))^2)``, where ``ky, kx`` are the
  integer offsets from the centre. ``rho = 1`` is the Nyquist frequency (0.5 cycles per pixel) along each axis,
  so the rings are circles in physical frequency even when ``H != W``; for a square map they are exactly the
  circles of integer pixel radius ``r = round(sqrt(ky^2 + kx^2))``.
- With ``R = min(H, W) // 2`` rings, ring ``k`` (``k = 0..R``) holds the bins with ``round(R * rho) == k``;
  corners beyond the Nyquist circle (``rho > 1``) are not used.
- The *spectral density* of ring ``k`` is the **mean** power over its bins; the *curve* is the vector of ring
  densities divided by their sum, a distribution over frequency (it sums to 1). White noise gives a flat curve.
- The *high-frequency share* at split ``s`` (fraction of Nyquist) is the sum of the curve over rings with
  ``k / R > s``; the low share is the rest (``k / R <= s``), so the two add up to 1.
- By default the mean of the map (DC, ring 0) is kept, as in the paper's pipeline; feature maps have a large
  mean, so ring 0 usually holds most of the curve. ``remove_mean=True`` drops it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from torch import Tensor

from ..base.errors import UsageError

__all__ = [
    "power_spectrum",
    "ring_index",
    "radial_profile",
    "normalised_curve",
    "resample_curve",
    "frequency_axis",
    "high_share",
]


def _as_2d(x: Tensor | np.ndarray) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    if a.ndim != 2:
        raise UsageError(f"expected a 2-D map (H x W), got shape {tuple(a.shape)}")
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise UsageError(f"a map needs at least 2 x 2 pixels for a spectrum, got {tuple(a.shape)}")
    if np.iscomplexobj(a):
        raise UsageError("expected a real-valued map, got a complex one")
    return a.astype(np.float64, copy=False)


def power_spectrum(x: Tensor | np.ndarray) -> np.ndarray:
    """Centred 2-D power spectrum ``|fftshift(fft2(x))|^2`` of an H x W map, computed in float64."""
    f = np.fft.fftshift(np.fft.fft2(_as_2d(x)))
    return f.real**2 + f.imag**2


@lru_cache(maxsize=64)
def _rings(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    idx, n_rings = _ring_index(h, w)
    keep = (idx >= 0).ravel()
    flat = idx.ravel()[keep]
    counts = np.bincount(flat, minlength=n_rings + 1).astype(np.float64)
    return keep, flat, counts, n_rings


def _ring_index(h: int, w: int) -> tuple[np.ndarray, int]:
    if h < 2 or w < 2:
        raise UsageError(f"a map needs at least 2 x 2 pixels for a spectrum, got {h} x {w}")
    n_rings = min(h, w) // 2
    ky = (np.arange(h, dtype=np.float64) - h // 2) / (h / 2)
    kx = (np.arange(w, dtype=np.float64) - w // 2) / (w / 2)
    rho = np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    idx = np.rint(rho * n_rings).astype(np.int64)
    idx[rho > 1.0 + 1e-12] = -1
    return idx, n_rings


def ring_index(h: int, w: int) -> tuple[np.ndarray, int]:
    """Ring number of every bin of a centred H x W spectrum (``-1`` beyond Nyquist) and the ring count ``R``."""
    idx, n_rings = _ring_index(h, w)
    return idx.copy(), n_rings


def radial_profile(spectrum: np.ndarray) -> np.ndarray:
    """Mean of a centred spectrum over each ring ``k = 0..R`` (the spectral density per frequency)."""
    spectrum = _as_2d(spectrum)
    keep, flat, counts, n_rings = _rings(*spectrum.shape)
    sums = np.bincount(flat, weights=spectrum.ravel()[keep], minlength=n_rings + 1)
    return sums / np.maximum(counts, 1.0)


def normalised_curve(x: Tensor | np.ndarray, remove_mean: bool = False) -> np.ndarray:
    """The PSD curve of one map: ring densities of its power spectrum divided by their sum (sums to 1).

    ``remove_mean=True`` subtracts the map's mean first, so ring 0 (DC) holds no energy and the curve shows
    only the spatial variation. A map with no energy (all zeros) has no distribution: a curve of NaNs.
    """
    a = _as_2d(x)
    if remove_mean:
        a = a - a.mean()
    prof = radial_profile(power_spectrum(a))
    total = prof.sum()
    if not np.isfinite(total) or total <= 0:
        return np.full_like(prof, np.nan)
    return prof / total


def frequency_axis(n_rings: int) -> np.ndarray:
    """Normalised frequency of rings ``0..n_rings`` (1 = Nyquist)."""
    return np.arange(n_rings + 1, dtype=np.float64) / max(n_rings, 1)


def resample_curve(curve: np.ndarray, n_rings: int) -> np.ndarray:
    """Resample a curve (rings ``0..len-1``) onto ``n_rings + 1`` points of the normalised axis; renormalise.

    The ring density is a function of normalised frequency, so it is interpolated linearly at the new ring
    centres, then divided by the new sum. A curve already of that length is returned unchanged.
    """
    curve = np.asarray(curve, dtype=np.float64)
    if len(curve) == n_rings + 1:
        return curve
    src = frequency_axis(len(curve) - 1)
    out = np.interp(frequency_axis(n_rings), src, curve)
    total = out.sum()
    return out / total if total > 0 else out


def high_share(curve: np.ndarray, split: float = 0.5) -> float:
    """Share of the curve above ``split`` (a fraction of Nyquist, exclusive): rings with ``k / R > split``."""
    if not 0.0 < split < 1.0:
        raise UsageError(f"split must be a fraction of the Nyquist frequency in (0, 1), got {split}")
    curve = np.asarray(curve, dtype=np.float64)
    f = frequency_axis(len(curve) - 1)
    return float(curve[f > split + 1e-12].sum() / curve.sum())
