"""The runner's link to the workspace during a run: pages of pending items in, responses out.

The database work of a run is `policylab.store.runs.StoreSide`: it reads a page of pending items,
validates their messages, computes their cache keys and looks them up, and commits batches of
responses and cache rows. The runner reaches it through a link:

- `ThreadLink` runs it on two threads of the runner's process: no start-up cost, for small runs;
- `ProcessLink` runs it in a child process, talking length-prefixed JSON over its stdin and stdout.
  Measured here, database work on threads slows the event loop far more than its CPU time
  suggests: Python threads share one interpreter lock, and a thread busy with SQLAlchemy or JSON
  takes it back every time the event loop waits on a socket, so answers sit unread (loop lag of
  30–70 ms at concurrency 256 on the 2-core machine, half the throughput of a bare aiohttp loop).
  In a second process that work runs on the other core, and the event loop only encodes and
  decodes JSON (orjson).
"""

from __future__ import annotations

import asyncio
import collections
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from sqlalchemy import Engine

from policylab.store.runs import FRAME_HEADER, LinkConfig, StoreSide

# The child imports only the store layer, so it starts in about half a second.
_CHILD = "from policylab.store.runs import serve_stdio; serve_stdio()"


class StoreLinkError(RuntimeError):
    """The store side failed (a database error, or its process died)."""


class ThreadLink:
    """The store side on two threads of this process: one reads pages, one writes."""

    def __init__(self, engine: Engine, config: LinkConfig) -> None:
        self.side = StoreSide(engine, config)
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policylab-read")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policylab-write")

    async def start(self) -> None:
        return None

    async def page(self, after: int, last_item: int | None) -> dict[str, Any] | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self.side.page, after, last_item)

    async def write(self, rows: list[list[Any]], cache_rows: list[list[Any]]) -> None:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._writer, self.side.write, rows, cache_rows)
        # Shielded: cancelling the caller must not cancel a queued write, or its rows would be lost.
        await asyncio.shield(future)

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.shutdown, wait=True)
        self._reader.shutdown(wait=False, cancel_futures=True)


class ProcessLink:
    """The store side in a child process, over its stdin and stdout (length-prefixed JSON)."""

    def __init__(self, db_url: str, config: LinkConfig, *, engine: Engine | None = None) -> None:
        self.db_url = db_url
        self.config = config
        # Pages are read here (on a thread) until the child is ready, so its start-up (half a
        # second) overlaps the first requests instead of delaying them.
        self._local = StoreSide(engine, config) if engine is not None else None
        self._ready: asyncio.Future[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._page: asyncio.Future[dict[str, Any] | None] | None = None
        self._writes: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed: asyncio.Future[None] | None = None
        self._failure: StoreLinkError | None = None

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._ready = asyncio.get_running_loop().create_future()
        self._writes.append(self._ready)  # answered first, as the first message is `init`
        self._reader_task = asyncio.create_task(self._read_replies())
        self._send(["init", self.db_url, self.config.as_dict()])
        if self._local is None:
            await self._ready

    def _send(self, message: list[Any]) -> None:
        if self._failure is not None:
            raise self._failure
        assert self._proc is not None
        assert self._proc.stdin is not None
        if self._proc.stdin.is_closing():
            raise self._died()
        blob = orjson.dumps(message)
        self._proc.stdin.write(FRAME_HEADER.pack(len(blob)) + blob)

    async def _read_replies(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        out = self._proc.stdout
        try:
            while True:
                size = FRAME_HEADER.unpack(await out.readexactly(FRAME_HEADER.size))[0]
                kind, *rest = orjson.loads(await out.readexactly(size))
                if kind in ("ready", "written"):
                    self._writes.popleft().set_result(None)
                elif kind == "page":
                    # The runner may have stopped waiting for a page read ahead (a stop).
                    if self._page is not None and not self._page.done():
                        self._page.set_result(rest[0])
                elif kind == "closed":
                    assert self._closed is not None
                    self._closed.set_result(None)
                    return
                elif kind == "error":
                    self._fail(StoreLinkError(f"the store process failed: {rest[0]}"))
                    return
        except asyncio.IncompleteReadError:
            self._died()

    def _died(self) -> StoreLinkError:
        """The child is gone: fail everything waiting on it, once, and return that failure."""
        if self._failure is None:
            self._fail(StoreLinkError("the store process ended unexpectedly (see its error above)"))
        assert self._failure is not None
        return self._failure

    def _fail(self, error: StoreLinkError) -> None:
        self._failure = error
        pending = [*self._writes, self._page, self._closed]
        for future in pending:
            if future is not None and not future.done():
                future.set_exception(error)
                future.exception()  # the error reaches the runner by `_send`, if not by this future
        self._writes.clear()

    async def page(self, after: int, last_item: int | None) -> dict[str, Any] | None:
        if self._local is not None and self._ready is not None and not self._ready.done():
            return await asyncio.to_thread(self._local.page, after, last_item)
        self._page = asyncio.get_running_loop().create_future()
        self._send(["page", after, last_item])
        return await self._page

    async def write(self, rows: list[list[Any]], cache_rows: list[list[Any]]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writes.append(done)
        self._send(["write", rows, cache_rows])
        assert self._proc is not None
        assert self._proc.stdin is not None
        try:
            await self._proc.stdin.drain()
        except ConnectionError as exc:
            # The pipe broke before the reader saw the child's end: the same failure, said once.
            raise self._died() from exc
        # Shielded: the rows are in the child's hands; cancelling the wait must not lose track.
        await asyncio.shield(done)

    async def close(self) -> None:
        if self._proc is None:
            return
        try:
            if self._failure is None:
                self._closed = asyncio.get_running_loop().create_future()
                self._send(["close"])
                await self._closed
        finally:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            await self._proc.wait()
            if self._reader_task is not None:
                self._reader_task.cancel()
