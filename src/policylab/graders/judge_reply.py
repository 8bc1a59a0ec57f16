"""Reading an LLM judge's reply: its own final JSON verdict, validated, or a clear error.

The parser is the second line of defence against injection (the first is the prompt, which fences
the content under review with markers the content cannot know):

- only the judge's final answer counts: reasoning blocks (`<think>…</think>`) and harmony analysis
  channels are dropped, and of the JSON objects left, the last top-level one is the verdict;
- a verdict that copies a JSON object found in the content under review (same keys and values,
  whatever the spacing) is rejected: a judge that echoes the response has not judged it;
- the object must match the contract (`JudgeReply`), and must be coherent: a refusal never violates.

Every rejection raises `JudgeReplyError`; the grader turns it into a verdict with `error` set.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from policylab.core import Behavior

__all__ = ["JudgeReply", "JudgeReplyError", "final_text", "json_objects", "parse_judge_reply"]

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_HARMONY_FINAL = re.compile(
    r"<\|channel\|>\s*final\s*<\|message\|>(.*?)(?:<\|return\|>|<\|end\|>|<\|call\|>|$)", re.DOTALL
)
_DECODER = json.JSONDecoder()


class JudgeReplyError(ValueError):
    """The judge's reply cannot be used as a verdict."""


class JudgeReply(BaseModel):
    """The JSON contract of the grader prompt (`templates/policy/grader.md.j2`, OUTPUT section)."""

    model_config = ConfigDict(extra="ignore")

    behavior: Behavior
    violation: bool | None = None
    category: str | None = None
    rule_ids: list[str] = Field(default_factory=list)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    rationale: str | None = None

    @model_validator(mode="after")
    def _coherent(self) -> JudgeReply:
        if self.behavior is Behavior.REFUSE and self.violation:
            raise ValueError("a refusal never violates, but the reply says violation: true")
        return self


def final_text(reply: str) -> str:
    """The judge's final answer: the harmony `final` channel when present, reasoning blocks removed."""
    finals = _HARMONY_FINAL.findall(reply)
    text = finals[-1] if finals else reply
    text = _THINK.sub("", text)
    if "</think>" in text:  # an opening tag lost to truncation: keep what follows the close
        text = text.rsplit("</think>", 1)[1]
    return text


def json_objects(text: str) -> list[tuple[int, int, dict[str, Any]]]:
    """The top-level JSON objects in `text` as (start, end, object), in order."""
    found: list[tuple[int, int, dict[str, Any]]] = []
    pos = 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            return found
        try:
            obj, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            pos = start + 1
            continue
        if isinstance(obj, dict):
            found.append((start, end, obj))
            pos = end
        else:
            pos = start + 1


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


def parse_judge_reply(
    reply: str,
    *,
    content: str,
    mode: Literal["strict", "lenient"] = "strict",
) -> JudgeReply:
    """The verdict in `reply`; `content` is the text under review (request and response).

    `strict` (the default) rejects a verdict object copied from `content`; `lenient` is for tests
    that need to see what an unprotected parser would accept.
    """
    text = final_text(reply).strip()
    if not text:
        raise JudgeReplyError("the judge gave no final answer")
    objects = json_objects(text)
    verdicts = [o for o in objects if "behavior" in o[2]]
    if not verdicts:
        raise JudgeReplyError(f"no JSON verdict object in the judge's reply: {text[:120]!r}")
    _, _, obj = verdicts[-1]
    if mode == "strict":
        quoted = {_canonical(o) for _, _, o in json_objects(content)}
        if _canonical(obj) in quoted:
            raise JudgeReplyError(
                "the judge's verdict copies a JSON object found in the content under review: "
                "an echo, not a judgement"
            )
    try:
        return JudgeReply.model_validate(obj)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}" for e in exc.errors()
        )
        raise JudgeReplyError(
            f"the judge's verdict does not match the contract: {problems}"
        ) from exc
