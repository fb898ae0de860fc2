"""The drift statistics, written out so that each can be checked against an independent computation.

Numeric features are binned on the reference's deciles: the outer bins are open (a value beyond the
reference's range still lands in the first or last bin), missing values have a bin of their own, and a
bin empty on one side is floored at :data:`EMPTY_BIN_SHARE` so PSI stays finite.
"""

from __future__ import annotations

import numpy as np

# Share given to a bin with no rows on one side (then shares are renormalized): PSI is infinite otherwise.
EMPTY_BIN_SHARE = 1e-4
DECILES = np.linspace(0.1, 0.9, 9)


def decile_edges(values: np.ndarray) -> np.ndarray:
    """Interior bin edges: the distinct deciles of the non-missing values (empty for a constant or empty
    feature, which then has one value bin)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return np.array([], dtype=float)
    edges = np.unique(np.quantile(x, DECILES))
    # The lowest edge equal to the minimum would leave the first bin empty for every reference row.
    return edges[edges > x.min()]


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin: ``len(edges) + 1`` value bins (bin i holds edges[i-1] <= x < edges[i], outer bins
    open) and, last, the missing values."""
    x = np.asarray(values, dtype=float)
    missing = np.isnan(x)
    index = np.searchsorted(np.asarray(edges, dtype=float), x[~missing], side="right")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return np.append(counts, missing.sum()).astype(np.int64)


def category_counts(values: np.ndarray, categories: list[str]) -> np.ndarray:
    """Counts per category in ``categories`` order, then one bin for anything else, then missing."""
    import pandas as pd

    labels = pd.Series(np.asarray(values, dtype=object))
    missing = labels.isna().to_numpy()
    codes = pd.Categorical(labels[~missing].astype(str), categories=categories).codes
    index = np.where(codes < 0, len(categories), codes)
    counts = np.bincount(index, minlength=len(categories) + 1)
    return np.append(counts, missing.sum()).astype(np.int64)


def shares(counts: np.ndarray, floor: float = EMPTY_BIN_SHARE) -> np.ndarray:
    """Counts as shares, empty bins floored at ``floor`` and renormalized (both sides then have every bin)."""
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    if total <= 0:
        return np.full(len(c), 1.0 / len(c))
    s = np.maximum(c / total, floor)
    return s / s.sum()


def psi(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Population stability index: sum over bins of (current - reference) * ln(current / reference)."""
    r, c = shares(reference_counts), shares(current_counts)
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen-Shannon distance in base 2 (0 identical, 1 disjoint) between two count vectors."""
    p = np.asarray(reference_counts, dtype=float)
    q = np.asarray(current_counts, dtype=float)
    if p.sum() <= 0 or q.sum() <= 0:
        return 0.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return float(np.sqrt(max((kl(p) + kl(q)) / 2, 0.0)))


def chi_square_p(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """p-value of Pearson's chi-square test of homogeneity on the 2 x k table (bins empty on both sides
    dropped); 1.0 when fewer than two bins have rows."""
    from scipy.stats import chi2

    table = np.vstack([reference_counts, current_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return float(chi2.sf(statistic, table.shape[1] - 1))


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic on the non-missing values: the largest gap between the two
    empirical distribution functions (0.0 when either side has no values)."""
    a = np.sort(np.asarray(reference, dtype=float))
    b = np.sort(np.asarray(current, dtype=float))
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) == 0 or len(b) == 0:
        return 0.0
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / len(a)
    cdf_b = np.searchsorted(b, points, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def missing_share(values: np.ndarray) -> float:
    """Share of missing values (0.0 for no values)."""
    x = np.asarray(values, dtype=float)
    return float(np.isnan(x).mean()) if len(x) else 0.0


def ks_p_value(statistic: float, n: int, m: int) -> float:
    """p-value of a two-sample KS statistic from samples of ``n`` and ``m`` values (the distribution of
    the one-sample statistic at the effective size n*m/(n+m), as scipy's asymptotic mode does)."""
    from scipy.stats import kstwo

    if n == 0 or m == 0:
        return 1.0
    return float(min(1.0, kstwo.sf(statistic, max(1, round(n * m / (n + m))))))


def category_p_value(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """How surprising the current counts are under the reference's shares: the smallest two-sided exact
    binomial p-value over the categories, times their number (Bonferroni). The reference's shares get
    half a row per category so an unseen category is rare, not impossible. Exact, so a handful of
    customers in a rare category is judged fairly where a chi-square approximation is not."""
    from scipy.stats import binom

    reference = np.asarray(reference_counts, dtype=float)
    current = np.asarray(current_counts, dtype=np.int64)
    n = int(current.sum())
    if n == 0 or reference.sum() <= 0:
        return 1.0
    expected = (reference + 0.5) / (reference.sum() + 0.5 * len(reference))
    lower = binom.cdf(current, n, expected)
    upper = binom.sf(current - 1, n, expected)
    p = np.minimum(1.0, 2 * np.minimum(lower, upper))
    return float(min(1.0, p.min() * len(p)))


def relative_spread(values: np.ndarray) -> float:
    """Interquartile range over the absolute median of the non-missing values (0.0 when the median is 0
    or there are no values): how widely customers spread around a level, whatever the level."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return 0.0
    q25, median, q75 = np.quantile(x, (0.25, 0.5, 0.75))
    return float((q75 - q25) / abs(median)) if median else 0.0
