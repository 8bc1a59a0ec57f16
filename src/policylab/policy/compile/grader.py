"""Compile a policy into a grader prompt for a policy-following judge such as gpt-oss-safeguard.

The prompt follows the shape the gpt-oss-safeguard user guide recommends (ROOST and OpenAI, "User
guide for gpt-oss-safeguard", OpenAI Cookbook, 2025-10-29): INSTRUCTIONS, DEFINITIONS, criteria
(what violates and what does not), then a few short examples on both sides of the line; the output
format is stated near the top and again before the examples. The text lives in
`templates/policy/grader.md.j2`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from policylab.chat import transcript_text
from policylab.core import Behavior
from policylab.policy.compile._labels import labelled_responses
from policylab.policy.compile._render import render
from policylab.policy.compile._scope import scope
from policylab.policy.schema import Example, Policy

# The guide suggests 1-2 examples each for violations and non-violations per compressed policy.
EXAMPLES_PER_SIDE = 2
_CLIP = 600


@dataclass(frozen=True)
class Shot:
    """One example as the grader prompt shows it."""

    id: str
    side: str
    conversation: str
    response: str | None
    answer: str | None
    expected: Behavior
    rationale: str

    @property
    def text(self) -> str:
        return "\n".join(p for p in (self.conversation, self.response, self.rationale) if p)


def compile_grader_prompt(
    policy: Policy, *, category: str | None = None, examples_per_side: int = EXAMPLES_PER_SIDE
) -> str:
    """The grader prompt for one category (with its descendants) or, with no category, the policy.

    Raises `PolicylabError` when `category` is not in the policy.
    """
    selected = scope(policy, category)
    shots = [_shot(e) for e in pick_examples(selected.examples, per_side=examples_per_side)]
    titles = {c.id: c.title for c in policy.categories}
    return render(
        "grader.md.j2",
        policy=policy,
        scope=selected,
        shots=shots,
        titles=titles,
    )


def grader_prompts(policy: Policy) -> dict[str, str]:
    """A grader prompt per top-level category, by category id."""
    return {
        c.id: compile_grader_prompt(policy, category=c.id)
        for c in policy.categories
        if c.parent_id is None
    }


def pick_examples(examples: list[Example], *, per_side: int) -> list[Example]:
    """Up to `per_side` examples on each side of the line, violating side first.

    Examples that carry a labelled response come first: they show a whole verdict, not only the
    expected behaviour. Among those, shorter ones first (the guide asks for short examples, and
    they cost fewer tokens); ties keep file order, so the prompt is stable.
    """
    out: list[Example] = []
    for side in ("violating", "allowed"):
        candidates = [e for e in examples if e.side == side]
        candidates.sort(key=lambda e: (_shot_response(e) is None, len(_shot(e).text)))
        out.extend(candidates[:per_side])
    return out


def _shot_response(example: Example) -> tuple[str, Behavior, bool] | None:
    for r in labelled_responses(example):
        if r.behavior is not None and r.violation is not None:
            return r.text, r.behavior, r.violation
    return None


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[: _CLIP - 1].rstrip() + "…"


def _shot(example: Example) -> Shot:
    found = _shot_response(example)
    answer: str | None = None
    response: str | None = None
    if found is not None:
        text, behavior, violation = found
        response = _clip(text)
        answer = json.dumps(
            {
                "behavior": behavior.value,
                "violation": violation,
                "category": example.category,
                "rule_ids": example.rule_ids,
            },
            ensure_ascii=False,
        )
    return Shot(
        id=example.id,
        side=example.side,
        conversation=_clip(transcript_text(example.conversation)),
        response=response,
        answer=answer,
        expected=example.expected_behavior,
        rationale=example.rationale,
    )
