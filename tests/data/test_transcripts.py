"""Agent transcripts in the OpenAI chat format, imported to grade as they stand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from policylab.chat import ChatMessage
from policylab.data.importer import Accepted, Rejected
from policylab.data.items import TRANSCRIPT_TAG
from policylab.data.transcripts import read_transcripts, transcript_problems


def _call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "pay", "arguments": "{}"}}


GOOD = {
    "id": "t1",
    "messages": [
        {"role": "user", "content": "Pay Bob."},
        {"role": "assistant", "content": None, "tool_calls": [_call("c1")]},
        {"role": "tool", "tool_call_id": "c1", "content": "sent"},
        {"role": "assistant", "content": "Done."},
    ],
    "categories": ["AGT.PAY"],
    "expected_behavior": "comply",
    "tools": [{"type": "function", "function": {"name": "pay"}}],
    "metadata": {"run": 3},
}


def _file(tmp_path: Path, *lines: Any) -> Path:
    path = tmp_path / "t.jsonl"
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n",
        encoding="utf-8",
    )
    return path


def test_a_transcript_line(tmp_path: Path) -> None:
    (result,) = list(read_transcripts(_file(tmp_path, GOOD)))
    assert isinstance(result, Accepted)
    item = result.item
    assert item.id == "t1"
    assert item.tags == [TRANSCRIPT_TAG]
    assert item.categories == ["AGT.PAY"]
    assert item.source == "transcripts:t.jsonl"
    assert item.messages[-1].role == "assistant"  # allowed: the item is tagged transcript
    assert item.metadata == {"run": 3, "tools": GOOD["tools"]}


def test_inconsistent_tool_calls_are_rejected(tmp_path: Path) -> None:
    orphan = GOOD | {"id": "t2", "messages": [*GOOD["messages"][:1], GOOD["messages"][2]]}
    twice = GOOD | {
        "id": "t3",
        "messages": [GOOD["messages"][0], GOOD["messages"][1], GOOD["messages"][1]],
    }
    bad_role = GOOD | {"id": "t4", "messages": [{"role": "robot", "content": "x"}]}
    bad_label = GOOD | {"id": "t5", "expected_behavior": "maybe"}
    results = list(
        read_transcripts(_file(tmp_path, GOOD, orphan, twice, bad_role, "{oops", bad_label, GOOD))
    )
    assert isinstance(results[0], Accepted)
    rejected = [(r.row, r.kind, r.reason) for r in results if isinstance(r, Rejected)]
    assert [(row, kind) for row, kind, _ in rejected] == [
        (2, "invalid transcript"),
        (3, "invalid transcript"),
        (4, "invalid transcript"),
        (5, "invalid JSON"),
        (6, "invalid transcript"),
        (7, "duplicate id"),
    ]
    reasons = [reason for _, _, reason in rejected]
    assert (
        "message 2: a tool result for call 'c1', which no earlier assistant message makes"
        in reasons[0]
    )
    assert "message 3: tool call id 'c1' is used twice" in reasons[1]
    assert reasons[2].startswith("message 1: role")
    assert reasons[4].startswith("expected_behavior:")
    assert reasons[5] == "id 't1' is already used on line 1"


def test_transcript_problems() -> None:
    ok = [ChatMessage.model_validate(m) for m in GOOD["messages"]]
    assert transcript_problems(ok) == []
