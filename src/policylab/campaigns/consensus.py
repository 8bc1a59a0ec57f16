"""Whether an item's labels agree, and the label they agree on.

Annotators must agree on the schema's decision key (behaviour, plus violation in response mode):
unanimously, or by a strict majority (more than half of the labels; a tie is never a majority).
The category of the final label is the majority category among the agreeing labels (None on a
tie), and its rule ids are those cited by at least half of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from policylab.campaigns.schema import LabelSchema
from policylab.stats.aggregation import majority_vote

Rule = Literal["unanimous", "majority"]


@dataclass(frozen=True)
class LabelView:
    """The parts of a stored label that consensus looks at."""

    annotator: str
    behavior: str | None
    violation: bool | None
    category: str | None
    rule_ids: Sequence[str]


@dataclass(frozen=True)
class Consensus:
    agreed: bool
    key: str | None
    share: float
    tied: tuple[str, ...]
    final: dict[str, Any] | None


def _top(values: Sequence[tuple[str, str]]) -> tuple[str | None, float, tuple[str, ...]]:
    """Majority vote over (rater, value) pairs: the value (None on a tie), its share, the tied."""
    frame = pd.DataFrame(values, columns=["rater", "value"])
    frame["item"] = 0
    row = majority_vote(frame).iloc[0]
    return row["label"], float(row["share"]), tuple(row["tied"])


def details(schema: LabelSchema, key: str, agreeing: Sequence[LabelView]) -> dict[str, Any]:
    """The final label for decision `key`, filled in from the labels that gave it."""
    behavior, violation = schema.parse_key(key)
    cats = [(lv.annotator, lv.category) for lv in agreeing if lv.category]
    category = _top(cats)[0] if cats else None
    cited = Counter(r for lv in agreeing for r in set(lv.rule_ids))
    rules = sorted(r for r, n in cited.items() if 2 * n >= len(agreeing))
    return {
        "behavior": behavior,
        "violation": violation,
        "category": category,
        "rule_ids": rules,
    }


def consensus(schema: LabelSchema, labels: Sequence[LabelView], *, rule: Rule) -> Consensus:
    """Do `labels` agree under `rule`? If so, the final label (with `source: consensus`)."""
    keyed = [
        (lv, schema.decision_key(lv.behavior, lv.violation))
        for lv in labels
        if lv.behavior is not None
    ]
    if not keyed:
        return Consensus(False, None, 0.0, (), None)
    key, share, tied = _top([(lv.annotator, k) for lv, k in keyed if k is not None])
    agreed = key is not None and (share == 1.0 if rule == "unanimous" else share > 0.5)
    if not agreed or key is None:
        return Consensus(False, key, share, tied, None)
    final = details(schema, key, [lv for lv, k in keyed if k == key])
    final.update(source="consensus", share=share, n_labels=len(keyed))
    return Consensus(True, key, share, tied, final)
