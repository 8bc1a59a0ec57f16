"""Binomial rates with Wilson score intervals.

Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference.
Journal of the American Statistical Association 22(158), 209-212.

The Wilson interval keeps good coverage near 0 and 1 and for small n, where the Wald interval
collapses to zero width; safety rates live exactly there (a model refusing 199 of 200 prompts).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict
from scipy.stats import norm

from policylab.errors import PolicylabError

__all__ = ["Rate", "wilson", "wilson_interval", "wilson_intervals", "z_value"]


class Rate(BaseModel):
    """A proportion `successes / n` with its confidence interval.

    When `n == 0` the rate is undefined: `rate` is NaN, the interval is the whole of [0, 1] and
    `defined` is False, so a report can say "no data" instead of showing a misleading 0%.
    NaN serialises to JSON as null.
    """

    model_config = ConfigDict(frozen=True)

    successes: int
    n: int
    rate: float
    low: float
    high: float
    method: Literal["wilson"] = "wilson"
    confidence: float = 0.95
    defined: bool = True

    def __str__(self) -> str:
        if not self.defined:
            return f"n/a (0/0, {self.method})"
        return (
            f"{self.rate:.1%} [{self.low:.1%}, {self.high:.1%}] "
            f"({self.successes}/{self.n}, {self.method} {self.confidence:.0%})"
        )


def z_value(confidence: float) -> float:
    """Two-sided standard normal quantile for a confidence level in (0, 1)."""
    if not 0.0 < confidence < 1.0:
        raise PolicylabError(
            f"confidence must be strictly between 0 and 1, got {confidence!r}",
            hint="use e.g. 0.95 for a 95% interval",
        )
    return float(norm.ppf(0.5 + confidence / 2.0))


def wilson_intervals(
    successes: ArrayLike, n: ArrayLike, *, confidence: float = 0.95
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Vectorised Wilson score interval; entries with n == 0 get (0, 1)."""
    k = np.asarray(successes, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    if np.any(m < 0) or np.any(k < 0) or np.any(k > m):
        raise PolicylabError(
            "successes must satisfy 0 <= successes <= n",
            hint="check that successes and n are counts of the same items",
        )
    z = z_value(confidence)
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / m
        denom = 1.0 + z2 / m
        centre = (p + z2 / (2.0 * m)) / denom
        half = (z / denom) * np.sqrt(p * (1.0 - p) / m + z2 / (4.0 * m * m))
        low = np.clip(centre - half, 0.0, 1.0)
        high = np.clip(centre + half, 0.0, 1.0)
    # Rounding can push the bound a hair past the observed extreme; the exact bound is 0 or 1.
    low = np.where(k == 0, 0.0, low)
    high = np.where(k == m, 1.0, high)
    empty = m == 0
    low = np.where(empty, 0.0, low)
    high = np.where(empty, 1.0, high)
    return low.astype(np.float64), high.astype(np.float64)


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for `successes` out of `n`; (0, 1) when n == 0."""
    low, high = wilson_intervals(successes, n, confidence=confidence)
    return float(low), float(high)


def wilson(successes: int, n: int, *, confidence: float = 0.95) -> Rate:
    """The rate `successes / n` with its Wilson score interval."""
    k, m = _as_count(successes, "successes"), _as_count(n, "n")
    low, high = wilson_interval(k, m, confidence=confidence)
    return Rate(
        successes=k,
        n=m,
        rate=k / m if m else math.nan,
        low=low,
        high=high,
        confidence=confidence,
        defined=m > 0,
    )


def _as_count(value: int, name: str) -> int:
    as_int = int(value)
    if as_int != value or as_int < 0:
        raise PolicylabError(f"{name} must be a non-negative whole number, got {value!r}")
    return as_int
