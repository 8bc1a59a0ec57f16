"""Inter-annotator agreement from long-format ratings (item, rater, value).

- Krippendorff's alpha: see `policylab.stats.alpha` (re-exported here).
- Fleiss' kappa (Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters.
  Psychological Bulletin 76(5), 378-382), over items with at least two ratings. With m_u ratings
  on item u and n_uj of them giving value j: P_u = sum_j n_uj (n_uj - 1) / (m_u (m_u - 1)),
  p_j = sum_u n_uj / sum_u m_u, kappa = (mean P_u - sum p_j^2) / (1 - sum p_j^2). With a constant
  number of raters this is Fleiss' formula exactly; with varying numbers it is its usual
  generalisation. The per-value kappa_j is Fleiss' kappa of the data dichotomised into j / not j.
- Cohen's kappa (Cohen, J. (1960). A coefficient of agreement for nominal scales. Educational and
  Psychological Measurement 20(1), 37-46) for each pair of raters, on the items both rated.
- Percent agreement: the share of agreeing rater pairs within an item, averaged over items with at
  least two ratings (equal weight per item). It is the mean P_u above.
- Annotator versus the rest: every (annotator, other rater) pair of ratings on a shared item,
  pooled; percent agreement and Cohen's kappa of that pooled table (annotator's value x the other
  rater's value).

Kappas and percent agreement treat values as unordered categories whatever the level; alpha uses the
level's distance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from policylab.errors import PolicylabError
from policylab.stats._behaviors import is_missing
from policylab.stats._long import (
    Level,
    Ratings,
    check_level,
    plain,
    ratings_from_frame,
    require_columns,
)
from policylab.stats.alpha import (
    AlphaResult,
    alpha_from_counts,
    alpha_from_ratings,
    krippendorff_alpha,
)

__all__ = [
    "AgreementReport",
    "AlphaResult",
    "AnnotatorAgreement",
    "FleissResult",
    "PairKappa",
    "agreement_by",
    "agreement_report",
    "alpha_from_counts",
    "cohen_kappa",
    "fleiss_kappa",
    "krippendorff_alpha",
    "pairwise_cohen_kappa",
    "percent_agreement",
]


class FleissResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    kappa: float
    per_value: dict[str, float]
    n_items: int
    """Items with at least two ratings."""


class PairKappa(BaseModel):
    model_config = ConfigDict(frozen=True)

    rater_a: str
    rater_b: str
    n_items: int
    """Items both raters rated."""
    kappa: float
    percent_agreement: float


class AnnotatorAgreement(BaseModel):
    model_config = ConfigDict(frozen=True)

    rater: str
    n_items: int
    """Items this annotator rated that someone else also rated."""
    n_pairs: int
    percent_agreement: float
    kappa: float


class AgreementReport(BaseModel):
    """Every agreement statistic for one set of ratings."""

    model_config = ConfigDict(frozen=True)

    level: Level
    n_items: int
    n_raters: int
    n_ratings: int
    alpha: AlphaResult
    fleiss: FleissResult
    percent_agreement: float
    pairwise: list[PairKappa]
    per_annotator: list[AnnotatorAgreement]

    def summary(self) -> dict[str, Any]:
        """The headline numbers (the `policylab agreement --format json` keys)."""
        ci = None if self.alpha.low is None else [self.alpha.low, self.alpha.high]
        return {
            "krippendorff_alpha": _json_float(self.alpha.alpha),
            "alpha_ci": ci,
            "fleiss_kappa": _json_float(self.fleiss.kappa),
            "percent_agreement": _json_float(self.percent_agreement),
            "pairwise_cohen_kappa": [
                {
                    "rater_a": p.rater_a,
                    "rater_b": p.rater_b,
                    "n_items": p.n_items,
                    "kappa": _json_float(p.kappa),
                }
                for p in self.pairwise
            ],
            "n_items": self.n_items,
            "n_raters": self.n_raters,
        }


def _json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _kappa(
    n: NDArray[np.float64], agree: NDArray[np.float64], margin_dot: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Cohen's kappa from pair counts, agreements and sum_v rowmargin_v * colmargin_v."""
    with np.errstate(divide="ignore", invalid="ignore"):
        po = agree / n
        pe = margin_dot / (n * n)
        kappa = (po - pe) / (1.0 - pe)
    return np.where((n > 0) & (pe < 1.0), kappa, np.nan)


def _item_value_counts(
    ratings: Ratings,
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
    """(item, value, count) for every item and value used, as a sparse triple."""
    counts = sp.coo_array(
        (np.ones(ratings.item.size), (ratings.item, ratings.value)),
        shape=(ratings.n_items, ratings.n_values),
    ).tocsr()
    coo = counts.tocoo()
    return coo.row.astype(np.intp), coo.col.astype(np.intp), coo.data


def _within_item_pairs(ratings: Ratings) -> tuple[NDArray[np.intp], ...]:
    """Pairs of ratings on one item: (rater_a, rater_b, value_a, value_b), rater_a < rater_b."""
    order = np.lexsort((ratings.rater, ratings.item))
    item, rater, value = ratings.item[order], ratings.rater[order], ratings.value[order]
    per_item = np.bincount(item, minlength=ratings.n_items)
    max_m = int(per_item.max()) if per_item.size else 0
    parts: list[tuple[NDArray[np.intp], ...]] = []
    for d in range(1, max_m):
        same = np.flatnonzero(item[:-d] == item[d:])
        parts.append((rater[same], rater[same + d], value[same], value[same + d]))
    if not parts:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty, empty, empty
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))


