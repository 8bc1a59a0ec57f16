"""Krippendorff's alpha for nominal, ordinal and interval data, with a bootstrap CI over items.

Krippendorff, K. (2011). Computing Krippendorff's alpha-reliability. Annenberg School for
Communication, University of Pennsylvania. Krippendorff, K. (2019). Content Analysis, 4th ed.

    alpha = 1 - D_o / D_e,  D_o = sum_ck o_ck d2_ck / n,  D_e = sum_ck n_c n_k d2_ck / (n (n - 1))

where o is the coincidence matrix of pairable values (items with at least two ratings), n_c its
margins and n their total. Everything here is computed from the items x values count matrix N
(sparse, one entry per item and value used) in O(ratings + values) memory, never from an
items x values x values array:

- nominal: only o's diagonal matters, o_cc = sum_u n_uc (n_uc - 1) / (m_u - 1);
- interval (d2 = (c - k)^2): the within-item sum over ordered pairs of squared differences is
  2 m_u S2_u - 2 S1_u^2 (S1, S2 the item's sum and sum of squares), and the expected term is
  the same identity over all pairable values, so no values x values matrix is ever built;
- ordinal: Krippendorff's ordinal metric d_ck = sum_{g=c..k} n_g - (n_c + n_k) / 2 equals t_k - t_c
  with the mid-rank t_g = sum_{h<=g} n_h - n_g / 2, so ordinal alpha is interval alpha on mid-ranks.

The interval is a nonparametric bootstrap over pairable items (items are resampled with
replacement; alpha is recomputed from the resampled item statistics; percentile interval).
"""

from __future__ import annotations

import math
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict

from policylab.errors import PolicylabError
from policylab.stats._long import Level, Ratings, check_level, ratings_from_frame

__all__ = ["AlphaResult", "alpha_from_counts", "alpha_from_ratings", "krippendorff_alpha"]

# Bootstrap replicates are processed in chunks of at most this many (replicate x item) weights.
_CHUNK_ELEMENTS = 4_000_000


class AlphaResult(BaseModel):
    """Krippendorff's alpha with its bootstrap percentile interval (None when n_boot = 0)."""

    model_config = ConfigDict(frozen=True)

    alpha: float
    level: Level
    low: float | None
    high: float | None
    confidence: float
    n_boot: int
    seed: int | None
    n_items: int
    n_pairable_items: int
    """Items with at least two ratings; only these carry information about agreement."""
    n_pairable_values: int
    observed_disagreement: float
    expected_disagreement: float


Counts: TypeAlias = NDArray[np.float64] | sp.csr_array

# Below this many items x values cells the count matrix is dense (BLAS products); above, sparse.
_DENSE_CELLS = 1 << 23


