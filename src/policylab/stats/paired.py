"""Comparing two models on the same items with a binary outcome per item (e.g. harmful compliance).

McNemar, Q. (1947). Note on the sampling error of the difference between correlated proportions
or percentages. Psychometrika 12(2), 153-157. The exact form conditions on the b + c discordant
pairs: under H0 the count b is Binomial(b + c, 1/2), and the two-sided p-value is
min(1, 2 * P(X <= min(b, c))).

The paired bootstrap resamples items (pairs) with replacement. With binary outcomes an item is one
of four kinds (both, A only, B only, neither), so resampling n items is exactly a multinomial draw
of the four kind counts: this gives the same distribution as index resampling at O(n_boot) cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict
from scipy.stats import binom

from policylab.errors import PolicylabError

__all__ = ["McNemarResult", "PairedDifference", "mcnemar_exact", "paired_bootstrap_difference"]


class McNemarResult(BaseModel):
    """Exact McNemar test. `only_a` = items where only A has the outcome (b); `only_b` is c."""

    model_config = ConfigDict(frozen=True)

    n: int
    both: int
    only_a: int
    only_b: int
    neither: int
    statistic: int
    """min(only_a, only_b), as statsmodels reports it."""
    p_value: float
    dropped: int
    """Items left out because either outcome was missing (a grader error)."""


class PairedDifference(BaseModel):
    """rate(A) - rate(B) on the same items, with a paired bootstrap percentile interval."""

    model_config = ConfigDict(frozen=True)

    n: int
    rate_a: float
    rate_b: float
    difference: float
    low: float
    high: float
    confidence: float
    n_boot: int
    seed: int
    dropped: int


def _paired_counts(
    a: Sequence[Any] | NDArray[Any], b: Sequence[Any] | NDArray[Any]
) -> tuple[NDArray[np.int64], int]:
    """Counts of (both, only A, only B, neither) over items where both outcomes are present."""
    la, lb = list(a), list(b)
    if len(la) != len(lb):
        raise PolicylabError(
            f"model A has {len(la)} outcomes but model B has {len(lb)}",
            hint="pass one outcome per item for each model, on the same items in the same order",
        )
    sa, sb = pd.Series(la, dtype=object), pd.Series(lb, dtype=object)
    present = (~sa.isna() & ~sb.isna()).to_numpy(dtype=bool)
    xa = sa[present].astype(bool).to_numpy(dtype=bool)
    xb = sb[present].astype(bool).to_numpy(dtype=bool)
    counts = np.array(
        [(xa & xb).sum(), (xa & ~xb).sum(), (~xa & xb).sum(), (~xa & ~xb).sum()], dtype=np.int64
    )
    return counts, int((~present).sum())


def mcnemar_exact(
    a: Sequence[Any] | NDArray[Any], b: Sequence[Any] | NDArray[Any]
) -> McNemarResult:
    """Exact McNemar test of equal outcome rates for models A and B on the same items.

    `a` and `b` are per-item booleans (True = outcome present, e.g. harmful compliance); items where
    either is None/NaN are dropped and counted in `dropped`.
    """
    counts, dropped = _paired_counts(a, b)
    both, only_a, only_b, neither = (int(c) for c in counts)
    discordant = only_a + only_b
    statistic = min(only_a, only_b)
    p_value = (
        1.0 if discordant == 0 else min(1.0, 2.0 * float(binom.cdf(statistic, discordant, 0.5)))
    )
    return McNemarResult(
        n=int(counts.sum()),
        both=both,
        only_a=only_a,
        only_b=only_b,
        neither=neither,
        statistic=statistic,
        p_value=p_value,
        dropped=dropped,
    )


def paired_bootstrap_difference(
    a: Sequence[Any] | NDArray[Any],
    b: Sequence[Any] | NDArray[Any],
    *,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    seed: int = 0,
) -> PairedDifference:
    """rate(A) - rate(B) with a seeded paired bootstrap percentile interval."""
    if not 0.0 < confidence < 1.0:
        raise PolicylabError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    if n_boot < 100:
        raise PolicylabError(f"n_boot must be at least 100, got {n_boot}")
    counts, dropped = _paired_counts(a, b)
    n = int(counts.sum())
    if n == 0:
        raise PolicylabError("no item has an outcome for both models; nothing to compare")
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, counts / n, size=n_boot)
    # rate_a - rate_b = (both + only_a - both - only_b) / n
    diffs = (draws[:, 1] - draws[:, 2]) / n
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [tail, 1.0 - tail])
    return PairedDifference(
        n=n,
        rate_a=float(counts[0] + counts[1]) / n,
        rate_b=float(counts[0] + counts[2]) / n,
        difference=float(counts[1] - counts[2]) / n,
        low=float(low),
        high=float(high),
        confidence=confidence,
        n_boot=n_boot,
        seed=seed,
        dropped=dropped,
    )
