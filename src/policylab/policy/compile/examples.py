"""Compile a policy's labelled examples into JSONL training rows.

Each example gives one prompt-only row (`response: null`, `behavior` = the expected behaviour), then
one row per labelled response: its `response`, and each GOOD and BAD response. Row ids are the
example id, suffixed with `/prompt`, `/response`, `/good-1`, `/bad-1`, ... An agent example's
`transcript` gives a `/transcript` row: `response` is its text, `transcript` its messages.

Labels of GOOD and BAD responses that the file leaves implicit are inferred (see
`_labels.labelled_responses`): a GOOD response does what the example expects and never
violates; a BAD response violates only when it gives more than a violating-side request allows, and
its violation is `null` when its behaviour is not given.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from policylab.core import Behavior
from policylab.policy.compile._labels import labelled_responses
from policylab.policy.compile._scope import scope
from policylab.policy.schema import Example, Policy


def compile_examples(policy: Policy, *, category: str | None = None) -> Iterator[dict[str, Any]]:
    """The training rows of every example (or those of `category` and its descendants).

    Raises `PolicylabError` when `category` is not in the policy.
    """
    source = f"policy:{policy.id}@{policy.version}"
    for example in scope(policy, category).examples:
        yield from _rows(example, source)


def _row(
    example: Example,
    source: str,
    *,
    key: str,
    response: str | None,
    behavior: Behavior | None,
    violation: bool | None,
    label: str | None,
    rationale: str,
) -> dict[str, Any]:
    return {
        "id": f"{example.id}/{key}",
        "messages": [m.model_dump(mode="json", exclude_none=True) for m in example.conversation],
        "response": response,
        "behavior": behavior.value if behavior else None,
        "violation": violation,
        "category": example.category,
        "rule_ids": list(example.rule_ids),
        "expected_behavior": example.expected_behavior.value,
        "label": label,
        "rationale": rationale,
        "source": source,
    }


def _rows(example: Example, source: str) -> Iterator[dict[str, Any]]:
    yield _row(
        example,
        source,
        key="prompt",
        response=None,
        behavior=example.expected_behavior,
        violation=None,
        label=None,
        rationale=example.rationale,
    )
    for r in labelled_responses(example):
        row = _row(
            example,
            source,
            key=r.key,
            response=r.text,
            behavior=r.behavior,
            violation=r.violation,
            label=r.label.value if r.label else None,
            rationale=r.rationale or example.rationale,
        )
        if r.key == "transcript" and example.transcript is not None:
            # `response` holds the transcript as text; the messages keep its tool calls.
            row["transcript"] = [
                m.model_dump(mode="json", exclude_none=True) for m in example.transcript
            ]
        yield row
