from __future__ import annotations

import pytest

from policylab.data.redact import Redactor, luhn_valid, redact


@pytest.mark.parametrize(
    ("text", "expected", "counts"),
    [
        ("Mail jane.doe+x@example.co.uk now", "Mail [EMAIL] now", {"email": 1}),
        ("Call +44 20 7946 0958 today", "Call [PHONE] today", {"phone": 1}),
        ("Call (555) 123-4567 or 555-0134.", "Call [PHONE] or [PHONE].", {"phone": 2}),
        ("US: 415.555.0123", "US: [PHONE]", {"phone": 1}),
        ("Card 4111 1111 1111 1111 ok", "Card [CARD] ok", {"card": 1}),
        ("Card 5500-0000-0000-0004", "Card [CARD]", {"card": 1}),
        ("Host 192.168.1.20 up", "Host [IP] up", {"ip": 1}),
        ("v6 2001:db8::1 and fe80::1ff:fe23:4567:890a", "v6 [IP] and [IP]", {"ip": 2}),
        ("at 221B Baker Street, London", "at [ADDRESS], London", {"address": 1}),
        ("1600 Pennsylvania Ave NW, Suite 200 is it", "[ADDRESS] is it", {"address": 1}),
        ("Ask Dr. Alan Smith", "Ask [NAME]", {"name": 1}),
        ("Hi, my name is Jane Roe.", "Hi, my name is [NAME].", {"name": 1}),
    ],
)
def test_each_kind_is_found_and_replaced(text: str, expected: str, counts: dict[str, int]) -> None:
    assert redact(text) == (expected, counts)


@pytest.mark.parametrize(
    "text",
    [
        "Card 4111 1111 1111 1112 fails the Luhn check",
        "The date 2024-01-15 and the time 12:30:45",
        "pi is 3.14159265; pages 1000-2000; version 1.2.3; order 12345678",
        "std::vector and a::b are code",
        "999.1.1.1 is not an address; nor is 1.2.3.4.5",
        "I walked 5 miles down the road",
        "Nothing to see here.",
    ],
)
def test_lookalikes_are_left_alone(text: str) -> None:
    assert redact(text) == (text, {})


def test_luhn_reference_values() -> None:
    # Published test numbers (Visa, Mastercard, Amex) pass; a changed last digit fails.
    for number in ("4111111111111111", "5500000000000004", "378282246310005", "79927398713"):
        assert luhn_valid(number)
    for number in ("4111111111111112", "79927398710", "1234567812345678"):
        assert not luhn_valid(number)


def test_messages_are_redacted_everywhere_and_counted() -> None:
    redactor = Redactor()
    messages = [
        {"role": "system", "content": "Agent for jo@example.com"},
        {"role": "user", "content": [{"type": "text", "text": "I am at 10 Downing Street"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "lookup", "arguments": '{"ip": "10.0.0.7"}'},
                }
            ],
        },
    ]
    out = redactor.redact_messages(messages)
    assert out[0]["content"] == "Agent for [EMAIL]"
    assert out[1]["content"][0]["text"] == "I am at [ADDRESS]"
    assert out[2]["tool_calls"][0]["function"]["arguments"] == '{"ip": "[IP]"}'
    assert messages[0]["content"] == "Agent for jo@example.com"  # the input is not changed
    assert dict(redactor.counts) == {"email": 1, "address": 1, "ip": 1}


def test_kinds_can_be_limited() -> None:
    text = "jo@example.com 192.168.0.1"
    assert redact(text, kinds=["ip"]) == ("jo@example.com [IP]", {"ip": 1})
    with pytest.raises(ValueError, match="unknown PII kinds"):
        Redactor(kinds=["ssn"])  # type: ignore[list-item]
