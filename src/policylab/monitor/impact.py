"""Policy impact: what a draft policy would change in stored verdicts, before it ships.

Each stored response is graded again under the draft: filed under a category of the draft (its
item's category when the draft has it, else by embedding similarity, `Categoriser`) and judged by
the same grader, given the draft. A verdict *flips* when its behaviour or its violation flag
changes (unknown -> violating counts: a request the old policy had no category for, now under a
category that expects a refusal). The "before" verdict is the stored one when there is one, else a
grading under the base policy the same way.

Flips are counted by the draft's category and by rule: the rules the grader cited, else the rules
of the category the draft files the response under, else `(no rule)`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from policylab.chat import ChatMessage
from policylab.graders.base import Sample
from policylab.graders.embeddings import Embedder
from policylab.monitor.categorise import DEFAULT_FIT_THRESHOLD, Categoriser, request_text
from policylab.monitor.grading import make_grader
from policylab.policy.schema import Policy

__all__ = ["Flip", "ImpactReport", "Outcome", "Subject", "policy_impact"]

NO_RULE = "(no rule)"


@dataclass(frozen=True)
class Outcome:
    behavior: str | None
    violation: bool | None
    category: str | None
    rule_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subject:
    """One stored response: `key` identifies it (a response or conversation id)."""

    key: int
    messages: list[ChatMessage]
    response: str
    category: str | None = None
    before: Outcome | None = None


@dataclass(frozen=True)
class Flip:
    key: int
    before: Outcome
    after: Outcome
    rules: tuple[str, ...]
    request: str

    @property
    def direction(self) -> str:
        """`to violation`, `to compliant` (a violation no more) or `behaviour` (same flag)."""
        if self.after.violation is True and self.before.violation is not True:
            return "to violation"
        if self.before.violation is True and self.after.violation is not True:
            return "to compliant"
        return "behaviour"


@dataclass
class ImpactReport:
    base_version: str
    draft_version: str
    grader: str
    total: int
    flips: list[Flip] = field(default_factory=list)

    def by_category(self) -> list[tuple[str, int, int, int]]:
        """(draft category, flips, to violation, to compliant), most flips first."""
        rows: dict[str, Counter[str]] = {}
        for f in self.flips:
            c = rows.setdefault(f.after.category or "(none)", Counter())
            c["flips"] += 1
            c[f.direction] += 1
        out = [(k, c["flips"], c["to violation"], c["to compliant"]) for k, c in rows.items()]
        return sorted(out, key=lambda r: (-r[1], r[0]))

    def by_rule(self) -> list[tuple[str, int]]:
        counts: Counter[str] = Counter(rule for f in self.flips for rule in f.rules)
        return sorted(counts.items(), key=lambda r: (-r[1], r[0]))


def _outcome(verdict: Any, category: str | None) -> Outcome:
    return Outcome(
        behavior=verdict.behavior.value if verdict.behavior else None,
        violation=verdict.violation,
        category=category,
        rule_ids=tuple(verdict.rule_ids),
    )


def _grade(
    subjects: Sequence[Subject],
    policy: Policy,
    grader_name: str,
    grader_params: dict[str, Any],
    categoriser: Categoriser | None,
) -> list[Outcome]:
    known = {c.id for c in policy.categories}
    categories: list[str | None] = [s.category if s.category in known else None for s in subjects]
    missing = [i for i, c in enumerate(categories) if c is None]
    if categoriser is not None and missing:
        assigned, _ = categoriser.assign([request_text(subjects[i].messages) for i in missing])
        for i, c in zip(missing, assigned, strict=True):
            categories[i] = c
    grader = make_grader(grader_name, policy, grader_params)
    samples = [
        Sample(id=str(s.key), messages=s.messages, response=s.response, category=c)
        for s, c in zip(subjects, categories, strict=True)
    ]
    verdicts = grader.grade(samples) if samples else []
    return [_outcome(v, c) for v, c in zip(verdicts, categories, strict=True)]


def policy_impact(
    subjects: Sequence[Subject],
    *,
    base: Policy,
    draft: Policy,
    grader: str = "rules",
    grader_params: dict[str, Any] | None = None,
    categorise: bool = True,
    fit_threshold: float = DEFAULT_FIT_THRESHOLD,
    embedder: Embedder | None = None,
) -> ImpactReport:
    """The verdicts that flip when `subjects` are graded under `draft` instead of `base`."""
    params = dict(grader_params or {})
    embedder = embedder or (Embedder() if categorise else None)
    draft_cat = (
        Categoriser(draft, threshold=fit_threshold, embedder=embedder) if categorise else None
    )
    after = _grade(subjects, draft, grader, params, draft_cat)
    need_before = [i for i, s in enumerate(subjects) if s.before is None]
    before: list[Outcome | None] = [s.before for s in subjects]
    if need_before:
        base_cat = (
            Categoriser(base, threshold=fit_threshold, embedder=embedder) if categorise else None
        )
        graded = _grade([subjects[i] for i in need_before], base, grader, params, base_cat)
        for i, outcome in zip(need_before, graded, strict=True):
            before[i] = outcome
    report = ImpactReport(base.version, draft.version, grader, len(subjects))
    for subject, old, new in zip(subjects, before, after, strict=True):
        assert old is not None
        if old.behavior == new.behavior and old.violation == new.violation:
            continue
        rules = new.rule_ids or old.rule_ids
        if not rules and new.category:
            rules = tuple(r.id for r in draft.rules_for(new.category))
        report.flips.append(
            Flip(
                key=subject.key,
                before=old,
                after=new,
                rules=rules or (NO_RULE,),
                request=request_text(subject.messages),
            )
        )
    return report
