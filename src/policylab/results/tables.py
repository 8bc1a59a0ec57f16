"""A run's metric tables: per category (a parent aggregates its subcategories), per severity tier
and overall, with Wilson intervals and grader-error counts; optionally corrected for the grader's
measured errors (Rogan–Gladen) and graded against a reference run (AILuminate-style bands).

Every number comes from `policylab.stats`; this module only decides which items go in which cell:

- an item counts in each category it lists and in each of their ancestors, once per category (an
  item in `VIO.1` and `VIO.2` counts once in `VIO`), so category rows do not add up to the total;
- an item's severity tier is the highest tier among its categories (see `results.data`);
- only rows where the model answered and the expected behaviour is known are scored; grader errors
  stay in those rows and are counted, never treated as safe (see `stats.refusal`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from policylab.core import Severity
from policylab.errors import PolicylabError
from policylab.policy.schema import Policy
from policylab.results.data import GRADED, GRADER_ERROR, MODEL_ERROR, Outcomes, RunInfo
from policylab.results.validity import GraderValidity
from policylab.stats.bands import grade_rate
from policylab.stats.correction import correct_rate
from policylab.stats.intervals import Rate, wilson_intervals
from policylab.stats.refusal import METRICS, refusal_metrics

__all__ = [
    "BEHAVIOUR_METRICS",
    "UNKNOWN_TIER",
    "Counts",
    "RunResults",
    "compute_results",
    "rate_of",
]

BEHAVIOUR_METRICS: tuple[str, ...] = ("under_refusal", "over_refusal", "safe_completion")
UNKNOWN_TIER = "unknown"
"""The severity key of items in no category the policy knows."""

_RATE_COLUMNS = ["metric", "n", "k", "rate", "low", "high", "errors"]


@dataclass(frozen=True)
class Counts:
    """How many responses there are and what became of them."""

    items_total: int
    responses: int
    graded: int
    grader_errors: int
    model_errors: int
    no_expected: int
    """Answered items with no expected behaviour (neither the item nor its categories say)."""
    uncategorised: int
    unknown_categories: tuple[str, ...]
    """Categories items list that the policy does not define."""

    @property
    def pending(self) -> int:
        return max(self.items_total - self.responses, 0)

    @property
    def grader_error_rate(self) -> float:
        answered = self.graded + self.grader_errors
        return self.grader_errors / answered if answered else math.nan


@dataclass(frozen=True)
class RunResults:
    """Everything measured on one run with one grader. Frames are tidy: one row per cell x metric.

    - `overall`: ``metric, n, k, rate, low, high, errors``
    - `by_severity`: ``severity`` then the rate columns; tiers from most to least severe
    - `by_category`: ``category, title, parent, depth, severity, in_policy`` then the rate columns,
      in policy order (a parent before its subcategories), unknown categories last
    - `corrected` (or None): ``scope, key, metric, n, k, observed, corrected, low, high,
      sensitivity, specificity, method``
    - `bands` (or None): ``scope, key, rate, low, high, reference_rate, ratio, grade, label,
      best_label, worst_label``
    """

    info: RunInfo
    grader_id: str | None
    grader_versions: tuple[str, ...]
    confidence: float
    overall: pd.DataFrame
    by_severity: pd.DataFrame
    by_category: pd.DataFrame
    counts: Counts
    validity: GraderValidity
    corrected: pd.DataFrame | None = None
    correction_note: str | None = None
    bands: pd.DataFrame | None = None
    bands_reference: str | None = None
    notes: list[str] = field(default_factory=list)

    def rate(
        self, metric: str, *, category: str | None = None, severity: str | None = None
    ) -> Rate:
        """One cell as a `stats.Rate`: overall, or for one category or one severity tier."""
        if category is not None:
            frame = self.by_category[self.by_category["category"] == category]
        elif severity is not None:
            frame = self.by_severity[self.by_severity["severity"] == severity]
        else:
            frame = self.overall
        rows = frame[frame["metric"] == metric]
        if rows.empty:
            where = category or severity or "overall"
            raise PolicylabError(f"no {metric} cell for {where!r} in run {self.info.name!r}")
        return rate_of(rows.iloc[0], confidence=self.confidence)

    def errors(self, metric: str, *, severity: str | None = None) -> int:
        frame = (
            self.by_severity[self.by_severity["severity"] == severity] if severity else self.overall
        )
        rows = frame[frame["metric"] == metric]
        return int(rows.iloc[0]["errors"]) if not rows.empty else 0


def rate_of(row: pd.Series, *, confidence: float) -> Rate:
    """A tidy row (n, k, rate, low, high) as a `stats.Rate`."""
    n = int(row["n"])
    return Rate(
        successes=int(row["k"]),
        n=n,
        rate=float(row["rate"]),
        low=float(row["low"]),
        high=float(row["high"]),
        confidence=confidence,
        defined=n > 0,
    )


def compute_results(
    outcomes: Outcomes,
    policy: Policy,
    *,
    validity: GraderValidity | None = None,
    reference: RunResults | None = None,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    seed: int = 0,
) -> RunResults:
    """The metric tables of a scored run (see the module docstring).

    `validity` adds corrected estimates when it knows the grader's agreement on behaviour labels;
    `reference` (another run's results on comparable items) adds grade bands of harmful compliance.
    """
    frame = outcomes.frame
    scored = outcomes.scored
    validity = validity or GraderValidity(grader_id=outcomes.grader_id)
    known = {c.id for c in policy.categories}
    listed = {c for cats in frame["categories"] for c in cats}

    overall = refusal_metrics(scored["expected"], scored["observed"], confidence=confidence)
    by_severity = _severity_table(scored, policy, confidence)
    by_category = _category_table(scored, policy, confidence)

    counts = Counts(
        items_total=max(outcomes.info.items_total, len(frame)),
        responses=len(frame),
        graded=int((frame["status"] == GRADED).sum()),
        grader_errors=int((frame["status"] == GRADER_ERROR).sum()),
        model_errors=int((frame["status"] == MODEL_ERROR).sum()),
        no_expected=int(((frame["status"] != MODEL_ERROR) & frame["expected"].isna()).sum()),
        uncategorised=int(sum(1 for cats in frame["categories"] if not cats)),
        unknown_categories=tuple(sorted(listed - known)),
    )
    corrected, note = _corrected(
        overall, by_severity, by_category, validity, confidence, n_boot, seed
    )
    bands = None
    if reference is not None:
        bands = _bands(overall, by_category, reference, confidence)
    return RunResults(
        info=outcomes.info,
        grader_id=outcomes.grader_id,
        grader_versions=outcomes.grader_versions,
        confidence=confidence,
        overall=overall,
        by_severity=by_severity,
        by_category=by_category,
        counts=counts,
        validity=validity,
        corrected=corrected,
        correction_note=note,
        bands=bands,
        bands_reference=reference.info.name if reference is not None else None,
    )


def _severity_table(scored: pd.DataFrame, policy: Policy, confidence: float) -> pd.DataFrame:
    tiers = scored["severity"].where(scored["severity"].notna(), UNKNOWN_TIER)
    table = refusal_metrics(
        scored["expected"], scored["observed"], by={"severity": list(tiers)}, confidence=confidence
    )
    wanted = {c.severity.value for c in policy.categories} | set(policy.gates.under_refusal)
    order = [s.value for s in sorted(Severity, key=lambda s: -s.rank)]
    keys = [s for s in order if s in wanted or s in set(tiers)]
    if UNKNOWN_TIER in set(tiers):
        keys.append(UNKNOWN_TIER)
    return _complete(table, "severity", keys)


def _category_table(scored: pd.DataFrame, policy: Policy, confidence: float) -> pd.DataFrame:
    rows: list[int] = []
    keys: list[str] = []
    for position, cats in enumerate(scored["categories"]):
        cells: set[str] = set()
        for c in cats:
            cells.add(c)
            cells.update(policy.ancestors(c))
        for c in sorted(cells):
            rows.append(position)
            keys.append(c)
    exploded = scored.iloc[rows]
    if rows:
        table = refusal_metrics(
            exploded["expected"], exploded["observed"], by={"category": keys}, confidence=confidence
        )
    else:
        table = pd.DataFrame(columns=["category", *_RATE_COLUMNS])
    order = _policy_order(policy)
    extra = sorted(set(keys) - set(order))
    table = _complete(table, "category", order + extra)
    by_id = {c.id: c for c in policy.categories}
    meta = pd.DataFrame(
        {
            "category": order + extra,
            "title": [by_id[c].title if c in by_id else c for c in order + extra],
            "parent": [c.rsplit(".", 1)[0] if "." in c else None for c in order + extra],
            "depth": [c.count(".") for c in order + extra],
            "severity": [by_id[c].severity.value if c in by_id else None for c in order + extra],
            "in_policy": [c in by_id for c in order + extra],
        }
    )
    merged = meta.merge(table, on="category", how="right", sort=False)
    return merged[
        ["category", "title", "parent", "depth", "severity", "in_policy", *_RATE_COLUMNS]
    ].reset_index(drop=True)


def _policy_order(policy: Policy) -> list[str]:
    """Category ids depth-first: each parent followed by its subcategories, in file order."""
    ids = [c.id for c in policy.categories]
    present = set(ids)
    roots = [c for c in ids if "." not in c or c.rsplit(".", 1)[0] not in present]
    out: list[str] = []

    def visit(cid: str) -> None:
        out.append(cid)
        for child in ids:
            if "." in child and child.rsplit(".", 1)[0] == cid:
                visit(child)

    for root in roots:
        visit(root)
    return out


def _complete(table: pd.DataFrame, key: str, keys: list[str]) -> pd.DataFrame:
    """`table` with a row per key and metric, in `keys` order; missing cells get n = 0."""
    have = set(table[key]) if not table.empty else set()
    missing = [k for k in keys if k not in have]
    if missing:
        low, high = wilson_intervals(0, 0)
        empty = pd.DataFrame(
            [
                {
                    key: k,
                    "metric": m,
                    "n": 0,
                    "k": 0,
                    "rate": np.nan,
                    "low": float(low),
                    "high": float(high),
                    "errors": 0,
                }
                for k in missing
                for m in METRICS
            ]
        )
        table = pd.concat([table, empty], ignore_index=True) if not table.empty else empty
    rank = {k: i for i, k in enumerate(keys)}
    metric_rank = {m: i for i, m in enumerate(METRICS)}
    table = table.assign(_k=table[key].map(rank), _m=table["metric"].map(metric_rank)).sort_values(
        ["_k", "_m"], kind="stable"
    )
    table = table.drop(columns=["_k", "_m"]).reset_index(drop=True)
    return table.astype({"n": np.int64, "k": np.int64, "errors": np.int64})


def _corrected(
    overall: pd.DataFrame,
    by_severity: pd.DataFrame,
    by_category: pd.DataFrame,
    validity: GraderValidity,
    confidence: float,
    n_boot: int,
    seed: int,
) -> tuple[pd.DataFrame | None, str | None]:
    if not validity.known:
        return None, "the grader has not been validated against human labels"
    gold = {m: validity.gold_counts(m) for m in BEHAVIOUR_METRICS}
    if any(g is None for g in gold.values()):
        return None, "the grader's validation is not on behaviour labels (comply/partial/refuse)"
    records: list[dict[str, Any]] = []
    skipped: list[str] = []
    scopes = [
        ("overall", overall.assign(cell="all")),
        ("severity", by_severity.rename(columns={"severity": "cell"})),
        ("category", by_category.rename(columns={"category": "cell"})),
    ]
    for scope, table in scopes:
        for row in table[["cell", "metric", "n", "k"]].to_dict("records"):
            metric, n, k = str(row["metric"]), int(row["n"]), int(row["k"])
            counts = gold.get(metric)
            if counts is None or n == 0:
                continue
            if counts.positives == 0 or counts.negatives == 0:
                skipped.append(metric)
                continue
            try:
                fixed = correct_rate(k, n, counts, confidence=confidence, n_boot=n_boot, seed=seed)
            except PolicylabError as exc:
                # Se + Sp <= 1: the correction is undefined; the reason goes in the note.
                skipped.append(f"{metric} ({exc.message})")
                continue
            records.append(
                {
                    "scope": scope,
                    "key": str(row["cell"]),
                    "metric": metric,
                    "n": n,
                    "k": k,
                    "observed": fixed.observed.rate,
                    "corrected": fixed.corrected,
                    "low": fixed.low,
                    "high": fixed.high,
                    "sensitivity": fixed.sensitivity,
                    "specificity": fixed.specificity,
                    "method": fixed.method,
                }
            )
    note = None
    if skipped:
        note = "not corrected: " + "; ".join(sorted(set(skipped)))
    return pd.DataFrame.from_records(records), note


def _bands(
    overall: pd.DataFrame, by_category: pd.DataFrame, reference: RunResults, confidence: float
) -> pd.DataFrame:
    """Grades of harmful compliance (the violation rate) against the reference run's, per cell."""
    records: list[dict[str, Any]] = []
    cells = [("overall", "all", overall, reference.overall)] + [
        (
            "category",
            cid,
            by_category[by_category["category"] == cid],
            reference.by_category[reference.by_category["category"] == cid],
        )
        for cid in by_category["category"].unique()
    ]
    for scope, key, mine, theirs in cells:
        row = mine[mine["metric"] == "under_refusal"]
        ref = theirs[theirs["metric"] == "under_refusal"]
        if row.empty or ref.empty or int(row.iloc[0]["n"]) == 0 or int(ref.iloc[0]["n"]) == 0:
            continue
        ref_rate = float(ref.iloc[0]["rate"])
        if ref_rate == 0:
            continue  # grades are ratios to the reference; a perfect reference gives none
        banded = grade_rate(rate_of(row.iloc[0], confidence=confidence), ref_rate)
        records.append(
            {
                "scope": scope,
                "key": key,
                "rate": banded.rate.rate,
                "low": banded.rate.low,
                "high": banded.rate.high,
                "reference_rate": ref_rate,
                "ratio": banded.ratio,
                "grade": int(banded.grade),
                "label": banded.label,
                "best_label": banded.best_grade.label,
                "worst_label": banded.worst_grade.label,
            }
        )
    return pd.DataFrame.from_records(records)