class _AlphaStats:
    """Per-item sufficient statistics of the pairable items, for any weighting of items.

    nominal and ordinal keep the items x values count matrix (dense or sparse); interval keeps
    only each item's number of values m, sum S1 and sum of squares S2 (values centred first, so
    m * S2 - S1^2 does not cancel catastrophically for large values).
    """

    def __init__(
        self,
        level: Level,
        m: NDArray[np.float64],
        *,
        counts: Counts | None = None,
        s1: NDArray[np.float64] | None = None,
        s2: NDArray[np.float64] | None = None,
    ):
        keep = m >= 2
        self.level = level
        self.m = m[keep].astype(np.float64)
        self.n_items = int(self.m.size)
        if level == "interval":
            assert s1 is not None
            assert s2 is not None
            self.s1, self.s2 = s1[keep], s2[keep]
            self.q = (self.m * self.s2 - self.s1 * self.s1) / (self.m - 1.0)
            return
        assert counts is not None
        self.counts: Counts = counts if keep.all() else counts[keep]
        if isinstance(self.counts, np.ndarray):
            square_sums = np.einsum("uv,uv->u", self.counts, self.counts)
        else:
            squared = self.counts.copy()
            squared.data = squared.data**2
            square_sums = np.asarray(squared.sum(axis=1)).ravel()
        self.a = (square_sums - self.m) / (self.m - 1.0)
        self._counts_t = (
            self.counts.T if isinstance(self.counts, np.ndarray) else self.counts.T.tocsr()
        )

    @classmethod
    def from_counts(
        cls, counts: Counts, level: Level, values: NDArray[np.float64] | None
    ) -> _AlphaStats:
        m = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
        if level != "interval":
            return cls(level, m, counts=counts)
        assert values is not None
        used = np.asarray(counts.sum(axis=0)).ravel() > 0
        x = values - (float(values[used].mean()) if used.any() else 0.0)
        return cls(level, m, s1=np.asarray(counts @ x), s2=np.asarray(counts @ (x * x)))

    @classmethod
    def from_ratings(cls, ratings: Ratings, level: Level) -> _AlphaStats:
        u, v = ratings.n_items, ratings.n_values
        m = np.bincount(ratings.item, minlength=u).astype(np.float64)
        if level == "interval":
            assert ratings.numeric is not None
            x = ratings.numeric - (ratings.numeric.mean() if ratings.numeric.size else 0.0)
            s1 = np.bincount(ratings.item, weights=x, minlength=u).astype(np.float64)
            s2 = np.bincount(ratings.item, weights=x * x, minlength=u).astype(np.float64)
            return cls(level, m, s1=s1, s2=s2)
        counts: Counts
        if u * v <= _DENSE_CELLS:
            flat = np.bincount(ratings.item * v + ratings.value, minlength=u * v)
            counts = flat.reshape(u, v).astype(np.float64)
        else:
            ones = np.ones(ratings.item.size, dtype=np.float64)
            counts = sp.coo_array((ones, (ratings.item, ratings.value)), shape=(u, v)).tocsr()
        return cls(level, m, counts=counts)

    def _margins(self, w: NDArray[np.float64]) -> NDArray[np.float64]:
        if isinstance(self.counts, np.ndarray):
            return np.asarray(w @ self.counts)
        return np.asarray((self._counts_t @ w.T).T)

    def alpha(self, weights: NDArray[np.float64] | None = None) -> tuple[NDArray[np.float64], ...]:
        """(alpha, D_o, D_e) per row of `weights` (replicates x items); None: every item once."""
        w = np.ones((1, self.n_items)) if weights is None else weights
        n = w @ self.m
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.level == "nominal":
                margins = self._margins(w)
                d_o = (n - w @ self.a) / n
                d_e = (n * n - np.einsum("bv,bv->b", margins, margins)) / (n * (n - 1.0))
            elif self.level == "interval":
                t1, t2 = w @ self.s1, w @ self.s2
                d_o = 2.0 * (w @ self.q) / n
                d_e = 2.0 * (n * t2 - t1 * t1) / (n * (n - 1.0))
            else:
                margins = self._margins(w)
                ranks = np.cumsum(margins, axis=1) - margins / 2.0
                s1 = np.asarray(self.counts @ ranks.T)
                s2 = np.asarray(self.counts @ (ranks * ranks).T)
                q = (self.m[:, None] * s2 - s1 * s1) / (self.m[:, None] - 1.0)
                t1 = np.einsum("bv,bv->b", margins, ranks)
                t2 = np.einsum("bv,bv->b", margins, ranks * ranks)
                d_o = 2.0 * np.einsum("bu,ub->b", w, q) / n
                d_e = 2.0 * (n * t2 - t1 * t1) / (n * (n - 1.0))
            alpha = 1.0 - d_o / d_e
        return alpha, d_o, d_e


def _result(
    stats: _AlphaStats,
    *,
    n_items: int,
    n_boot: int,
    confidence: float,
    seed: int | None,
) -> AlphaResult:
    if not 0.0 < confidence < 1.0:
        raise PolicylabError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    if n_boot < 0:
        raise PolicylabError(f"n_boot must be 0 (no interval) or more, got {n_boot}")
    alpha, d_o, d_e = stats.alpha()
    low = high = None
    if n_boot > 0 and stats.n_items > 0:
        draws = _bootstrap(stats, n_boot=n_boot, seed=seed)
        draws = draws[np.isfinite(draws)]
        if draws.size:
            tail = (1.0 - confidence) / 2.0
            lo, hi = np.quantile(draws, [tail, 1.0 - tail])
            low, high = float(lo), float(hi)
    return AlphaResult(
        alpha=_finite_or_nan(alpha[0]),
        level=stats.level,
        low=low,
        high=high,
        confidence=confidence,
        n_boot=n_boot,
        seed=seed,
        n_items=n_items,
        n_pairable_items=stats.n_items,
        n_pairable_values=int(stats.m.sum()),
        observed_disagreement=_finite_or_nan(d_o[0]),
        expected_disagreement=_finite_or_nan(d_e[0]),
    )


