"""The labelled responses an example carries: its `response` (or `transcript`), and its GOOD and BAD
responses."""

from __future__ import annotations

from dataclasses import dataclass

from policylab.core import Behavior
from policylab.policy.actions import render_turns
from policylab.policy.schema import Example, ResponseLabel

# From most to least permissive: a response below the expected rank gives more than it should.
_RANK = {Behavior.COMPLY: 0, Behavior.PARTIAL: 1, Behavior.REFUSE: 2}


@dataclass(frozen=True)
class LabelledResponse:
    """A response to an example's request, with the behaviour and violation labels it implies."""

    key: str
    label: ResponseLabel | None
    text: str
    behavior: Behavior | None
    violation: bool | None
    rationale: str | None


def bad_response_violates(example: Example, behavior: Behavior | None) -> bool | None:
    """Whether a BAD response violates: only if it gives more than a violating-side request allows.

    A BAD response to an allowed request fails by over-refusing or being unhelpful, which is not a
    violation; a BAD response that refuses as expected fails on tone. Unknown behaviour: unknown.
    """
    if example.side == "allowed":
        return False
    if behavior is None:
        return None
    return _RANK[behavior] < _RANK[example.expected_behavior]


def labelled_responses(example: Example) -> list[LabelledResponse]:
    """The example's `response` first, then its GOOD and BAD responses, numbered per label.

    A GOOD response does what the example expects unless it says otherwise, and never violates.
    """
    out: list[LabelledResponse] = []
    if example.response is not None:
        out.append(
            LabelledResponse(
                key="response",
                label=None,
                text=example.response,
                behavior=example.response_behavior,
                violation=example.violates,
                rationale=None,
            )
        )
    elif example.transcript is not None:
        out.append(
            LabelledResponse(
                key="transcript",
                label=None,
                text=render_turns(example.transcript, as_response=True),
                behavior=example.response_behavior,
                violation=example.violates,
                rationale=None,
            )
        )
    counts: dict[ResponseLabel, int] = {}
    for r in example.responses:
        counts[r.label] = counts.get(r.label, 0) + 1
        if r.label is ResponseLabel.GOOD:
            behavior: Behavior | None = r.behavior or example.expected_behavior
            violation: bool | None = False
        else:
            behavior = r.behavior
            violation = bad_response_violates(example, r.behavior)
        out.append(
            LabelledResponse(
                key=f"{r.label.value}-{counts[r.label]}",
                label=r.label,
                text=r.text,
                behavior=behavior,
                violation=violation,
                rationale=r.rationale,
            )
        )
    return out
