"""Reading samples and gold labels from JSONL, writing verdicts as JSONL.

Each input line is an object with `id`, the request as `prompt` (a string) or `messages` (OpenAI chat
format), and `response`; optional `category` and `expected_behavior` are hints for the violation
flag; every other key is kept as metadata. A gold line adds `behavior` (comply, partial, refuse).

A bad line is never dropped silently: `read_samples` returns it as a `Problem` naming the file, the
line and the field, and `grade` writes an error verdict for it when the line had a readable id.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import orjson
from pydantic import ValidationError

from policylab.chat import ChatMessage
from policylab.core import Behavior
from policylab.errors import Location, Problem
from policylab.graders.base import Sample, Verdict

__all__ = [
    "OUTPUT_FIELDS",
    "BadLine",
    "GoldSample",
    "read_gold",
    "read_samples",
    "verdict_line",
    "write_verdicts",
]

_KNOWN = {"id", "prompt", "messages", "response", "category", "expected_behavior", "behavior"}
OUTPUT_FIELDS = (
    "id",
    "behavior",
    "confidence",
    "violation",
    "category",
    "rule_ids",
    "rationale",
    "error",
)


@dataclass(frozen=True)
class BadLine:
    """An input line that could not be read; `id` when the line had a readable one."""

    problem: Problem
    id: str | None


@dataclass(frozen=True)
class GoldSample:
    sample: Sample
    behavior: Behavior


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                yield number, line


def _parse(
    path: Path, number: int, line: str, *, need_behavior: bool
) -> tuple[Sample, Behavior | None] | BadLine:
    def bad(
        message: str, field: str | None = None, hint: str | None = None, id_: str | None = None
    ) -> BadLine:
        return BadLine(Problem(message, Location(path, number, field=field), hint), id_)

    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return bad(f"not valid JSON: {exc}", hint="each line must be one JSON object")
    if not isinstance(obj, dict):
        return bad(f"expected a JSON object, got {type(obj).__name__}")
    raw_id = obj.get("id")
    if not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or str(raw_id) == "":
        return bad("missing `id` (a string or an integer)", "id", "give every line a unique id")
    sid = str(raw_id)
    response = obj.get("response")
    if not isinstance(response, str):
        return bad("missing `response` (a string)", "response", id_=sid)
    prompt, messages = obj.get("prompt"), obj.get("messages")
    if (prompt is None) == (messages is None):
        return bad(
            "give exactly one of `prompt` (a string) or `messages` (a list of chat messages)",
            "prompt",
            id_=sid,
        )
    try:
        if prompt is not None:
            if not isinstance(prompt, str):
                return bad("`prompt` must be a string", "prompt", id_=sid)
            chat = [ChatMessage(role="user", content=prompt)]
        else:
            if not isinstance(messages, list) or not messages:
                return bad("`messages` must be a non-empty list", "messages", id_=sid)
            chat = [ChatMessage.model_validate(m) for m in messages]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return bad(f"invalid message: {first['msg']} at {where or 'message'}", "messages", id_=sid)
    expected = obj.get("expected_behavior")
    behavior = obj.get("behavior")
    try:
        expected_b = Behavior(expected) if expected is not None else None
    except ValueError:
        return bad(
            f"`expected_behavior` is {expected!r}",
            "expected_behavior",
            "use comply, partial or refuse",
            sid,
        )
    gold: Behavior | None = None
    if need_behavior:
        try:
            gold = Behavior(str(behavior).strip().lower()) if behavior is not None else None
        except ValueError:
            return bad(
                f"`behavior` is {behavior!r}", "behavior", "use comply, partial or refuse", sid
            )
        if gold is None:
            return bad(
                "missing `behavior`, the gold label",
                "behavior",
                "use comply, partial or refuse",
                sid,
            )
    category = obj.get("category")
    sample = Sample(
        id=sid,
        messages=chat,
        response=response,
        category=str(category) if category is not None else None,
        expected_behavior=expected_b,
        metadata={k: v for k, v in obj.items() if k not in _KNOWN},
    )
    return sample, gold


def read_samples(path: Path) -> tuple[list[Sample], list[BadLine]]:
    """The samples of a JSONL file, and its bad lines (with line numbers). Duplicate ids are bad."""
    samples: list[Sample] = []
    bad: list[BadLine] = []
    seen: dict[str, int] = {}
    for number, line in _lines(path):
        parsed = _parse(path, number, line, need_behavior=False)
        if isinstance(parsed, BadLine):
            bad.append(parsed)
            continue
        sample = parsed[0]
        if sample.id in seen:
            bad.append(
                BadLine(
                    Problem(
                        f"duplicate id {sample.id!r} (first on line {seen[sample.id]})",
                        Location(path, number, field="id"),
                        "ids must be unique within a file",
                    ),
                    None,
                )
            )
            continue
        seen[sample.id] = number
        samples.append(sample)
    return samples, bad


def read_gold(path: Path) -> tuple[list[GoldSample], list[BadLine]]:
    """Gold samples (each with its `behavior` label) and the bad lines."""
    out: list[GoldSample] = []
    bad: list[BadLine] = []
    seen: set[str] = set()
    for number, line in _lines(path):
        parsed = _parse(path, number, line, need_behavior=True)
        if isinstance(parsed, BadLine):
            bad.append(parsed)
            continue
        sample, behavior = parsed
        if sample.id in seen:
            bad.append(
                BadLine(
                    Problem(f"duplicate id {sample.id!r}", Location(path, number, field="id")), None
                )
            )
            continue
        seen.add(sample.id)
        assert behavior is not None
        out.append(GoldSample(sample, behavior))
    return out, bad


def verdict_line(verdict: Verdict) -> dict[str, Any]:
    """The output record of one verdict: the input id and the verdict's public fields."""
    return {
        "id": verdict.sample_id,
        "behavior": verdict.behavior.value if verdict.behavior else None,
        "confidence": verdict.confidence,
        "violation": verdict.violation,
        "category": verdict.category,
        "rule_ids": verdict.rule_ids,
        "rationale": verdict.rationale,
        "error": verdict.error,
        "grader": f"{verdict.grader_id}@{verdict.grader_version}",
        "policy_hash": verdict.policy_hash,
    }


def write_verdicts(out: TextIO, verdicts: Iterable[Verdict]) -> int:
    count = 0
    for verdict in verdicts:
        out.write(orjson.dumps(verdict_line(verdict)).decode() + "\n")
        count += 1
    return count