def _bootstrap(stats: _AlphaStats, *, n_boot: int, seed: int | None) -> NDArray[np.float64]:
    """Alpha for `n_boot` resamples of the pairable items.

    Replicate i draws `rng.integers(0, u, size=u, dtype=np.int32)` (u pairable items, in item
    order) and weights each item by how often it was drawn; replicates are evaluated in chunks.
    """
    rng = np.random.default_rng(seed)
    u = stats.n_items
    chunk = max(1, _CHUNK_ELEMENTS // max(u, 1))
    out = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        weights = np.empty((b, u), dtype=np.float64)
        for row in range(b):
            weights[row] = np.bincount(rng.integers(0, u, size=u, dtype=np.int32), minlength=u)
        out[start : start + b] = stats.alpha(weights)[0]
    return out


def _finite_or_nan(x: Any) -> float:
    value = float(x)
    return value if math.isfinite(value) else math.nan


def alpha_from_ratings(
    ratings: Ratings,
    *,
    level: str = "nominal",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> AlphaResult:
    """Krippendorff's alpha of already-coded ratings (see `krippendorff_alpha`)."""
    lvl = check_level(level)
    if lvl == "interval" and ratings.numeric is None:
        raise PolicylabError("interval alpha needs numeric values")
    stats = _AlphaStats.from_ratings(ratings, lvl)
    return _result(stats, n_items=ratings.n_items, n_boot=n_boot, confidence=confidence, seed=seed)


def krippendorff_alpha(
    frame: pd.DataFrame,
    *,
    item: str = "item",
    rater: str = "rater",
    value: str = "value",
    level: str = "nominal",
    order: list[Any] | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    source: str = "data",
) -> AlphaResult:
    """Krippendorff's alpha of long-format ratings (one row per item, rater and value).

    `level` is nominal, ordinal or interval. Ordinal labels that are not numbers need `order`
    (lowest first). `n_boot` bootstrap replicates over items give the percentile interval at
    `confidence` (0 skips it); `seed` makes it reproducible.
    """
    ratings = ratings_from_frame(
        frame, item=item, rater=rater, value=value, level=level, order=order, source=source
    )
    return alpha_from_ratings(ratings, level=level, n_boot=n_boot, confidence=confidence, seed=seed)


def alpha_from_counts(
    counts: ArrayLike | sp.sparray | sp.spmatrix,
    *,
    level: str = "nominal",
    values: ArrayLike | None = None,
) -> float:
    """Alpha from an items x values count matrix (how many raters gave each value to each item).

    Columns are values in order (lowest first for ordinal and interval); `values` gives the
    columns' numbers for interval data (default 0, 1, 2, ...), as in the `krippendorff` package.
    """
    lvl = check_level(level)
    matrix: Counts = (
        sp.csr_array(counts, dtype=np.float64)
        if sp.issparse(counts)
        else np.asarray(counts, dtype=np.float64)
    )
    if matrix.ndim != 2:
        raise PolicylabError("counts must be a 2-D items x values matrix")
    entries = matrix.data if isinstance(matrix, sp.csr_array) else matrix
    if np.any(entries < 0):
        raise PolicylabError("counts must be non-negative")
    x = None
    if lvl == "interval":
        x = (
            np.arange(matrix.shape[1], dtype=np.float64)
            if values is None
            else np.asarray(values, dtype=np.float64)
        )
        if x.shape != (matrix.shape[1],):
            raise PolicylabError(
                f"values has {x.size} entries but counts has {matrix.shape[1]} columns"
            )
    return _finite_or_nan(_AlphaStats.from_counts(matrix, lvl, x).alpha()[0][0])
