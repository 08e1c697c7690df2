"""Statistics for measurements, reports and the regression gate: the standard library and numpy only (no torch,
no scipy), so that reading results never imports torch.

- :func:`median_ci`: the distribution-free confidence interval of the median (timing's stopping rule, the
  report's intervals); :data:`MIN_CI_SAMPLES`, the fewest samples that have a 95 % one;
- :func:`quartiles`: the first and third quartiles (an interquartile range where no interval exists);
- :func:`mann_whitney_u`: one-sided Mann-Whitney U test that ``x`` tends to be larger than ``y``; exact null
  distribution (by counting) for small samples without ties, otherwise the normal approximation with tie and
  continuity corrections;
- :func:`welch_t`: one-sided Welch t-test from summary statistics (mean, sd, n), for inputs that keep no samples
  (e.g. pytest-benchmark JSON saved without ``--benchmark-save-data``);
- :func:`bootstrap_ratio_ci`: percentile bootstrap confidence interval of ``median(x) / median(y)``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import numpy as np

__all__ = [
    "MIN_CI_SAMPLES",
    "bootstrap_ratio_ci",
    "mann_whitney_u",
    "median_ci",
    "quartiles",
    "t_sf",
    "welch_t",
]

MIN_CI_SAMPLES = 6  # the fewest samples with a distribution-free 95 % interval of the median


def median_ci(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Distribution-free confidence interval of the median: ``(x_(k), x_(n+1-k))`` of the sorted samples with the
    largest rank ``k`` such that ``P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2``; None when ``n`` is too small
    (fewer than 6 samples at 95 %). Exact binomial sums up to n = 300, the normal approximation above."""
    xs = sorted(samples)
    n = len(xs)
    tail = (1.0 - confidence) / 2.0
    if n > 300:
        z = statistics.NormalDist().inv_cdf(1.0 - tail)
        k = math.floor(n / 2.0 - z * math.sqrt(n) / 2.0)
    else:
        k, cdf = 0, 0.0  # cdf = P(B <= k - 1) for the candidate rank k
        while True:
            nxt = cdf + math.comb(n, k) / 2.0**n
            if nxt > tail:
                break
            k, cdf = k + 1, nxt
    if k < 1:
        return None
    return xs[k - 1], xs[n - k]


def quartiles(samples: Sequence[float]) -> tuple[float, float]:
    """The first and third quartiles (inclusive method) of two or more samples; both the sample for one."""
    if len(samples) < 2:
        return samples[0], samples[0]
    q1, _, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q1, q3


def _rankdata(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based) with ties sharing the mean of their positions."""
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), dtype=float)
    sorted_a = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def _exact_upper_tail(u: float, n1: int, n2: int) -> float:
    """P(U >= u) under H0 without ties: count rank arrangements with the recurrence on (n1, n2)."""
    # counts[i][j] = polynomial coefficients of the number of arrangements giving each U for sizes (i, j)
    max_u = n1 * n2
    prev = [np.zeros(max_u + 1, dtype=float) for _ in range(n2 + 1)]
    for j in range(n2 + 1):
        prev[j][0] = 1.0  # i = 0: U = 0 in one way
    for _i in range(1, n1 + 1):
        cur = [np.zeros(max_u + 1, dtype=float) for _ in range(n2 + 1)]
        cur[0][0] = 1.0
        for j in range(1, n2 + 1):
            # the largest value is from x (adds j to U) or from y (adds 0)
            shifted = np.zeros(max_u + 1)
            shifted[j:] = prev[j][: max_u + 1 - j]
            cur[j] = shifted + cur[j - 1]
        prev = cur
    dist = prev[n2]
    k = int(math.ceil(u - 1e-9))
    return float(dist[k:].sum() / dist.sum())


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """One-sided Mann-Whitney U test of H1 "``x`` is stochastically larger than ``y``": returns (U_x, p)."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n1, n2 = len(xa), len(ya)
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann-Whitney U needs at least one sample on each side")
    ranks = _rankdata(np.concatenate([xa, ya]))
    u = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    _, counts = np.unique(np.concatenate([xa, ya]), return_counts=True)
    ties = bool((counts > 1).any())
    if not ties and n1 * n2 <= 2500:
        return u, _exact_upper_tail(u, n1, n2)
    n = n1 + n2
    mean = n1 * n2 / 2.0
    tie_term = float((counts**3 - counts).sum())
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if var <= 0:
        return u, 1.0 if u <= mean else 0.0
    z = (u - mean - 0.5) / math.sqrt(var)
    return u, 0.5 * math.erfc(z / math.sqrt(2.0))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (Lentz's method)."""
    tiny, eps = 1e-300, 1e-14
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """Survival function P(T > t) of Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t > 0 else 1.0 - tail


def welch_t(
    mean_x: float, sd_x: float, n_x: int, mean_y: float, sd_y: float, n_y: int
) -> tuple[float, float]:
    """One-sided Welch t-test of H1 "mean of x > mean of y" from summary statistics: returns (t, p)."""
    if n_x < 2 or n_y < 2:
        raise ValueError("Welch's t-test needs at least two samples on each side")
    vx, vy = sd_x**2 / n_x, sd_y**2 / n_y
    se = math.sqrt(vx + vy)
    if se == 0:
        return (math.inf, 0.0) if mean_x > mean_y else (-math.inf, 1.0)
    t = (mean_x - mean_y) / se
    df = (vx + vy) ** 2 / ((vx**2 / (n_x - 1) if vx else 0.0) + (vy**2 / (n_y - 1) if vy else 0.0))
    return t, t_sf(t, df)


def bootstrap_ratio_ci(
    x: Sequence[float], y: Sequence[float], level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``median(x) / median(y)`` (resampling both sides; seeded, so reproducible)."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    mx = np.median(xa[rng.integers(0, len(xa), (n_boot, len(xa)))], axis=1)
    my = np.median(ya[rng.integers(0, len(ya), (n_boot, len(ya)))], axis=1)
    ratios = mx / my
    lo, hi = np.quantile(ratios, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)
