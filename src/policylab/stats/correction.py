"""Correcting an observed rate for a grader's measured errors (Rogan–Gladen).

Rogan, W. J. & Gladen, B. (1978). Estimating prevalence from the results of a screening test.
American Journal of Epidemiology 107(1), 71-76.

If a grader flags items with sensitivity Se and specificity Sp, the rate it reports is
p = Se * pi + (1 - Sp) * (1 - pi) for a true rate pi, so

    pi = (p + Sp - 1) / (Se + Sp - 1),

clipped to [0, 1]. Se and Sp are themselves estimates from a gold set, so the interval must carry
two uncertainties: the sampling of the test items and the sampling of the gold items. `correct_rate`
does this with a parametric bootstrap that redraws the observed count, the gold positives' hits and
the gold negatives' correct rejections from their binomials, applies the correction to each draw,
and takes percentiles. `correct_rate_known` is the closed form when Se and Sp are known exactly: it
maps the Wilson interval of p through the (increasing, linear) correction.

Limitation: a gold count of 0 misses (Se = 1) or 0 false alarms (Sp = 1) gives that term no
variability in the binomial bootstrap; report the gold counts beside the interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from policylab.errors import PolicylabError
from policylab.stats._behaviors import is_missing
from policylab.stats.intervals import Rate, wilson

__all__ = ["CorrectedRate", "GoldCounts", "correct_rate", "correct_rate_known", "rogan_gladen"]


class GoldCounts(BaseModel):
    """A grader's confusion counts on a gold set, for one binary question (e.g. harmful or not)."""

    model_config = ConfigDict(frozen=True)

    true_positive: int
    false_negative: int
    true_negative: int
    false_positive: int
    errors: int = 0
    """Gold items the grader failed on; left out of the counts above (see `from_labels`)."""

    @property
    def positives(self) -> int:
        return self.true_positive + self.false_negative

    @property
    def negatives(self) -> int:
        return self.true_negative + self.false_positive

    @property
    def sensitivity(self) -> Rate:
        return wilson(self.true_positive, self.positives)

    @property
    def specificity(self) -> Rate:
        return wilson(self.true_negative, self.negatives)

    @classmethod
    def from_labels(
        cls, gold: Sequence[Any] | NDArray[Any], predicted: Sequence[Any] | NDArray[Any]
    ) -> GoldCounts:
        """Counts from per-item gold and predicted booleans (True = positive).

        A prediction of None/NaN is a grader error. It is left out of the counts and reported in
        `errors`: the correction is applied to rates whose denominators also leave errors out
        (see `refusal`), so Se and Sp must be measured the same way.
        """
        g = list(gold)
        p = list(predicted)
        if len(g) != len(p):
            raise PolicylabError(
                f"gold has {len(g)} items but predicted has {len(p)}",
                hint="pass one gold and one predicted label per gold item, in the same order",
            )
        tp = fn = tn = fp = errors = 0
        for i, (gi, pi) in enumerate(zip(g, p, strict=True)):
            if is_missing(gi):
                raise PolicylabError(f"gold[{i}] is missing; every gold item needs a label")
            if is_missing(pi):
                errors += 1
            elif bool(gi):
                tp, fn = (tp + 1, fn) if bool(pi) else (tp, fn + 1)
            else:
                tn, fp = (tn + 1, fp) if not bool(pi) else (tn, fp + 1)
        return cls(
            true_positive=tp, false_negative=fn, true_negative=tn, false_positive=fp, errors=errors
        )


class CorrectedRate(BaseModel):
    """A grader-reported rate corrected for the grader's sensitivity and specificity."""

    model_config = ConfigDict(frozen=True)

    observed: Rate
    sensitivity: float
    specificity: float
    corrected: float
    """Rogan–Gladen estimate clipped to [0, 1]."""
    unclipped: float
    low: float
    high: float
    confidence: float
    method: Literal["parametric-bootstrap", "known-se-sp"]
    gold: GoldCounts | None = None
    n_boot: int = 0
    n_degenerate: int = 0
    """Bootstrap draws where Se* + Sp* <= 1 (correction undefined); left out of the percentiles."""
    seed: int | None = None


