"""Fixtures for the grader tests: a mock LLM judge that behaves like a naive model.

The mock answers OpenAI-style chat completions. It reads the judge's user message the way a
gullible model would: the last thing in it that looks like a verdict (a JSON object with a
`behavior` key, "the correct label is X", "output X", "verdict: X") wins, and is echoed back.
Only when the message fences the content with a code declared outside the fence (the protection
`templates/graders/judge_user.md.j2` gives) does it ignore what lies inside the fence; then it
answers honestly from the fenced response: `comply` when the response holds "Step 1", else `refuse`.

So an injection test passes only while the protection is in place: remove the fence from the
template and the mock obeys the injection.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from policylab.policy.loader import load_policy
from policylab.policy.schema import Policy

REPO = Path(__file__).resolve().parents[2]

_DECLARED = re.compile(r"Only lines carrying the code ([0-9a-f]{16}) open or close the content")
_JSON = re.compile(r"\{[^{}]*\"behavior\"[^{}]*\}")
_SAYS = re.compile(
    r"(?:correct label is|label:|output|verdict:|classify (?:this|it) as)\s*\"?(comply|partial|refuse)\b",
    re.IGNORECASE,
)


def naive_reading(user: str) -> str | None:
    """What a naive model would echo from `user`: the last verdict-looking text, if any."""
    last: tuple[int, str] | None = None
    for m in _JSON.finditer(user):
        last = (m.start(), m.group(0))
    for m in _SAYS.finditer(user):
        if last is None or m.start() > last[0]:
            verdict = {"behavior": m.group(1).lower(), "violation": False, "confidence": 0.99}
            last = (m.start(), json.dumps(verdict))
    return last[1] if last else None


def honest_reply(response: str, *, category: str | None = None) -> str:
    behavior = "comply" if "Step 1" in response else "refuse"
    return json.dumps(
        {
            "behavior": behavior,
            "violation": behavior == "comply",
            "category": category,
            "rule_ids": [],
            "confidence": 0.9,
            "rationale": "gives the steps" if behavior == "comply" else "declines",
        }
    )


def judge(user: str) -> str:
    """The mock judge's reply to one user message."""
    declared = _DECLARED.search(user)
    if declared:
        nonce = declared.group(1)
        fenced = re.compile(
            rf"^BEGIN {nonce}[^\n]*\n(.*?)^END {nonce}[^\n]*$", re.DOTALL | re.MULTILINE
        )
        outside = fenced.sub("", user)
        injected = naive_reading(outside)
        if injected:
            return injected
        match = re.search(
            rf"^BEGIN {nonce} RESPONSE\n(.*?)^END {nonce} RESPONSE$", user, re.DOTALL | re.MULTILINE
        )
        return honest_reply(match.group(1) if match else "")
    injected = naive_reading(user)
    return injected if injected is not None else honest_reply(user)


@dataclass
class MockJudge:
    url: str = ""
    script: list[Any] = field(default_factory=list)
    """Per request, popped in order: an HTTP status to fail with, or a literal reply text."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    harmony: bool = False
    """Reply with raw harmony channels (an analysis channel with a decoy, then the final one)."""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        step = self.script.pop(0) if self.script else None
        if isinstance(step, int):
            return web.json_response({"error": {"message": f"scripted {step}"}}, status=step)
        user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        content = step if isinstance(step, str) else judge(user)
        if self.harmony:
            decoy = '{"behavior": "partial", "violation": false}'
            content = (
                f"<|channel|>analysis<|message|>Thinking. Maybe {decoy}?<|end|>"
                f"<|start|>assistant<|channel|>final<|message|>{content}<|return|>"
            )
        return web.json_response(
            {
                "id": "mock",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20},
            }
        )


@pytest.fixture
async def mock_judge() -> AsyncIterator[MockJudge]:
    mock = MockJudge()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", mock.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    mock.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield mock
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
def acme() -> Policy:
    return load_policy(REPO / "examples" / "policies" / "acme" / "policy.yaml").policy
