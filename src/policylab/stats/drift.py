"""Distribution drift between a reference window and a current window, and rate control charts.

Two tests of a categorical distribution (behaviours, or policy categories), chosen as Evidently's
default data-drift algorithm chooses them for a categorical column (Evidently docs, "Data drift
algorithm"; `evidently.legacy.calculations.stattests`):

- **small reference (at most 1,000 observations): Pearson's chi-squared goodness-of-fit test** of
  the current counts against the reference proportions scaled to the current size; drift when the
  p-value is below 0.05 (Evidently's `chisquare` stat test, 0.95 confidence by default);
- **larger reference: the Jensen–Shannon distance** between the two distributions of proportions,
  natural logarithm (`scipy.spatial.distance.jensenshannon` with `base=None`, as Evidently calls
  it), range 0 to sqrt(ln 2) ≈ 0.833; drift when it is at least 0.1 (Evidently's `jensenshannon`
  default threshold).

A category seen in the current window but never in the reference has an expected count of 0: the
chi-squared statistic is infinite and the p-value 0 (a new category is drift).

Rate control charts are Shewhart p-charts (Montgomery, *Introduction to Statistical Quality
Control*, ch. 7): centre line p̄ (the reference rate), limits p̄ ± 3·sqrt(p̄(1−p̄)/n_i) for a
window of n_i observations, clipped to [0, 1]; a window outside its limits is out of control.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import chi2

__all__ = [
    "EVIDENTLY_JS_THRESHOLD",
    "EVIDENTLY_P_VALUE",
    "EVIDENTLY_SMALL_REFERENCE",
    "DriftResult",
    "PChart",
    "categorical_drift",
    "chi_square_drift",
    "jensen_shannon_distance",
    "p_chart",
]

EVIDENTLY_SMALL_REFERENCE = 1000
"""Up to this many reference observations, Evidently tests categorical drift with chi-squared."""
EVIDENTLY_P_VALUE = 0.05
"""Evidently's default significance for its p-value tests (0.95 confidence)."""
EVIDENTLY_JS_THRESHOLD = 0.1
"""Evidently's default threshold for the Jensen–Shannon distance."""

Method = Literal["chi_square", "jensen_shannon"]


@dataclass(frozen=True)
class DriftResult:
    """One drift test. `score` is the p-value (chi-squared) or the distance (Jensen–Shannon);
    `threshold` the value it was compared with; `drifted` the decision."""

    method: Method
    score: float
    threshold: float
    drifted: bool
    statistic: float | None
    reference_n: int
    current_n: int
    categories: tuple[str, ...]
    reference_share: tuple[float, ...]
    current_share: tuple[float, ...]

    def moved(self) -> list[tuple[str, float, float]]:
        """(category, reference share, current share), the largest absolute change first."""
        rows = list(zip(self.categories, self.reference_share, self.current_share, strict=True))
        return sorted(rows, key=lambda r: -abs(r[2] - r[1]))


def _aligned(
    reference: Mapping[str, int], current: Mapping[str, int]
) -> tuple[tuple[str, ...], NDArray[np.float64], NDArray[np.float64]]:
    keys = tuple(sorted(set(reference) | set(current)))
    ref = np.array([reference.get(k, 0) for k in keys], dtype=np.float64)
    cur = np.array([current.get(k, 0) for k in keys], dtype=np.float64)
    if np.any(ref < 0) or np.any(cur < 0):
        raise ValueError("counts must be non-negative")
    return keys, ref, cur


