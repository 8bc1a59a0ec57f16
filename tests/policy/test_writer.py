"""Writing a policy as YAML: block style, Markdown in literal blocks, and an exact round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from policylab.chat import ChatMessage, FunctionCall, ToolCall
from policylab.core import Behavior, Severity
from policylab.errors import InputError
from policylab.policy.loader import load_policy
from policylab.policy.schema import (
    Category,
    ChangelogEntry,
    Example,
    ExampleResponse,
    Gates,
    Owner,
    Policy,
    ResponseLabel,
    Rule,
)
from policylab.policy.writer import dump_policy_yaml, policy_yaml


def _policy() -> Policy:
    markdown = (
        "A *Markdown* description.\n\n- a list item\n- another   with spaces\n\n```\ncode\n```"
    )
    return Policy(
        id="tricky",
        version="1.2.0",
        title="Tricky: strings that look like other things",
        scope="yes",  # a YAML 1.1 boolean if written plain
        owners=[Owner(name="2024-01-01", role="null")],
        changelog=[ChangelogEntry(version="1.2.0", date=dt.date(2025, 2, 12), summary="1.0")],
        categories=[
            Category(
                id="CYB",
                title="Cyber: #1 risk",
                description=markdown,
                severity=Severity.HIGH,
                expected_behavior=Behavior.PARTIAL,
                mappings={"llama_guard": ["S2"]},
            )
        ],
        rules=[
            Rule(
                id="CYB.a",
                title="Two  spaces, then a tab:\tthere",
                violating=["trailing spaces on a line   \nand a second line"],
                allowed=["- starts like a list item", "'quoted'", "@at", "%percent", "* star"],
            )
        ],
        examples=[
            Example(
                id="ex.1",
                category="CYB",
                messages=[
                    ChatMessage(
                        role="assistant",
                        tool_calls=[
                            ToolCall(
                                id="call_1",
                                function=FunctionCall(name="browser", arguments='{"input": "x"}'),
                            )
                        ],
                    ),
                    ChatMessage(role="tool", content="page", name="browser", tool_call_id="call_1"),
                    ChatMessage(role="user", content="   indented first line\nsecond"),
                ],
                expected_behavior=Behavior.REFUSE,
                responses=[ExampleResponse(label=ResponseLabel.GOOD, text="No.\n\nSorry.")],
                rationale="Because: reasons.",
                tags=["a: b"],
            )
        ],
        gates=Gates(over_refusal=0.1),
    )


def test_round_trip_is_exact(tmp_path: Path) -> None:
    policy = _policy()
    path = dump_policy_yaml(policy, tmp_path / "sub" / "policy.yaml")
    assert path.exists()
    assert load_policy(path).policy == policy


def test_block_style_with_literal_markdown() -> None:
    text = policy_yaml(_policy())
    assert "description: |-\n      A *Markdown* description.\n\n      - a list item\n" in text
    assert "{" not in text.split("arguments:")[0]  # no flow-style mappings
    data = YAML(typ="safe").load(text)
    assert list(data)[:5] == ["id", "version", "title", "scope", "owners"]
    assert "\nscope: 'yes'\n" in text  # quoted for YAML 1.1 readers, where it is a boolean
    assert data["scope"] == "yes"
    assert "grader_token_budget" not in data  # defaults are left out
    assert data["gates"] == {"over_refusal": 0.1}


def test_a_policy_no_file_could_hold_is_refused(tmp_path: Path) -> None:
    policy = _policy().model_copy(update={"owners": [], "version": "v2"})
    with pytest.raises(InputError, match="not written") as info:
        dump_policy_yaml(policy, tmp_path / "bad.yaml")
    assert "owners" in str(info.value)
    assert "version" in str(info.value)
    assert not (tmp_path / "bad.yaml").exists()
