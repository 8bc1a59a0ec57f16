"""A mock OpenAI-compatible chat completions server, for the runner benchmark and the fault tests.

Every request waits `latency` seconds, then answers with a short deterministic completion. A prompt
can script a fault for its own item with a directive in its last user message, so a test states the
fault next to the item it affects:

    [[fault:429*2]]     the first 2 requests answer 429 with `Retry-After: 1` (then a normal answer)
    [[fault:500]]       every request answers 500 (`*N` limits it to the first N requests)
    [[fault:badjson]]   a 200 whose JSON body is cut short
    [[fault:html]]      a 200 with an HTML page, as a wrong base URL gives
    [[fault:nochoices]] a 200 with an empty `choices` list
    [[fault:hang*1]]    the first request never gets an answer (the client must time out)
    [[fault:401]]       401 Unauthorized

`python bench/mock_server.py --port 0` serves in its own process and prints `PORT <n>` once
listening; `GET /stats` reports the requests served and the server's own CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import resource
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

FAULT = re.compile(r"\[\[fault:([a-z0-9]+)(?:\*(\d+))?\]\]")


@dataclass
class MockState:
    """What the server saw: requests per item (keyed by the last user message) and their times.

    `fail_all`, when set, is an HTTP status every request gets (say 401, as with a bad key).
    """

    latency: float = 0.05
    record: bool = True
    retry_after: str = "1"
    fail_all: int | None = None
    served: int = 0
    seen: Counter[str] = field(default_factory=Counter)
    times: dict[str, list[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, key: str) -> int:
        with self.lock:
            return self.seen[key]

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.seen)


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _completion(body: dict[str, Any], prompt: str) -> bytes:
    text = f"Mock answer to: {prompt[:60]}"
    words = sum(len(str(m.get("content") or "").split()) for m in body.get("messages") or [])
    return orjson.dumps(
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "mock"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": words,
                "completion_tokens": len(text.split()),
                "total_tokens": words + len(text.split()),
            },
        }
    )


def make_app(state: MockState) -> web.Application:
    """The aiohttp application serving `POST /v1/chat/completions` and `GET /stats`."""

    async def chat(request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        prompt = _last_user_text(body)
        state.served += 1
        n = 1
        if state.record:
            with state.lock:
                state.seen[prompt] += 1
                n = state.seen[prompt]
                state.times.setdefault(prompt, []).append(time.monotonic())
        if state.fail_all is not None:
            return web.json_response(
                {"error": {"message": f"mock error {state.fail_all}"}}, status=state.fail_all
            )
        fault = FAULT.search(prompt) if "[[fault:" in prompt else None
        if fault and (fault.group(2) is None or n <= int(fault.group(2))):
            kind = fault.group(1)
            if kind == "hang":
                await asyncio.sleep(3600)
            if kind == "429":
                return web.json_response(
                    {"error": {"message": "Rate limit reached", "type": "requests"}},
                    status=429,
                    headers={"Retry-After": state.retry_after},
                )
            if kind in {"500", "502", "503", "401", "400", "404"}:
                return web.json_response(
                    {"error": {"message": f"mock error {kind}", "type": "mock"}}, status=int(kind)
                )
            await asyncio.sleep(state.latency)
            if kind == "badjson":
                return web.Response(
                    body=_completion(body, prompt)[:40], content_type="application/json"
                )
            if kind == "html":
                return web.Response(
                    text="<html><body>Welcome</body></html>", content_type="text/html"
                )
            if kind == "nochoices":
                return web.json_response({"id": "x", "object": "chat.completion", "choices": []})
        await asyncio.sleep(state.latency)
        return web.Response(body=_completion(body, prompt), content_type="application/json")

    async def stats(_request: web.Request) -> web.Response:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return web.json_response({"served": state.served, "cpu_s": usage.ru_utime + usage.ru_stime})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/stats", stats)
    return app


class ServerThread:
    """The mock server on its own event loop in a background thread (for tests)."""

    def __init__(self, state: MockState | None = None) -> None:
        self.state = state or MockState(latency=0.01)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._runner = web.AppRunner(make_app(self.state), access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]

    def start(self) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the mock server did not start within 10 s")
        return self

    def stop(self) -> None:
        async def _stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


async def _serve_forever(port: int, state: MockState) -> None:
    runner = web.AppRunner(make_app(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    server = site._server
    assert server is not None
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per answer")
    args = parser.parse_args()
    state = MockState(latency=args.latency, record=False)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args.port, state))


if __name__ == "__main__":
    main()
