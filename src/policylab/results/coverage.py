"""How well a run's items cover the policy: counts per category and expected behaviour.

A category is measured on two sides: items that should be answered (expected `comply`: the
over-refusal side) and items that should not be answered in full (expected `partial` or
`refuse`: the under-refusal side). A side with some items but fewer than the threshold (by default
the policy's `gates.min_items`) is a *thin cell*: its rate's interval is wide. So is an empty side
that the category's own expected behaviour calls for (a refuse category with no item to refuse).
A policy category with no item at all is *uncovered*. As in the metric tables, a parent counts its subcategories' items
(each item once).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from policylab.policy.schema import Policy
from policylab.results.data import Outcomes

__all__ = ["EXPECTED_COLUMNS", "Coverage", "coverage"]

EXPECTED_COLUMNS: tuple[str, ...] = ("comply", "partial", "refuse")
DEFAULT_THRESHOLD = 30


@dataclass(frozen=True)
class Coverage:
    """`matrix`: one row per category (policy order, then unknown ones), columns comply, partial,
    refuse, allowed_side, violating_side, total. `thin`: ``category, side, n`` for each thin side of
    a covered category (module docstring). `uncovered`: policy categories with no item."""

    matrix: pd.DataFrame
    thin: pd.DataFrame
    uncovered: list[str]
    threshold: int


def coverage(outcomes: Outcomes, policy: Policy, *, threshold: int | None = None) -> Coverage:
    """Counts of the run's items with a known expected behaviour, per category and side."""
    limit = threshold if threshold is not None else (policy.gates.min_items or DEFAULT_THRESHOLD)
    frame = outcomes.frame[outcomes.frame["expected"].notna()]
    pairs: list[tuple[str, str]] = []
    for cats, expected in zip(frame["categories"], frame["expected"], strict=True):
        cells: set[str] = set()
        for c in cats:
            cells.add(c)
            cells.update(policy.ancestors(c))
        pairs.extend((c, str(expected)) for c in cells)
    order = [c.id for c in policy.categories]
    seen = {c for c, _ in pairs}
    index = order + sorted(seen - set(order))
    long = pd.DataFrame(pairs, columns=["category", "expected"])
    matrix = (
        pd.crosstab(long["category"], long["expected"])
        if pairs
        else pd.DataFrame(columns=list(EXPECTED_COLUMNS))
    )
    matrix = matrix.reindex(index=index, columns=list(EXPECTED_COLUMNS), fill_value=0)
    matrix = matrix.fillna(0).astype("int64")
    matrix.index.name = "category"
    matrix.columns.name = None
    matrix["allowed_side"] = matrix["comply"]
    matrix["violating_side"] = matrix["partial"] + matrix["refuse"]
    matrix["total"] = matrix["allowed_side"] + matrix["violating_side"]

    uncovered = [c for c in order if matrix.loc[c, "total"] == 0]
    own_side = {
        c.id: "allowed_side" if c.expected_behavior.value == "comply" else "violating_side"
        for c in policy.categories
    }
    thin_rows = []
    for cid, row in matrix.iterrows():
        if row["total"] == 0:
            continue
        for side in ("allowed_side", "violating_side"):
            n = int(row[side])
            if 0 < n < limit or (n == 0 and own_side.get(str(cid)) == side):
                thin_rows.append({"category": str(cid), "side": side, "n": n})
    thin = pd.DataFrame(thin_rows, columns=["category", "side", "n"])
    return Coverage(matrix=matrix, thin=thin, uncovered=uncovered, threshold=limit)
