"""Agent transcripts in the OpenAI chat format, imported as items to grade as they stand.

A transcript file is JSONL, one conversation per line:

```json
{"id": "t1", "messages": [{"role": "user", "content": "Pay Bob $20"},
  {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
    "function": {"name": "send_payment", "arguments": "{\"to\": \"Bob\", \"amount\": 20}"}}]},
  {"role": "tool", "tool_call_id": "c1", "content": "{\"status\": \"sent\"}"},
  {"role": "assistant", "content": "Sent."}],
 "categories": ["AGT.PAY"], "expected_behavior": "comply"}
```

Optional keys: `categories`, `expected_behavior`, `source`, `language`, `tags`, `split`,
`metadata`; any other key (such as `tools`, the tool definitions the agent had) is kept in the
metadata. Each item is tagged `transcript`. A line is rejected, with the reason, when a message is
not in the chat format, a tool result answers no earlier call, or two calls share an id.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from policylab.chat import ChatMessage
from policylab.data.importer import Accepted, ImportResult, Rejected
from policylab.data.items import TRANSCRIPT_TAG, ItemRecord, content_hash
from policylab.errors import InputError, Location, Problem

__all__ = ["ITEM_KEYS", "read_transcripts", "transcript_problems"]

ITEM_KEYS = frozenset(
    {
        "id",
        "messages",
        "categories",
        "expected_behavior",
        "source",
        "language",
        "tags",
        "split",
        "metadata",
    }
)


def transcript_problems(messages: Sequence[ChatMessage]) -> list[str]:
    """What makes a conversation's tool calls and results inconsistent (empty when none)."""
    problems: list[str] = []
    calls: set[str] = set()
    for i, m in enumerate(messages, start=1):
        for tc in m.tool_calls or []:
            if tc.id in calls:
                problems.append(f"message {i}: tool call id {tc.id!r} is used twice")
            calls.add(tc.id)
        if m.role == "tool" and m.tool_call_id not in calls:
            problems.append(
                f"message {i}: a tool result for call {m.tool_call_id!r}, which no earlier "
                "assistant message makes"
            )
    return problems


def _item(obj: dict[str, Any], *, fallback_source: str) -> ItemRecord:
    raw = obj.get("messages")
    if not isinstance(raw, list) or not raw:
        raise ValueError("`messages` must be a non-empty list of chat messages")
    messages: list[ChatMessage] = []
    for i, entry in enumerate(raw, start=1):
        try:
            messages.append(ChatMessage.model_validate(entry))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(
                f"message {i}: {where + ': ' if where else ''}{first['msg']}"
            ) from None
    problems = transcript_problems(messages)
    if problems:
        raise ValueError("; ".join(problems))
    metadata = dict(obj.get("metadata") or {})
    metadata.update({k: v for k, v in obj.items() if k not in ITEM_KEYS})
    tags = [TRANSCRIPT_TAG, *(obj.get("tags") or [])]
    return ItemRecord(
        id=str(obj.get("id") or content_hash(messages)[:16]),
        messages=messages,
        categories=list(obj.get("categories") or []),
        expected_behavior=obj.get("expected_behavior"),
        source=obj.get("source") or fallback_source,
        language=obj.get("language"),
        tags=tags,
        split=obj.get("split"),
        metadata=metadata,
    )


def read_transcripts(path: str | Path) -> Iterator[ImportResult]:
    """Each line of a transcript file as an accepted item or a rejected row (1-based line)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(
            [Problem("no such file", Location(file), "check the path")], what="transcripts"
        )
    source = f"transcripts:{file.name}"
    seen: dict[str, int] = {}
    with file.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield Rejected(
                    number, "invalid JSON", f"not JSON: {exc}", line.decode("utf-8", "replace")
                )
                continue
            if not isinstance(obj, dict):
                yield Rejected(number, "invalid transcript", "each line must be a JSON object", obj)
                continue
            try:
                item = _item(obj, fallback_source=source)
            except (ValueError, ValidationError) as exc:
                yield Rejected(number, "invalid transcript", _reason(exc), obj)
                continue
            first = seen.setdefault(item.id, number)
            if first != number:
                yield Rejected(
                    number, "duplicate id", f"id {item.id!r} is already used on line {first}", obj
                )
                continue
            yield Accepted(number, item, obj)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc)
