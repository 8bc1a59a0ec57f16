"""Replaying recorded responses."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from policylab.chat import ChatMessage, user
from policylab.errors import InputError
from policylab.models.base import FatalModelError, SamplingParams
from policylab.models.replay import ReplayModel

PARAMS = SamplingParams()


def write(path: Path, records: list[object]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


async def test_matches_by_id_then_by_prompt(tmp_path: Path) -> None:
    path = write(
        tmp_path / "r.jsonl",
        [
            {"id": "a", "response": "answer A", "usage": {"prompt_tokens": 3}},
            {
                "messages": [
                    {"role": "user", "content": "what is B?"},
                    {"role": "assistant", "content": "answer B"},
                ],
                "finish_reason": "length",
            },
            {"id": 7, "messages": [{"role": "user", "content": "c?"}], "response": "answer C"},
        ],
    )
    model = ReplayModel(path)
    try:
        a = await model.complete([user("anything")], params=PARAMS, item_id="a")
        b = await model.complete([user("what is B?")], params=PARAMS, item_id="unknown")
        c_by_id = await model.complete([user("other")], params=PARAMS, item_id="7")
        c_by_prompt = await model.complete([user("c?")], params=PARAMS)
    finally:
        await model.aclose()
    assert (a.text, a.prompt_tokens, a.finish_reason) == ("answer A", 3, "stop")
    assert (b.text, b.finish_reason) == ("answer B", "length")
    assert b.message == {"role": "assistant", "content": "answer B"}
    assert c_by_id.text == c_by_prompt.text == "answer C"


async def test_a_missing_item_is_a_clear_error_for_that_item(tmp_path: Path) -> None:
    model = ReplayModel(write(tmp_path / "r.jsonl", [{"id": "a", "response": "x"}]))
    try:
        with pytest.raises(FatalModelError) as caught:
            await model.complete([user("q")], params=PARAMS, item_id="zz")
        ok = await model.complete([user("q")], params=PARAMS, item_id="a")
    finally:
        await model.aclose()
    assert caught.value.kind == "not_recorded"
    assert "'zz'" in caught.value.message
    assert str(tmp_path / "r.jsonl") in caught.value.message
    assert not caught.value.stops_run
    assert ok.text == "x"


async def test_a_recorded_error_replays_as_a_failure(tmp_path: Path) -> None:
    model = ReplayModel(write(tmp_path / "r.jsonl", [{"id": "a", "error": "http_500: boom"}]))
    try:
        with pytest.raises(FatalModelError, match="http_500: boom"):
            await model.complete([user("q")], params=PARAMS, item_id="a")
    finally:
        await model.aclose()


def test_broken_lines_are_listed_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(
        '{"id": "a", "response": "ok"}\n'
        "not json\n"
        "\n"
        '{"id": "b"}\n'
        '{"id": "a", "response": "again"}\n'
        '{"response": "no id and no prompt"}\n'
        '{"id": "c", "messages": [{"role": "wizard", "content": "x"}], "response": "r"}\n',
        encoding="utf-8",
    )
    with pytest.raises(InputError) as caught:
        ReplayModel(path)
    text = str(caught.value)
    assert "5 problems" in text
    for line in (2, 4, 5, 6, 7):
        assert f"{path}:{line}" in text
    assert f"{path}:1" not in text
    assert "id 'a' appears twice" in text


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        ReplayModel(tmp_path / "nope.jsonl")


async def test_assistant_tool_calls_are_replayed(tmp_path: Path) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    path = write(
        tmp_path / "r.jsonl",
        [
            {
                "id": "t",
                "messages": [
                    {"role": "user", "content": "use the tool"},
                    {"role": "assistant", "tool_calls": [call]},
                ],
            }
        ],
    )
    model = ReplayModel(path)
    try:
        out = await model.complete(
            [ChatMessage(role="user", content="use the tool")], params=PARAMS
        )
    finally:
        await model.aclose()
    assert out.text == ""
    assert out.message == {"role": "assistant", "tool_calls": [call]}