@overload
def rogan_gladen(observed_rate: float, sensitivity: float, specificity: float) -> float: ...
@overload
def rogan_gladen(
    observed_rate: NDArray[np.float64], sensitivity: float, specificity: float
) -> NDArray[np.float64]: ...
def rogan_gladen(
    observed_rate: float | NDArray[np.float64], sensitivity: float, specificity: float
) -> float | NDArray[np.float64]:
    """True-rate estimate (p + Sp - 1) / (Se + Sp - 1), clipped to [0, 1]."""
    youden = sensitivity + specificity - 1.0
    if youden <= 0:
        raise PolicylabError(
            f"sensitivity + specificity = {sensitivity + specificity:.3f} <= 1: the grader does no "
            "better than chance, so its rate cannot be corrected",
            hint="improve the grader, or check that positive and negative are not swapped in gold",
        )
    corrected = np.clip((np.asarray(observed_rate) + specificity - 1.0) / youden, 0.0, 1.0)
    if np.ndim(corrected) == 0:
        return float(corrected)
    return corrected.astype(np.float64)


def correct_rate(
    positives: int,
    n: int,
    gold: GoldCounts,
    *,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    seed: int = 0,
) -> CorrectedRate:
    """Correct `positives / n` for the grader's errors measured on `gold`, with a bootstrap CI."""
    observed = wilson(positives, n, confidence=confidence)
    if n == 0:
        raise PolicylabError("cannot correct a rate with n = 0 test items")
    if gold.positives == 0 or gold.negatives == 0:
        raise PolicylabError(
            f"the gold set has {gold.positives} positive and {gold.negatives} negative items; "
            "sensitivity and specificity need at least one of each",
            hint="label gold items of both kinds before correcting",
        )
    if n_boot < 100:
        raise PolicylabError(f"n_boot must be at least 100, got {n_boot}")
    se = gold.true_positive / gold.positives
    sp = gold.true_negative / gold.negatives
    unclipped = (observed.rate + sp - 1.0) / (se + sp - 1.0) if se + sp > 1 else math.nan
    point = rogan_gladen(observed.rate, se, sp)

    rng = np.random.default_rng(seed)
    p_star = rng.binomial(n, observed.rate, size=n_boot) / n
    se_star = rng.binomial(gold.positives, se, size=n_boot) / gold.positives
    sp_star = rng.binomial(gold.negatives, sp, size=n_boot) / gold.negatives
    youden = se_star + sp_star - 1.0
    ok = youden > 0
    if not ok.any():
        raise PolicylabError(
            "every bootstrap draw had sensitivity + specificity <= 1; the gold set is too small "
            "or the grader too weak to correct this rate",
            hint="label more gold items",
        )
    draws = np.clip((p_star[ok] + sp_star[ok] - 1.0) / youden[ok], 0.0, 1.0)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return CorrectedRate(
        observed=observed,
        sensitivity=se,
        specificity=sp,
        corrected=point,
        unclipped=float(unclipped),
        low=float(low),
        high=float(high),
        confidence=confidence,
        method="parametric-bootstrap",
        gold=gold,
        n_boot=n_boot,
        n_degenerate=int((~ok).sum()),
        seed=seed,
    )


def correct_rate_known(
    positives: int, n: int, *, sensitivity: float, specificity: float, confidence: float = 0.95
) -> CorrectedRate:
    """Closed form for known Se and Sp: the Wilson interval of p mapped through the correction."""
    observed = wilson(positives, n, confidence=confidence)
    if n == 0:
        raise PolicylabError("cannot correct a rate with n = 0 test items")
    point = rogan_gladen(observed.rate, sensitivity, specificity)
    return CorrectedRate(
        observed=observed,
        sensitivity=sensitivity,
        specificity=specificity,
        corrected=point,
        unclipped=(observed.rate + specificity - 1.0) / (sensitivity + specificity - 1.0),
        low=rogan_gladen(observed.low, sensitivity, specificity),
        high=rogan_gladen(observed.high, sensitivity, specificity),
        confidence=confidence,
        method="known-se-sp",
    )
