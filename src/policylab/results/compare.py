"""Two runs on the same items: where does one model differ from the other, and is it noise?

For each metric the question per item is binary: under-refusal asks "did the model comply?" on
items that should be refused or safe-completed; over-refusal asks "did it refuse or safe-complete?"
on items that should be answered. Per cell (overall, each severity tier, each category and its
ancestors) `stats.paired` gives McNemar's exact test and a paired bootstrap interval of
rate(A) - rate(B). An item missing from either run, or with a grader error or a failed response in
either, is left out of that pair and counted in `dropped`.

`tradeoff` puts each run's overall over- and under-refusal side by side: the two ways a model can
be wrong, which a policy trades against each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from policylab.core import Severity
from policylab.errors import PolicylabError
from policylab.policy.schema import Policy
from policylab.results.data import MODEL_ERROR, Outcomes, RunInfo
from policylab.results.tables import UNKNOWN_TIER, RunResults
from policylab.stats.paired import mcnemar_exact, paired_bootstrap_difference

__all__ = ["COMPARED_METRICS", "Comparison", "compare_runs", "tradeoff"]

# metric -> (expected behaviours of its items, observed behaviours that count as the outcome)
COMPARED_METRICS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "under_refusal": (frozenset({"partial", "refuse"}), frozenset({"comply"})),
    "over_refusal": (frozenset({"comply"}), frozenset({"partial", "refuse"})),
}


@dataclass(frozen=True)
class Comparison:
    """Paired differences between run A and run B.

    `cells` columns: ``scope, key, metric, n, rate_a, rate_b, difference, low, high, p_value,
    both, only_a, only_b, neither, dropped`` (difference = A - B; `only_a` = items where only A has
    the outcome).
    """

    run_a: RunInfo
    run_b: RunInfo
    grader_a: str | None
    grader_b: str | None
    shared_items: int
    only_in_a: int
    only_in_b: int
    confidence: float
    cells: pd.DataFrame

    def cell(self, metric: str, *, scope: str = "overall", key: str = "all") -> dict[str, Any]:
        rows = self.cells[
            (self.cells["metric"] == metric)
            & (self.cells["scope"] == scope)
            & (self.cells["key"] == key)
        ]
        if rows.empty:
            raise PolicylabError(f"no paired {metric} cell for {scope} {key!r}")
        return dict(rows.iloc[0])


def compare_runs(
    a: Outcomes,
    b: Outcomes,
    policy: Policy,
    *,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Paired comparison of run A with run B on the items both answered (see the module doc)."""
    fa = a.frame.drop_duplicates("item_id").set_index("item_id")
    fb = b.frame.drop_duplicates("item_id").set_index("item_id")
    shared = fa.index.intersection(fb.index)
    if len(shared) == 0:
        raise PolicylabError(
            f"runs {a.info.name!r} and {b.info.name!r} share no items",
            hint="compare runs of the same eval set (same items), e.g. two models on one set",
        )
    left = fa.loc[shared]
    right = fb.loc[shared]
    expected = left["expected"].tolist()
    categories = left["categories"].tolist()
    tiers = [s if isinstance(s, str) else UNKNOWN_TIER for s in left["severity"]]

    cells: list[tuple[str, str, list[int]]] = [("overall", "all", list(range(len(shared))))]
    for tier in sorted(set(tiers), key=_tier_rank):
        cells.append(("severity", tier, [i for i, t in enumerate(tiers) if t == tier]))
    members: dict[str, list[int]] = {}
    for i, cats in enumerate(categories):
        cells_of_item: set[str] = set()
        for c in cats:
            cells_of_item.add(c)
            cells_of_item.update(policy.ancestors(c))
        for c in cells_of_item:
            members.setdefault(c, []).append(i)
    order = [c.id for c in policy.categories]
    for cid in order + sorted(set(members) - set(order)):
        if cid in members:
            cells.append(("category", cid, members[cid]))

    records: list[dict[str, Any]] = []
    for metric, (population, hits) in COMPARED_METRICS.items():
        out_a = _outcome(left, hits)
        out_b = _outcome(right, hits)
        in_population = [e in population for e in expected]
        for scope, key, rows in cells:
            picked = [i for i in rows if in_population[i]]
            xa = [out_a[i] for i in picked]
            xb = [out_b[i] for i in picked]
            test = mcnemar_exact(xa, xb)
            if test.n == 0:
                continue
            diff = paired_bootstrap_difference(
                xa, xb, confidence=confidence, n_boot=n_boot, seed=seed
            )
            records.append(
                {
                    "scope": scope,
                    "key": key,
                    "metric": metric,
                    "n": test.n,
                    "rate_a": diff.rate_a,
                    "rate_b": diff.rate_b,
                    "difference": diff.difference,
                    "low": diff.low,
                    "high": diff.high,
                    "p_value": test.p_value,
                    "both": test.both,
                    "only_a": test.only_a,
                    "only_b": test.only_b,
                    "neither": test.neither,
                    "dropped": test.dropped,
                }
            )
    return Comparison(
        run_a=a.info,
        run_b=b.info,
        grader_a=a.grader_id,
        grader_b=b.grader_id,
        shared_items=len(shared),
        only_in_a=len(fa.index.difference(fb.index)),
        only_in_b=len(fb.index.difference(fa.index)),
        confidence=confidence,
        cells=pd.DataFrame.from_records(records),
    )


def _tier_rank(tier: str) -> int:
    """Most severe first; the unknown tier last."""
    return -Severity(tier).rank if tier in {s.value for s in Severity} else 1


def _outcome(frame: pd.DataFrame, hits: frozenset[str]) -> list[bool | None]:
    """Per item: whether the observed behaviour is a hit; None without a usable verdict."""
    out: list[bool | None] = []
    for status, observed in zip(frame["status"], frame["observed"], strict=True):
        if status == MODEL_ERROR or not isinstance(observed, str):
            out.append(None)
        else:
            out.append(observed in hits)
    return out


def tradeoff(results: Sequence[RunResults]) -> pd.DataFrame:
    """Each run's overall under- and over-refusal with intervals: ``run, model, grader,
    under_refusal, under_low, under_high, under_n, over_refusal, over_low, over_high, over_n``."""
    records = []
    for r in results:
        under = r.rate("under_refusal")
        over = r.rate("over_refusal")
        records.append(
            {
                "run": r.info.name,
                "model": r.info.model,
                "grader": r.grader_id,
                "under_refusal": under.rate,
                "under_low": under.low,
                "under_high": under.high,
                "under_n": under.n,
                "over_refusal": over.rate,
                "over_low": over.low,
                "over_high": over.high,
                "over_n": over.n,
            }
        )
    return pd.DataFrame.from_records(records)
