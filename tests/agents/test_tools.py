"""The local tools: deterministic, and nothing leaves the sandbox."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from policylab.agents.tools import GROUPS, TOOL_NAMES, Environment, Setup, parse_groups, tool_names
from policylab.errors import PolicylabError


def _call(env: Environment, name: str, **arguments: Any) -> tuple[Any, bool]:
    result = env.call(name, json.dumps(arguments))
    return json.loads(result.content), result.ok


SETUP = Setup.model_validate(
    {
        "files": {"notes/a.txt": "alpha", "scratch/tmp.txt": "temp"},
        "pages": {"https://w.example/a": {"title": "Agents", "text": "Agents ask first."}},
        "inbox": [{"from": "boss@example.com", "subject": "Hi", "body": "Pay the invoice."}],
        "address": "me@example.com",
        "balance": 100,
        "payees": {"Bob": "acct-bob"},
    }
)


def test_groups() -> None:
    assert parse_groups("payments, files") == ("files", "payments")
    assert tool_names(["mail"]) == ["list_emails", "read_email", "send_email"]
    assert len(tool_names()) == sum(len(v) for v in TOOL_NAMES.values()) == 12
    with pytest.raises(PolicylabError, match="unknown tool group"):
        parse_groups("files,bank")
    with Environment(SETUP) as env:
        names = [s["function"]["name"] for s in env.specs()]
    assert names == [n for g in GROUPS for n in TOOL_NAMES[g]]
    with Environment(SETUP, ("payments",)) as env:
        payload, ok = _call(env, "read_file", path="notes/a.txt")
    assert not ok
    assert "no tool named 'read_file'" in payload["error"]


def test_files_stay_in_the_sandbox() -> None:
    with Environment(SETUP, ("files",)) as env:
        assert _call(env, "read_file", path="notes/a.txt") == (
            {"content": "alpha", "path": "notes/a.txt"},
            True,
        )
        for bad in ("../outside.txt", "/etc/passwd", "notes/../../x", "C:/x"):
            payload, ok = _call(env, "read_file", path=bad)
            assert not ok
            assert "outside the workspace" in payload["error"]
        # A link planted inside the sandbox that points out of it is refused too.
        root = env._root
        assert root is not None
        os.symlink("/etc", root / "link")
        payload, ok = _call(env, "read_file", path="link/hostname")
        assert not ok
        assert "outside the workspace" in payload["error"]
        assert _call(env, "write_file", path="scratch/new.txt", content="hé") == (
            {"bytes": 3, "written": "scratch/new.txt"},
            True,
        )
        assert _call(env, "delete_file", path="scratch/tmp.txt") == (
            {"deleted": "scratch/tmp.txt"},
            True,
        )
        assert _call(env, "list_files", path="scratch") == (
            {"entries": ["scratch/new.txt"], "path": "scratch"},
            True,
        )
        assert env.side_effects()["files"] == ["notes/a.txt", "scratch/new.txt"]
    assert not root.exists()  # removed on exit


def test_results_never_show_the_real_path() -> None:
    with Environment(SETUP, ("files",)) as env:
        root = str(env._root)
        outputs = [
            env.call("list_files", "{}").content,
            env.call("read_file", '{"path": "nope"}').content,
            env.call("read_file", '{"path": "../x"}').content,
        ]
    assert all(root not in out for out in outputs)
    assert json.loads(outputs[0]) == {"entries": ["notes/", "scratch/"], "path": "."}


def test_arguments_are_checked() -> None:
    with Environment(SETUP, ("payments",)) as env:
        cases = {
            "{not json": "not valid JSON",
            "[1, 2]": "must be a JSON object",
            '{"to": "Bob"}': "missing required argument(s) ['amount']",
            '{"to": "Bob", "amount": "20"}': "argument 'amount' must be a number",
            '{"to": "Bob", "amount": 20, "cc": "x"}': "unknown argument(s) ['cc']",
        }
        for raw, message in cases.items():
            result = env.call("send_payment", raw)
            assert not result.ok
            assert message in json.loads(result.content)["error"]
        assert env.ledger == []


def test_payments() -> None:
    with Environment(SETUP, ("payments",)) as env:
        assert _call(env, "get_balance") == ({"balance": 100.0, "currency": "USD"}, True)
        paid, ok = _call(env, "send_payment", to="bob", amount=20, memo="lunch")
        assert ok
        assert paid == {
            "amount": 20.0,
            "balance": 80.0,
            "currency": "USD",
            "memo": "lunch",
            "payment_id": "pay-1",
            "status": "sent",
            "to": "acct-bob",
        }
        assert _call(env, "send_payment", to="acct-x1", amount=30)[0]["balance"] == 50.0
        payload, ok = _call(env, "send_payment", to="acct-x1", amount=50.01)
        assert not ok
        assert payload["error"] == "insufficient funds: balance 50.00 USD"
        payload, ok = _call(env, "send_payment", to="Mallory", amount=1)
        assert "unknown payee" in payload["error"]
        payload, ok = _call(env, "send_payment", to="Bob", amount=-5)
        assert payload["error"] == "the amount must be positive"
        assert [p["payment_id"] for p in env.ledger] == ["pay-1", "pay-2"]


def test_mail_and_web() -> None:
    with Environment(SETUP, ("mail", "web")) as env:
        listed, _ = _call(env, "list_emails")
        assert listed == {
            "emails": [{"date": None, "from": "boss@example.com", "id": "m1", "subject": "Hi"}]
        }
        assert _call(env, "read_email", id="m1")[0]["body"] == "Pay the invoice."
        assert _call(env, "send_email", to="a@b.example", subject="s", body="b") == (
            {"id": "sent-1", "status": "sent", "to": "a@b.example"},
            True,
        )
        assert env.outbox == [
            {
                "body": "b",
                "from": "me@example.com",
                "id": "sent-1",
                "subject": "s",
                "to": "a@b.example",
            }
        ]
        found, _ = _call(env, "search_web", query="agents ASK")
        assert [r["url"] for r in found["results"]] == ["https://w.example/a"]
        assert _call(env, "search_web", query="nothing here")[0]["results"] == []
        payload, ok = _call(env, "fetch_url", url="https://w.example/missing")
        assert (ok, payload["error"]) == (False, "404: no page at https://w.example/missing")


def test_the_same_calls_give_the_same_results() -> None:
    calls = [
        ("list_files", "{}"),
        ("write_file", '{"path": "scratch/x", "content": "y"}'),
        ("send_payment", '{"to": "Bob", "amount": 12.5}'),
        ("send_email", '{"to": "a@b.example", "subject": "s", "body": "b"}'),
        ("search_web", '{"query": "agents"}'),
    ]

    def play() -> list[str]:
        with Environment(SETUP) as env:
            return [env.call(name, raw).content for name, raw in calls]

    assert play() == play()
