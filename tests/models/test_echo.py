"""The echo test double."""

from __future__ import annotations

from policylab.chat import ChatMessage, user
from policylab.models.base import SamplingParams
from policylab.models.echo import PREFIX, EchoModel


async def test_echo_repeats_the_last_user_message() -> None:
    model = EchoModel()
    messages = [
        ChatMessage(role="system", content="sys"),
        user("first question"),
        ChatMessage(role="assistant", content="an answer"),
        user("second question here"),
    ]
    out = await model.complete(messages, params=SamplingParams())
    assert out.text == PREFIX + "second question here"
    assert out.finish_reason == "stop"
    assert out.prompt_tokens == 1 + 2 + 2 + 3
    assert out.completion_tokens == 3
    again = await model.complete(messages, params=SamplingParams())
    assert again.text == out.text


async def test_echo_stops_at_max_tokens() -> None:
    out = await EchoModel().complete([user("a b c d e")], params=SamplingParams(max_tokens=2))
    assert out.text == PREFIX + "a b"
    assert (out.finish_reason, out.completion_tokens) == ("length", 2)
