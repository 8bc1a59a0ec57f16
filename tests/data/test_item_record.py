from __future__ import annotations

import hashlib
import unicodedata

import pytest
from pydantic import ValidationError

from policylab.chat import ChatMessage
from policylab.core import Behavior
from policylab.data.items import TRANSCRIPT_TAG, ItemRecord, content_hash, normalise_text


def test_from_prompt_builds_a_user_turn_after_an_optional_system_prompt() -> None:
    item = ItemRecord.from_prompt(
        "How do I pick a lock?",
        id="lock-1",
        system="You are helpful.",
        categories=["VIO", "VIO"],
        expected_behavior="partial",
        tags=[" a ", "b", "a"],
    )
    assert [m.role for m in item.messages] == ["system", "user"]
    assert item.prompt == "How do I pick a lock?"
    assert item.categories == ["VIO"]
    assert item.tags == ["a", "b"]
    assert item.expected_behavior is Behavior.PARTIAL
    assert item.text == "system: You are helpful.\n\nuser: How do I pick a lock?"


def test_id_defaults_to_the_content_hash_prefix() -> None:
    item = ItemRecord.from_prompt("hello")
    assert item.id == item.content_hash[:16]


def test_content_hash_matches_the_documented_canonical_form() -> None:
    # Canonical form: the messages as JSON with sorted keys, no spaces, unset keys left out.
    expected = hashlib.sha256(b'[{"content":"hi","role":"user"}]').hexdigest()
    assert ItemRecord.from_prompt("hi").content_hash == expected
    assert ItemRecord.from_prompt("  hi \r\n").content_hash == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("line one\r\nline two", "line one\nline two"),
        ("line one\rline two", "line one\nline two"),
        ("trailing   \nspaces\t", "trailing\nspaces"),
        (unicodedata.normalize("NFD", "café"), unicodedata.normalize("NFC", "café")),
    ],
)
def test_invisible_differences_do_not_change_the_hash(a: str, b: str) -> None:
    assert normalise_text(a) == normalise_text(b)
    assert ItemRecord.from_prompt(a).content_hash == ItemRecord.from_prompt(b).content_hash


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("a b", "a  b"),  # inner spaces are layout (code, poems)
        ("Hello", "hello"),
        ("para\n\nnext", "para\nnext"),
    ],
)
def test_visible_differences_change_the_hash(a: str, b: str) -> None:
    assert ItemRecord.from_prompt(a).content_hash != ItemRecord.from_prompt(b).content_hash


def test_hash_ignores_labels_but_not_roles_or_images() -> None:
    base = ItemRecord.from_prompt("x", id="1")
    relabelled = ItemRecord.from_prompt(
        "x", id="2", categories=["CYB"], metadata={"k": 1}, tags=["t"]
    )
    assert base.content_hash == relabelled.content_hash
    with_system = ItemRecord.from_prompt("x", system="be brief")
    assert with_system.content_hash != base.content_hash

    def image(url: str, text: str = "what is this?") -> list[ChatMessage]:
        return [
            ChatMessage.model_validate(
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": text},
                        {"type": "image_url", "image_url": {"url": url}},
                    ],
                }
            )
        ]

    assert content_hash(image("http://a/1.png")) != content_hash(image("http://a/2.png"))
    # Text parts are normalised like string content.
    assert content_hash(image("http://a/1.png", "what is this? \r\n")) == content_hash(
        image("http://a/1.png")
    )


def test_the_last_turn_must_await_the_model_unless_tagged_transcript() -> None:
    convo = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    with pytest.raises(ValidationError, match="ends on a assistant turn"):
        ItemRecord(id="1", messages=convo)
    item = ItemRecord(id="1", messages=convo, tags=[TRANSCRIPT_TAG])
    assert item.messages[-1].role == "assistant"


def test_a_tool_result_may_be_the_last_turn() -> None:
    item = ItemRecord.model_validate(
        {
            "id": "t",
            "messages": [
                {"role": "user", "content": "weather in Paris?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "18C, cloudy"},
            ],
        }
    )
    assert item.prompt == "weather in Paris?"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"id": "1", "messages": []}, "at least 1 item"),
        ({"id": "1", "messages": [{"role": "system", "content": "x"}]}, "no user turn"),
        ({"id": "", "messages": [{"role": "user", "content": "x"}]}, "at least 1 character"),
        ({"id": "1", "messages": [{"role": "user", "content": "x"}], "colour": 1}, "Extra"),
        (
            {"id": "1", "messages": [{"role": "user", "content": "x"}], "expected_behavior": "no"},
            "comply",
        ),
    ],
)
def test_invalid_items_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ItemRecord.model_validate(data)


def test_messages_json_leaves_unset_keys_out() -> None:
    item = ItemRecord.from_prompt("x", system="s")
    assert item.messages_json() == [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "x"},
    ]
