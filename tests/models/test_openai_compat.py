"""The OpenAI-compatible model against the mock server: the wire format and every fault class."""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

import orjson
import pytest

from policylab.chat import ChatMessage, user
from policylab.models.base import FatalModelError, RetryableError, SamplingParams
from policylab.models.openai_compat import OpenAICompatModel, parse_retry_after


def model_for(server: Any, **kwargs: Any) -> OpenAICompatModel:
    return OpenAICompatModel("mock-model", server.base_url, **kwargs)


async def test_completion_is_parsed(mock_openai: Any) -> None:
    model = model_for(mock_openai, api_key="sk-test")
    try:
        out = await model.complete([user("hello there")], params=SamplingParams())
    finally:
        await model.aclose()
    assert out.text == "Mock answer to: hello there"
    assert out.message == {"role": "assistant", "content": "Mock answer to: hello there"}
    assert out.finish_reason == "stop"
    assert (out.prompt_tokens, out.completion_tokens) == (2, 5)
    assert out.raw is not None
    assert out.raw["model"] == "mock-model"
    assert mock_openai.state.count("hello there") == 1


def test_request_body_carries_messages_and_params() -> None:
    model = OpenAICompatModel("m", "http://x/v1", extra_body={"logprobs": False})
    messages = [
        ChatMessage(role="system", content="Be brief."),
        user("hi"),
    ]
    params = SamplingParams(temperature=0.0, top_p=0.5, max_tokens=7, seed=3, stop=("\n",))
    body = orjson.loads(model.request_body(messages, params))
    assert body == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "temperature": 0.0,
        "top_p": 0.5,
        "max_tokens": 7,
        "seed": 3,
        "stop": ["\n"],
        "logprobs": False,
    }
    assert model.name == "openai:m@http://x/v1"


@pytest.mark.parametrize(
    ("fault", "error", "kind", "stops_run"),
    [
        ("429", RetryableError, "http_429", False),
        ("500", RetryableError, "http_500", False),
        ("503", RetryableError, "http_503", False),
        ("badjson", RetryableError, "malformed_json", False),
        ("nochoices", FatalModelError, "empty_choices", False),
        ("400", FatalModelError, "http_400", False),
        ("401", FatalModelError, "http_401", True),
        ("404", FatalModelError, "http_404", True),
        ("html", FatalModelError, "not_json", True),
    ],
)
async def test_faults_are_classified(
    mock_openai: Any, fault: str, error: type[Exception], kind: str, stops_run: bool
) -> None:
    model = model_for(mock_openai)
    try:
        with pytest.raises(error) as caught:
            await model.complete([user(f"q [[fault:{fault}]]")], params=SamplingParams())
    finally:
        await model.aclose()
    exc = caught.value
    assert getattr(exc, "kind", None) == kind
    assert getattr(exc, "stops_run", False) is stops_run
    if fault == "429":
        assert isinstance(exc, RetryableError)
        assert exc.retry_after == 1.0
        assert "Rate limit reached" in str(exc)


async def test_a_hung_connection_times_out(mock_openai: Any) -> None:
    model = model_for(mock_openai, timeout=0.3)
    try:
        with pytest.raises(RetryableError) as caught:
            await model.complete([user("q [[fault:hang]]")], params=SamplingParams())
        # The session survives a timeout: the next request goes through.
        out = await model.complete([user("after the hang")], params=SamplingParams())
    finally:
        await model.aclose()
    assert caught.value.kind == "timeout"
    assert out.text.startswith("Mock answer")


async def test_a_refused_connection_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the request: nobody listens there
    model = OpenAICompatModel("m", f"http://127.0.0.1:{port}/v1", timeout=5)
    try:
        with pytest.raises(RetryableError) as caught:
            await model.complete([user("hi")], params=SamplingParams())
    finally:
        await model.aclose()
    assert caught.value.kind == "connection"


def test_retry_after_in_seconds_milliseconds_and_http_dates() -> None:
    now = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after({"Retry-After": "7"}, now=now) == 7.0
    assert parse_retry_after({"Retry-After": "1.5"}, now=now) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}, now=now) == 0.25
    date = "Wed, 01 Jan 2025 12:00:30 GMT"
    assert parse_retry_after({"Retry-After": date}, now=now) == 30.0
    past = "Wed, 01 Jan 2025 11:00:00 GMT"
    assert parse_retry_after({"Retry-After": past}, now=now) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}, now=now) is None
    assert parse_retry_after({}, now=now) is None