def _margin_dot(
    group: NDArray[np.intp],
    n_groups: int,
    left: NDArray[np.intp],
    right: NDArray[np.intp],
    n_values: int,
) -> NDArray[np.float64]:
    """Per group g: sum_v #(left == v in g) * #(right == v in g), with no dense groups x values."""
    ones = np.ones(group.size)
    a = sp.coo_array((ones, (group, left)), shape=(n_groups, n_values)).tocsr()
    b = sp.coo_array((ones, (group, right)), shape=(n_groups, n_values)).tocsr()
    return np.asarray(a.multiply(b).sum(axis=1)).ravel()


def fleiss_from_ratings(ratings: Ratings) -> FleissResult:
    """Fleiss' kappa and per-value kappas of coded ratings."""
    items, values, counts = _item_value_counts(ratings)
    m = np.bincount(ratings.item, minlength=ratings.n_items).astype(np.float64)
    pairable = m >= 2
    keep = pairable[items]
    items, values, counts = items[keep], values[keep], counts[keep]
    n_items = int(pairable.sum())
    if n_items == 0:
        return FleissResult(kappa=math.nan, per_value={}, n_items=0)
    total = m[pairable].sum()
    p = np.bincount(values, weights=counts, minlength=ratings.n_values) / total
    agree = np.bincount(items, weights=counts * (counts - 1.0), minlength=ratings.n_items)
    p_item = agree[pairable] / (m[pairable] * (m[pairable] - 1.0))
    p_bar, p_e = float(p_item.mean()), float(p @ p)
    kappa = (p_bar - p_e) / (1.0 - p_e) if p_e < 1.0 else math.nan
    # kappa_j = 1 - sum_u n_uj (m_u - n_uj) / (m_u - 1) / (sum_u m_u * p_j * q_j)
    disagree = np.bincount(
        values, weights=counts * (m[items] - counts) / (m[items] - 1.0), minlength=ratings.n_values
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        per = 1.0 - disagree / (total * p * (1.0 - p))
    per_value = {
        str(v): float(per[j]) if math.isfinite(per[j]) else math.nan
        for j, v in enumerate(ratings.domain)
        if p[j] > 0
    }
    return FleissResult(kappa=float(kappa), per_value=per_value, n_items=n_items)


def percent_agreement_from_ratings(ratings: Ratings) -> float:
    """Mean share of agreeing rater pairs per item, over items with at least two ratings."""
    items, _values, counts = _item_value_counts(ratings)
    m = np.bincount(ratings.item, minlength=ratings.n_items).astype(np.float64)
    pairable = m >= 2
    if not pairable.any():
        return math.nan
    agree = np.bincount(items, weights=counts * (counts - 1.0), minlength=ratings.n_items)
    return float((agree[pairable] / (m[pairable] * (m[pairable] - 1.0))).mean())


def pairwise_from_ratings(ratings: Ratings) -> list[PairKappa]:
    """Cohen's kappa for every pair of raters with at least one item in common."""
    ra, rb, va, vb = _within_item_pairs(ratings)
    if ra.size == 0:
        return []
    pair_codes, pair_keys = pd.factorize(ra * ratings.n_raters + rb, sort=True)
    pair_codes = pair_codes.astype(np.intp)
    n_pairs = len(pair_keys)
    n = np.bincount(pair_codes, minlength=n_pairs).astype(np.float64)
    agree = np.bincount(pair_codes, weights=va == vb, minlength=n_pairs).astype(np.float64)
    dot = _margin_dot(pair_codes, n_pairs, va, vb, ratings.n_values)
    kappa = _kappa(n, agree, dot)
    out = []
    for j, key in enumerate(np.asarray(pair_keys)):
        a, b = divmod(int(key), ratings.n_raters)
        out.append(
            PairKappa(
                rater_a=str(ratings.raters[a]),
                rater_b=str(ratings.raters[b]),
                n_items=int(n[j]),
                kappa=float(kappa[j]),
                percent_agreement=float(agree[j] / n[j]),
            )
        )
    return out


def per_annotator_from_ratings(ratings: Ratings) -> list[AnnotatorAgreement]:
    """Each annotator against everyone else, pooled over shared items."""
    ra, rb, va, vb = _within_item_pairs(ratings)
    own = np.concatenate([ra, rb])
    own_v, other_v = np.concatenate([va, vb]), np.concatenate([vb, va])
    r = ratings.n_raters
    n = np.bincount(own, minlength=r).astype(np.float64)
    agree = np.bincount(own, weights=own_v == other_v, minlength=r).astype(np.float64)
    dot = _margin_dot(own, r, own_v, other_v, ratings.n_values)
    kappa = _kappa(n, agree, dot)
    # Items an annotator shares with someone: their ratings on items with >= 2 ratings.
    m = np.bincount(ratings.item, minlength=ratings.n_items)
    shared = np.bincount(ratings.rater[m[ratings.item] >= 2], minlength=r)
    return [
        AnnotatorAgreement(
            rater=str(ratings.raters[i]),
            n_items=int(shared[i]),
            n_pairs=int(n[i]),
            percent_agreement=float(agree[i] / n[i]) if n[i] else math.nan,
            kappa=float(kappa[i]),
        )
        for i in range(r)
    ]


def report_from_ratings(
    ratings: Ratings,
    *,
    level: str = "nominal",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
) -> AgreementReport:
    lvl = check_level(level)
    return AgreementReport(
        level=lvl,
        n_items=ratings.n_items,
        n_raters=ratings.n_raters,
        n_ratings=int(ratings.item.size),
        alpha=alpha_from_ratings(
            ratings, level=lvl, n_boot=n_boot, confidence=confidence, seed=seed
        ),
        fleiss=fleiss_from_ratings(ratings),
        percent_agreement=percent_agreement_from_ratings(ratings),
        pairwise=pairwise_from_ratings(ratings),
        per_annotator=per_annotator_from_ratings(ratings),
    )


def agreement_report(
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
) -> AgreementReport:
    """Alpha (with bootstrap CI), Fleiss' kappa, percent agreement, pairwise Cohen's kappa and
    each annotator against the rest, for long-format ratings."""
    ratings = ratings_from_frame(
        frame, item=item, rater=rater, value=value, level=level, order=order, source=source
    )
    return report_from_ratings(
        ratings, level=level, n_boot=n_boot, confidence=confidence, seed=seed
    )


def agreement_by(
    frame: pd.DataFrame,
    by: str,
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
) -> dict[Any, AgreementReport]:
    """One `AgreementReport` per value of the item-level column `by` (e.g. the policy category).

    Each item must have a single value of `by`.
    """
    require_columns(frame, {"group": by, "item": item}, source=source)
    per_item = frame.groupby(item, sort=False)[by].nunique(dropna=False)
    if (per_item > 1).any():
        bad = plain(per_item[per_item > 1].index[0])
        raise PolicylabError(
            f"{source}: item {bad!r} has more than one {by!r} value",
            hint=f"{by!r} must be a property of the item, the same on every rating of it",
        )
    reports: dict[Any, AgreementReport] = {}
    for key, part in frame.groupby(by, sort=True, dropna=False):
        reports[key] = agreement_report(
            part,
            item=item,
            rater=rater,
            value=value,
            level=level,
            order=order,
            n_boot=n_boot,
            confidence=confidence,
            seed=seed,
            source=f"{source} ({by}={key!r})",
        )
    return reports


def fleiss_kappa(
    frame: pd.DataFrame, *, item: str = "item", rater: str = "rater", value: str = "value"
) -> FleissResult:
    """Fleiss' kappa of long-format ratings."""
    return fleiss_from_ratings(ratings_from_frame(frame, item=item, rater=rater, value=value))


def percent_agreement(
    frame: pd.DataFrame, *, item: str = "item", rater: str = "rater", value: str = "value"
) -> float:
    """Pairwise percent agreement of long-format ratings (see the module docstring)."""
    return percent_agreement_from_ratings(
        ratings_from_frame(frame, item=item, rater=rater, value=value)
    )


def pairwise_cohen_kappa(
    frame: pd.DataFrame, *, item: str = "item", rater: str = "rater", value: str = "value"
) -> list[PairKappa]:
    """Cohen's kappa for each pair of raters, on the items both rated."""
    return pairwise_from_ratings(ratings_from_frame(frame, item=item, rater=rater, value=value))


def cohen_kappa(a: Sequence[Any] | NDArray[Any], b: Sequence[Any] | NDArray[Any]) -> float:
    """Cohen's kappa of two raters' labels on the same items; pairs missing a label are dropped."""
    la, lb = list(a), list(b)
    if len(la) != len(lb):
        raise PolicylabError(
            f"rater A has {len(la)} labels but rater B has {len(lb)}",
            hint="pass one label per item for each rater, on the same items in the same order",
        )
    pairs = [(x, y) for x, y in zip(la, lb, strict=True) if not (is_missing(x) or is_missing(y))]
    if not pairs:
        return math.nan
    codes, _uniques = pd.factorize(pd.Series([v for pair in pairs for v in pair], dtype=object))
    ca, cb = codes[0::2], codes[1::2]
    n = np.array([len(pairs)], dtype=np.float64)
    agree = np.array([float((ca == cb).sum())])
    v = int(codes.max()) + 1
    dot = np.array([float(np.bincount(ca, minlength=v) @ np.bincount(cb, minlength=v))])
    return float(_kappa(n, agree, dot)[0])
