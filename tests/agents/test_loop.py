"""The interactive target: episodes, user replies, turn limits, real tool calling, and runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from policylab.agents.loop import AgentTarget, assistant_message, run_episode
from policylab.agents.scripted import ScriptedModel
from policylab.agents.tasks import Task, TaskSet, load_tasks
from policylab.data.importer import Accepted
from policylab.models.base import FatalModelError, SamplingParams
from policylab.models.echo import EchoModel
from policylab.models.openai_compat import OpenAICompatModel
from policylab.runs import RunOptions, run_model
from policylab.store.items import import_into_set
from policylab.store.models import Response
from policylab.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
TASKS = REPO / "examples" / "agentic" / "tasks.yaml"
SCRIPT = REPO / "examples" / "agentic" / "script.yaml"


def _script(tmp_path: Path, text: str) -> ScriptedModel:
    path = tmp_path / "script.yaml"
    path.write_text(text, encoding="utf-8")
    return ScriptedModel(path)


def _task(**fields: Any) -> Task:
    base = {
        "id": "t",
        "prompt": "Pay Bob $20.",
        "setup": {"balance": 50, "payees": {"Bob": "acct-b"}},
    }
    return Task.model_validate(base | fields)


async def test_an_episode_records_every_call_and_result(tmp_path: Path) -> None:
    model = _script(
        tmp_path,
        "tasks:\n  t:\n"
        "    - calls: [{tool: get_balance}, {tool: send_payment, arguments: {to: Bob, amount: 20}}]\n"
        "    - say: Sent $20 to Bob.\n",
    )
    episode = await run_episode(model, _task(), groups=("payments",), max_turns=5)
    roles = [m.role for m in episode.messages]
    assert roles == ["assistant", "tool", "tool", "assistant"]
    assert (episode.stop, episode.turns) == ("answered", 2)
    first = episode.messages[0]
    assert [c.function.name for c in first.tool_calls or []] == ["get_balance", "send_payment"]
    assert [m.tool_call_id for m in episode.messages[1:3]] == ["call_1_1", "call_1_2"]
    assert json.loads(episode.messages[2].text)["balance"] == 30.0
    assert episode.final.text == "Sent $20 to Bob."
    assert episode.side_effects["payments"][0]["to"] == "acct-b"


async def test_user_replies_answer_questions_only(tmp_path: Path) -> None:
    model = _script(
        tmp_path,
        "tasks:\n  t:\n"
        "    - say: I'll send $20 to Bob. Shall I go ahead?\n"
        "    - calls: [{tool: send_payment, arguments: {to: Bob, amount: 20}}]\n"
        "    - say: Done.\n",
    )
    task = _task(user_replies=["Yes, go ahead.", "Thanks!"])
    episode = await run_episode(model, task, groups=("payments",), max_turns=5)
    assert [(m.role, m.text[:8]) for m in episode.messages] == [
        ("assistant", "I'll sen"),
        ("user", "Yes, go "),
        ("assistant", ""),
        ("tool", '{"amount'),
        ("assistant", "Done."),  # a statement: the second reply is never said
    ]


async def test_the_turn_limit_ends_an_episode(tmp_path: Path) -> None:
    model = _script(tmp_path, "default:\n" + "    - calls: [{tool: get_balance}]\n" * 5)
    episode = await run_episode(model, _task(), groups=("payments",), max_turns=3)
    assert (episode.stop, episode.turns) == ("max_turns", 3)
    assert [m.role for m in episode.messages] == ["assistant", "tool"] * 3


async def test_a_model_without_tools_just_answers() -> None:
    episode = await run_episode(EchoModel(), _task(), groups=("payments",), max_turns=5)
    assert [m.role for m in episode.messages] == ["assistant"]
    assert episode.final.text == "[echo test double] Pay Bob $20."


async def test_a_script_that_runs_out_is_an_error(tmp_path: Path) -> None:
    model = _script(tmp_path, "tasks:\n  t:\n    - say: Shall I pay?\n")
    with pytest.raises(FatalModelError, match="has 1 turn"):
        await run_episode(model, _task(user_replies=["yes"]), groups=("payments",), max_turns=5)


def test_assistant_messages_from_servers_are_normalised() -> None:
    taken: set[str] = {"call_0"}
    raw = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "annotations": [],
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "pay", "arguments": {"a": 1}},
            },
            {"type": "function", "function": {"name": "pay"}},
        ],
    }
    message = assistant_message(raw, turn=2, taken=taken)
    calls = message.tool_calls or []
    assert [c.id for c in calls] == ["call_0-2-1", "call_2_2"]
    assert [c.function.arguments for c in calls] == ['{"a":1}', "{}"]
    refusal = assistant_message(
        {"role": "assistant", "content": None, "refusal": "No."}, turn=1, taken=set()
    )
    assert refusal.text == "No."


async def test_an_openai_compatible_endpoint_calls_tools() -> None:
    seen: list[dict[str, Any]] = []

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        if not any(m["role"] == "tool" for m in body["messages"]):
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "type": "function",
                        "function": {
                            "name": "send_payment",
                            "arguments": '{"to": "Bob", "amount": 5}',
                        },
                    }
                ],
            }
        else:
            message = {"role": "assistant", "content": "Paid Bob $5.", "refusal": None}
        return web.json_response(
            {
                "choices": [{"message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 3},
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    server = TestServer(app)
    await server.start_server()
    model = OpenAICompatModel("m", str(server.make_url("/v1")))
    try:
        episode = await run_episode(model, _task(), groups=("payments",), max_turns=4)
    finally:
        await model.aclose()
        await server.close()
    assert [m.role for m in episode.messages] == ["assistant", "tool", "assistant"]
    assert [t["function"]["name"] for t in seen[0]["tools"]] == [
        "get_balance",
        "list_payees",
        "send_payment",
    ]
    answered = seen[1]["messages"]
    assert answered[-2]["tool_calls"][0]["id"] == "call_abc"
    assert answered[-1]["tool_call_id"] == "call_abc"
    assert json.loads(answered[-1]["content"])["status"] == "sent"
    assert (episode.prompt_tokens, episode.completion_tokens) == (20, 6)


async def test_a_run_stores_the_whole_transcript(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / ".policylab")
    try:
        tasks = load_tasks(TASKS)
        items = [Accepted(i, item, {}) for i, item in enumerate(tasks.items(), start=1)]
        import_into_set(ws, "agentic", items, near_threshold=None)
        target = AgentTarget(ScriptedModel(SCRIPT), tasks)
        summary = await run_model(
            ws,
            target,
            items="agentic",
            name="r",
            options=RunOptions(concurrency=2, use_cache=False),
        )
        assert summary.status == "finished"
        assert summary.counts.succeeded == len(tasks.tasks)
        with ws.session() as session:
            rows = {
                r.item_id: r for r in session.scalars(select(Response).where(Response.run_id == 1))
            }
            stored = [r.messages for r in rows.values()]
        invoice = next(m for m in stored if any("acct-7731" in json.dumps(x) for x in m))
        assert [m["role"] for m in invoice] == [
            "assistant",
            "tool",
            "assistant",
            "tool",
            "assistant",
            "tool",
            "assistant",
        ]
        assert invoice[-1]["content"] == "I paid invoice 1042 ($950.00) to acct-7731."
    finally:
        ws.close()


async def test_an_agent_target_needs_the_items_task(tmp_path: Path) -> None:
    target = AgentTarget(EchoModel(), TaskSet(path=None, tasks=[_task()]))
    assert target.name == "agent[echo]"
    with pytest.raises(FatalModelError, match="no agent task for item 'other'"):
        await target.complete([], params=SamplingParams(), item_id="other")
    answer = await target.complete(_task().conversation, params=SamplingParams(), item_id="t")
    assert answer.transcript == [
        {"role": "assistant", "content": "[echo test double] Pay Bob $20."}
    ]
    named = AgentTarget(
        EchoModel(), TaskSet(path=None, tasks=[_task()]), tools=("files",), max_turns=3
    )
    assert named.name == "agent[echo;tools=files;max_turns=3]"
