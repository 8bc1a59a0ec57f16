"""OpenAI-compatible requests with tools, and images given as files sent as data URLs."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import orjson
import pytest
from PIL import Image

from policylab.chat import ChatMessage
from policylab.models.base import FatalModelError, SamplingParams, can_call_tools
from policylab.models.echo import EchoModel
from policylab.models.openai_compat import OpenAICompatModel

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_balance",
            "description": "The balance.",
            "parameters": {"type": "object", "properties": {}, "required": []},
        },
    }
]


def _vision(url: str) -> ChatMessage:
    return ChatMessage.model_validate(
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
            ],
        }
    )


def test_tools_go_in_the_request() -> None:
    model = OpenAICompatModel("m", "http://localhost:1/v1")
    assert can_call_tools(model)
    assert not can_call_tools(EchoModel())
    body = orjson.loads(
        model.request_body([ChatMessage(role="user", content="hi")], SamplingParams(), TOOLS)
    )
    assert body["tools"] == TOOLS
    plain = orjson.loads(
        model.request_body([ChatMessage(role="user", content="hi")], SamplingParams())
    )
    assert "tools" not in plain


def test_image_files_are_sent_as_data_urls(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 0)).save(out, format="PNG")
    path = tmp_path / "x.png"
    path.write_bytes(out.getvalue())
    model = OpenAICompatModel("m", "http://localhost:1/v1")
    body = orjson.loads(model.request_body([_vision(str(path))], SamplingParams()))
    image = body["messages"][0]["content"][1]["image_url"]
    assert image == {
        "url": "data:image/png;base64," + base64.b64encode(out.getvalue()).decode(),
        "detail": "low",
    }
    remote = orjson.loads(
        model.request_body([_vision("https://x.example/a.png")], SamplingParams())
    )
    assert remote["messages"][0]["content"][1]["image_url"]["url"] == "https://x.example/a.png"
    with pytest.raises(FatalModelError, match="bad_image: no image file at"):
        model.request_body([_vision(str(tmp_path / "gone.png"))], SamplingParams())