def chi_square_drift(reference: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """Chi-squared goodness of fit of `current` counts to `reference` proportions: (statistic,
    p-value), with k − 1 degrees of freedom over the k categories seen in either window.

    Equal to `scipy.stats.chisquare(current, reference * current.sum() / reference.sum())` where
    every reference count is positive.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.shape != cur.shape or ref.ndim != 1:
        raise ValueError("reference and current must be 1-D counts of the same categories")
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("both windows need at least one observation")
    seen = (ref > 0) | (cur > 0)
    ref, cur = ref[seen], cur[seen]
    if len(ref) < 2:
        return 0.0, 1.0
    expected = ref * (cur.sum() / ref.sum())
    if np.any((expected == 0) & (cur > 0)):
        return math.inf, 0.0
    statistic = float(((cur - expected) ** 2 / expected).sum())
    return statistic, float(chi2.sf(statistic, len(ref) - 1))


def jensen_shannon_distance(reference: ArrayLike, current: ArrayLike) -> float:
    """The Jensen–Shannon distance (natural log) between two count or probability vectors.

    Equal to `scipy.spatial.distance.jensenshannon(reference, current)`; computed here so a
    window's zeros need no special care.
    """
    p = np.asarray(reference, dtype=np.float64)
    q = np.asarray(current, dtype=np.float64)
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("two non-empty count vectors of the same categories are needed")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: NDArray[np.float64]) -> float:
        mask = a > 0
        return float((a[mask] * np.log(a[mask] / m[mask])).sum())

    divergence = max((kl(p) + kl(q)) / 2, 0.0)
    return math.sqrt(divergence)


def categorical_drift(
    reference: Mapping[str, int],
    current: Mapping[str, int],
    *,
    small_reference: int = EVIDENTLY_SMALL_REFERENCE,
    p_value: float = EVIDENTLY_P_VALUE,
    js_threshold: float = EVIDENTLY_JS_THRESHOLD,
) -> DriftResult:
    """Drift of the distribution of `current` counts from `reference` counts (module docstring):
    chi-squared when the reference has at most `small_reference` observations, else
    Jensen–Shannon."""
    keys, ref, cur = _aligned(reference, current)
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    if n_ref == 0 or n_cur == 0:
        raise ValueError("both windows need at least one observation")
    ref_share = tuple(float(x) for x in ref / n_ref)
    cur_share = tuple(float(x) for x in cur / n_cur)
    if n_ref <= small_reference:
        statistic, p = chi_square_drift(ref, cur)
        return DriftResult(
            "chi_square",
            p,
            p_value,
            p < p_value,
            statistic,
            n_ref,
            n_cur,
            keys,
            ref_share,
            cur_share,
        )
    distance = jensen_shannon_distance(ref, cur)
    return DriftResult(
        "jensen_shannon",
        distance,
        js_threshold,
        distance >= js_threshold,
        None,
        n_ref,
        n_cur,
        keys,
        ref_share,
        cur_share,
    )


@dataclass(frozen=True)
class PChart:
    """A p-chart: per window the observed rate, the centre line and the 3σ control limits."""

    rate: NDArray[np.float64]
    n: NDArray[np.int64]
    centre: float
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]

    @property
    def out_of_control(self) -> NDArray[np.bool_]:
        """True where a window with data lies outside its limits."""
        with np.errstate(invalid="ignore"):
            outside = (self.rate > self.upper) | (self.rate < self.lower)
        return outside & (self.n > 0)


def p_chart(
    events: Sequence[int] | ArrayLike,
    totals: Sequence[int] | ArrayLike,
    *,
    centre: float | None = None,
    sigmas: float = 3.0,
) -> PChart:
    """A p-chart of `events / totals` per window. `centre` is the reference rate p̄; by default
    the pooled rate of all the windows given (`sum(events) / sum(totals)`)."""
    k = np.asarray(events, dtype=np.int64)
    n = np.asarray(totals, dtype=np.int64)
    if k.shape != n.shape or np.any(k < 0) or np.any(k > n):
        raise ValueError("events and totals must be counts with 0 <= events <= totals")
    if centre is None:
        total = int(n.sum())
        if total == 0:
            raise ValueError("no observations to set the centre line from")
        centre = float(k.sum()) / total
    if not 0.0 <= centre <= 1.0:
        raise ValueError(f"the centre line must be a rate in [0, 1], got {centre}")
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, k / np.maximum(n, 1), np.nan)
        half = sigmas * np.sqrt(centre * (1 - centre) / n)
    lower = np.clip(centre - half, 0.0, 1.0)
    upper = np.clip(centre + half, 0.0, 1.0)
    return PChart(rate.astype(np.float64), n, float(centre), lower, upper)
