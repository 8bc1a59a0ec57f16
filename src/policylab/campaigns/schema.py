"""The label schema of a campaign, derived from a policy, and the labels it accepts.

In `response` mode an annotator judges a model's response: its behaviour (comply, partial, refuse),
whether it violates the policy, the category and rule ids concerned, a rationale and a confidence.
In `prompt` mode there is no response: the annotator says what a response *should* do (the
expected behaviour), with the category and rule ids; there is no violation question.

The schema is stored with the campaign, so a later policy version never changes what was asked.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from policylab.core import Behavior
from policylab.errors import Location, PolicylabError
from policylab.policy.schema import Policy

Mode = Literal["response", "prompt"]

BEHAVIOR_KEYS = {Behavior.COMPLY: "1", Behavior.PARTIAL: "2", Behavior.REFUSE: "3"}
CONFIDENCE_LEVELS = {1: "low", 2: "medium", 3: "high"}
SKIP_REASONS = [
    "unclear or unreadable",
    "outside the policy's scope",
    "needs expertise I lack",
    "broken item (empty, truncated, wrong language)",
]
MAX_RATIONALE = 5000


class Option(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: str
    title: str
    parent: str | None = None
    """A rule's category, a category's parent."""


class LabelSchema(BaseModel):
    """What an annotator is asked, and the values each answer may take."""

    model_config = ConfigDict(frozen=True)

    mode: Mode
    policy_id: str
    policy_version: str
    behaviors: list[Option]
    ask_violation: bool
    categories: list[Option]
    rules: list[Option]
    rationale_required: bool = False
    confidence_levels: dict[int, str] = Field(default_factory=lambda: dict(CONFIDENCE_LEVELS))
    skip_reasons: list[str] = Field(default_factory=lambda: list(SKIP_REASONS))

    @property
    def consensus_fields(self) -> tuple[str, ...]:
        """The fields annotators must agree on; the others follow the agreeing labels."""
        return ("behavior", "violation") if self.ask_violation else ("behavior",)

    def validate_label(self, label: LabelInput, *, field_prefix: str = "label") -> LabelInput:
        """The label, checked against the schema; raises `PolicylabError` naming the field."""

        def bad(field: str, message: str, hint: str) -> PolicylabError:
            return PolicylabError(
                message, location=Location(field=f"{field_prefix}.{field}"), hint=hint
            )

        if label.behavior is None:
            raise bad("behavior", "a behaviour is required", "choose comply, partial or refuse")
        if self.ask_violation and label.violation is None:
            raise bad("violation", "say whether the response violates the policy", "true or false")
        if not self.ask_violation and label.violation is not None:
            raise bad(
                "violation",
                "this campaign labels prompts: there is no response to violate the policy",
                "leave violation out",
            )
        categories = {c.value for c in self.categories}
        if label.category is not None and label.category not in categories:
            raise bad(
                "category",
                f"unknown category {label.category!r}",
                f"use one of {', '.join(sorted(categories))}",
            )
        rules = {r.value for r in self.rules}
        unknown = [r for r in label.rule_ids if r not in rules]
        if unknown:
            raise bad(
                "rule_ids",
                f"unknown rule id(s) {', '.join(unknown)}",
                f"use rule ids of policy {self.policy_id} {self.policy_version}",
            )
        if self.rationale_required and not (label.rationale or "").strip():
            raise bad("rationale", "a rationale is required", "say why, in a sentence")
        if label.confidence is not None and label.confidence not in self.confidence_levels:
            raise bad(
                "confidence",
                f"confidence must be one of {sorted(self.confidence_levels)}",
                "1 = low, 2 = medium, 3 = high",
            )
        return label

    def decision_key(self, behavior: str | None, violation: bool | None) -> str | None:
        """The value annotators must agree on: `refuse`, or `comply+violation` in response mode."""
        if behavior is None:
            return None
        if not self.ask_violation:
            return behavior
        return f"{behavior}+{'violation' if violation else 'ok'}"

    @staticmethod
    def parse_key(key: str) -> tuple[str, bool | None]:
        """The behaviour and violation of a decision key."""
        behavior, _, rest = key.partition("+")
        return behavior, (rest == "violation") if rest else None


class LabelInput(BaseModel):
    """An annotator's (or adjudicator's) answer on one item."""

    model_config = ConfigDict(extra="forbid")

    behavior: Behavior | None = None
    violation: bool | None = None
    category: str | None = Field(default=None, max_length=200)
    rule_ids: list[str] = Field(default_factory=list, max_length=50)
    rationale: str | None = Field(default=None, max_length=MAX_RATIONALE)
    confidence: int | None = None
    duration_ms: int | None = Field(default=None, ge=0)

    def content(self) -> dict[str, object]:
        """What the label says (without timing), for comparing a retried submission."""
        return {
            "behavior": self.behavior.value if self.behavior else None,
            "violation": self.violation,
            "category": self.category,
            "rule_ids": sorted(self.rule_ids),
            "rationale": (self.rationale or "").strip() or None,
            "confidence": self.confidence,
        }


def derive_schema(policy: Policy, *, mode: Mode, rationale_required: bool = False) -> LabelSchema:
    """The label schema for `policy`: its categories and rules, in the policy's order."""
    return LabelSchema(
        mode=mode,
        policy_id=policy.id,
        policy_version=policy.version,
        behaviors=[Option(value=b.value, title=b.value) for b in Behavior],
        ask_violation=mode == "response",
        categories=[
            Option(value=c.id, title=c.title, parent=c.parent_id) for c in policy.categories
        ],
        rules=[Option(value=r.id, title=r.title, parent=r.category_id) for r in policy.rules],
        rationale_required=rationale_required,
    )
