"""An agent run's action results: per-rule metrics and every broken rule, by transcript and turn.

The input is one `TranscriptOutcome` per transcript of the run: its item (id, categories, the
rules it lists, its expected behaviour) and the `actions` grader's verdict (see
`graders.actions`), or none when the agent or the grader failed. Metrics come from
`stats.actions`; a transcript without a verdict counts as an error for the rules whose category
it is in, never as safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from policylab.policy.schema import Policy, Rule
from policylab.stats.actions import action_metrics
from policylab.stats.intervals import Rate

__all__ = ["ActionResults", "TranscriptOutcome", "ViolationRow", "action_results", "rule_citations"]

METRIC_TITLES = {
    "unsafe_action": "Unsafe actions",
    "over_refusal": "Over-refusal of benign tasks",
    "confirmation_compliance": "Confirmation compliance",
}


@dataclass(frozen=True)
class TranscriptOutcome:
    """One transcript of a run, with the `actions` verdict on it (None: not graded)."""

    external_id: str
    categories: list[str]
    expected: str | None
    rule_ids: list[str] = field(default_factory=list)
    behavior: str | None = None
    error: str | None = None
    """The agent's or the grader's error; set when there is no verdict."""
    extra: dict[str, Any] = field(default_factory=dict)
    """The verdict's `extra`: `violations`, `rules`, `outcome`, `calls`, `turns`."""

    @property
    def graded(self) -> bool:
        return self.error is None and self.behavior is not None


@dataclass(frozen=True)
class ViolationRow:
    """One broken action rule: where (transcript, turn, call) and what it is mapped to."""

    transcript: str
    rule_id: str
    rule_title: str
    turn: int
    tool: str
    arguments: str
    reason: str
    pattern: str
    regulations: list[str]


@dataclass(frozen=True)
class ActionResults:
    """Per-rule metrics (`rule_id, title, metric, n, k, rate, low, high, errors`) and the
    violations, ordered by transcript and turn."""

    metrics: pd.DataFrame
    violations: list[ViolationRow]
    transcripts: int
    graded: int
    confidence: float = 0.95
    rules: list[Rule] = field(default_factory=list)

    def rate(self, rule_id: str, metric: str) -> Rate:
        rows = self.metrics[
            (self.metrics["rule_id"] == rule_id) & (self.metrics["metric"] == metric)
        ]
        if rows.empty:
            return Rate(successes=0, n=0, rate=float("nan"), low=0.0, high=1.0, defined=False)
        row = rows.iloc[0]
        n = int(row["n"])
        return Rate(
            successes=int(row["k"]),
            n=n,
            rate=float(row["rate"]),
            low=float(row["low"]),
            high=float(row["high"]),
            confidence=self.confidence,
            defined=n > 0,
        )

    def errors(self, rule_id: str, metric: str) -> int:
        rows = self.metrics[
            (self.metrics["rule_id"] == rule_id) & (self.metrics["metric"] == metric)
        ]
        return int(rows.iloc[0]["errors"]) if not rows.empty else 0

    def violations_of(self, rule_id: str) -> list[ViolationRow]:
        return [v for v in self.violations if v.rule_id == rule_id]


def rule_citations(policy: Policy, rule: Rule) -> list[str]:
    """The provisions a rule answers to: its own, then its category's and its ancestors'."""
    out = list(rule.regulations)
    for cid in [rule.category_id, *policy.ancestors(rule.category_id)]:
        category = policy.category(cid)
        if category is not None:
            out += [r for r in category.regulations if r not in out]
    return out


def _in_category_scope(policy: Policy, rule: Rule, t: TranscriptOutcome) -> bool:
    return rule.id in t.rule_ids or any(policy.is_under(c, rule.category_id) for c in t.categories)


def action_results(
    policy: Policy, transcripts: Sequence[TranscriptOutcome], *, confidence: float = 0.95
) -> ActionResults:
    """Metrics per action rule and the list of violations (see the module docstring)."""
    rules = [r for r in policy.rules if r.is_action]
    rows: list[dict[str, Any]] = []
    violations: list[ViolationRow] = []
    titles = {r.id: r.title for r in rules}
    for t in transcripts:
        judged = t.extra.get("rules") or {}
        for rule in rules:
            info = judged.get(rule.id) or {}
            scope = bool(info.get("in_scope")) or _in_category_scope(policy, rule, t)
            rows.append(
                {
                    "rule_id": rule.id,
                    "in_scope": scope,
                    "graded": t.graded,
                    "violated": t.graded and int(info.get("violations") or 0) > 0,
                    "expected": t.expected,
                    "refused": t.graded and t.behavior in ("refuse", "partial"),
                    "confirmation": info.get("confirmation") or "none",
                }
            )
        if not t.graded:
            continue
        for v in t.extra.get("violations") or []:
            rule_id = str(v.get("rule_id"))
            broken = policy.rule(rule_id)
            violations.append(
                ViolationRow(
                    transcript=t.external_id,
                    rule_id=rule_id,
                    rule_title=broken.title if broken else "",
                    turn=int(v.get("turn") or 0),
                    tool=str(v.get("tool") or ""),
                    arguments=str(v.get("arguments") or ""),
                    reason=str(v.get("reason") or ""),
                    pattern=str(v.get("pattern") or ""),
                    regulations=rule_citations(policy, broken) if broken else [],
                )
            )
    columns = ["rule_id", "in_scope", "graded", "violated", "expected", "refused", "confirmation"]
    metrics = action_metrics(pd.DataFrame(rows, columns=columns), confidence=confidence)
    # Rows came in policy order, rule by rule: the metrics frame keeps that order.
    metrics.insert(1, "title", metrics["rule_id"].map(titles))
    violations.sort(key=lambda v: (v.transcript, v.turn, v.rule_id))
    return ActionResults(
        metrics=metrics,
        violations=violations,
        transcripts=len(transcripts),
        graded=sum(1 for t in transcripts if t.graded),
        confidence=confidence,
        rules=rules,
    )
