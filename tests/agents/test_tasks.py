"""Task files, scripts and recorded-transcript replays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policylab.agents.models import is_recorded, load_agent_model
from policylab.agents.replay import RecordedModel, split_transcript
from policylab.agents.scripted import ScriptedModel
from policylab.agents.tasks import AGENTIC_TAG, TASK_KEY, load_tasks, task_of_item
from policylab.chat import ChatMessage
from policylab.errors import InputError
from policylab.models.base import FatalModelError, SamplingParams
from policylab.models.echo import EchoModel

REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "examples" / "agentic" / "tasks.yaml"


def test_the_example_task_file() -> None:
    tasks = load_tasks(TASKS)
    assert len(tasks.tasks) == 8
    assert tasks.max_turns == 8
    pay = tasks.by_id()["pay-bob"]
    assert tasks.groups_for(pay) == ("payments",)
    assert tasks.groups_for(pay, ("files",)) == ("files",)
    assert tasks.turns_for(pay) == 8
    assert tasks.turns_for(pay, 3) == 3
    item = next(i for i in tasks.items() if i.id == "pay-bob")
    assert item.tags == [AGENTIC_TAG]
    assert item.categories == ["AGT.PAY"]
    assert item.metadata["rule_ids"] == ["AGT.PAY.a"]
    again = task_of_item(item.id, item.metadata)
    assert again == pay
    assert task_of_item("x", {}) is None
    assert item.metadata[TASK_KEY]["setup"]["payees"] == {
        "Bob": "acct-bob",
        "Landlord": "acct-landlord",
    }


def test_task_file_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "tasks.yaml"
    path.write_text(
        "tasks:\n"
        "  - id: a\n    prompt: x\n    tools: [files, bank]\n"
        "  - id: b\n    prompt: y\n    setup: {balanse: 5}\n"
        "  - id: a\n    messages: [{role: user, content: z}]\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as info:
        load_tasks(path)
    text = info.value.render()
    assert "tasks.yaml:2:5 (tasks[a])" in text
    assert "unknown tool group(s) ['bank']" in text
    assert "(tasks[b].setup.balanse): unknown key `balanse`" in text
    assert "did you mean `balance`?" in text


def test_repeated_ids_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "tasks.yaml"
    path.write_text("tasks:\n  - {id: a, prompt: x}\n  - {id: a, prompt: y}\n", encoding="utf-8")
    with pytest.raises(InputError, match="task ids must be unique; repeated: a"):
        load_tasks(path)


async def test_scripted_model_plays_turns_by_position(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: demo\ntasks:\n  t:\n    - calls: [{tool: pay, arguments: {b: 2, a: 1}}]\n"
        "    - say: done\ndefault:\n  - say: no\n",
        encoding="utf-8",
    )
    model = ScriptedModel(path)
    assert model.name == "scripted:demo"
    first = await model.complete(
        [ChatMessage(role="user", content="x")], params=SamplingParams(), item_id="t"
    )
    assert first.message["tool_calls"][0]["function"] == {
        "name": "pay",
        "arguments": '{"a":1,"b":2}',
    }
    assert first.finish_reason == "tool_calls"
    history = [
        ChatMessage(role="user", content="x"),
        ChatMessage.model_validate(first.message),
        ChatMessage(role="tool", tool_call_id="call_1_1", content="ok"),
    ]
    second = await model.complete(history, params=SamplingParams(), item_id="t")
    assert second.text == "done"
    other = await model.complete(
        [ChatMessage(role="user", content="x")], params=SamplingParams(), item_id="z"
    )
    assert other.text == "no"
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks:\n  t:\n    - {}\n", encoding="utf-8")
    with pytest.raises(InputError, match="a turn needs `say`"):
        ScriptedModel(bad)


TRANSCRIPT = [
    {"role": "system", "content": "You are a payments agent."},
    {"role": "user", "content": "Pay Bob $20."},
    {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "send_payment", "arguments": "{}"},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "sent"},
    {"role": "assistant", "content": "Done."},
]


def test_split_transcript() -> None:
    messages = [ChatMessage.model_validate(m) for m in TRANSCRIPT]
    request, agent = split_transcript(messages)
    assert [m.role for m in request] == ["system", "user"]
    assert [m.role for m in agent] == ["assistant", "tool", "assistant"]
    assert split_transcript(request) == (request, [])


async def test_recorded_replays_an_items_own_transcript() -> None:
    model = RecordedModel()
    messages = [ChatMessage.model_validate(m) for m in TRANSCRIPT]
    answer = await model.complete(messages, params=SamplingParams(), item_id="t1")
    assert answer.text == "Done."
    assert answer.transcript == TRANSCRIPT[2:]
    with pytest.raises(FatalModelError, match="no assistant turn to replay"):
        await model.complete(messages[:2], params=SamplingParams(), item_id="t1")


async def test_recorded_replays_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"id": "t1", "messages": TRANSCRIPT}) + "\n", encoding="utf-8")
    model = RecordedModel(path)
    request = [ChatMessage.model_validate(m) for m in TRANSCRIPT[:2]]
    answer = await model.complete(request, params=SamplingParams(), item_id="t1")
    assert [m["role"] for m in answer.transcript or []] == ["assistant", "tool", "assistant"]
    # Found by the request too, when the item's id differs.
    by_request = await model.complete(request, params=SamplingParams(), item_id="other")
    assert by_request.text == "Done."
    with pytest.raises(FatalModelError, match="answers a different conversation"):
        await model.complete(
            [ChatMessage(role="user", content="Something else.")],
            params=SamplingParams(),
            item_id="t1",
        )


def test_agent_model_specs(tmp_path: Path) -> None:
    assert is_recorded("recorded")
    assert is_recorded("recorded:x.jsonl")
    assert not is_recorded("echo")
    assert isinstance(load_agent_model("echo"), EchoModel)
    assert isinstance(load_agent_model("recorded"), RecordedModel)
    script = tmp_path / "s.yaml"
    script.write_text("tasks: {}\n", encoding="utf-8")
    assert isinstance(load_agent_model(f"scripted:{script}"), ScriptedModel)
