"""The runner: one target model answering one eval set, fast, within limits, and resumable.

Pieces:

- the store side (see `store_link.py`), on its own process for large runs, reads pending items (no
  response yet in this run) in pages by id, validates their messages, computes cache keys, looks a
  page's keys up in the response cache, and commits batches of outcomes;
- on the event loop, a producer takes pages (one ahead) and feeds a bounded queue; `concurrency`
  workers wait for the rate limits, send the request, retry retryable errors with backoff, and
  hand each outcome to the writer, which ships a batch every `flush_every` rows or
  `flush_interval` seconds;
- the dispatch journal (`journal.py`) records each request just before it leaves.

Memory stays flat as the set grows: at most two pages, the queue, the requests in flight and the
unacknowledged batches are held. See docs/runner.md for the resume guarantee.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import TypeAdapter

from policylab.chat import ChatMessage
from policylab.models.base import (
    Completion,
    FatalModelError,
    ModelError,
    RetryableError,
    SamplingParams,
    TargetModel,
)
from policylab.runs.journal import DispatchJournal, read_open
from policylab.runs.limits import TokenBucket, backoff_delay, estimate_tokens
from policylab.runs.store_link import ProcessLink, ThreadLink
from policylab.store import runs as store
from policylab.store.models import Run
from policylab.store.runs import RESPONSE_FIELDS, LinkConfig, cache_key
from policylab.store.workspace import Workspace

log = logging.getLogger(__name__)

T = TypeVar("T")

InDoubt = Literal["retry", "skip"]
_MESSAGES = TypeAdapter(list[ChatMessage])

# Below this many pending items a run keeps its database work on threads: a child process costs
# about a second to start and only pays off when the event loop is busy.
PROCESS_THRESHOLD = 1000

__all__ = ["InDoubt", "RunOptions", "RunProgress", "RunSummary", "Runner", "cache_key"]


@dataclass
class RunOptions:
    """How to execute a run. None of these change what a response means, so a run may resume with
    other options; `store_process` None means: a child process for runs of 1,000 items or more."""

    concurrency: int = 64
    rpm: float | None = None
    tpm: float | None = None
    max_attempts: int = 6
    backoff_base: float = 0.5
    backoff_max: float = 60.0
    use_cache: bool = True
    retry_failed: bool = True
    in_doubt: InDoubt = "retry"
    limit: int | None = None
    price_in: float | None = None
    price_out: float | None = None
    flush_every: int = 256
    flush_interval: float = 0.1
    page_size: int = 1000
    store_process: bool | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be at least 1")


@dataclass
class RunProgress:
    """A snapshot for a progress display: items finished in this session out of `total`."""

    total: int
    done: int = 0
    succeeded: int = 0
    failed: int = 0
    cached: int = 0
    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class RunSummary:
    """The outcome of a run after this session: counts cover every session of the run."""

    run: str
    status: str
    counts: store.RunCounts
    session: RunProgress
    elapsed_s: float
    in_doubt: int = 0
    in_doubt_action: InDoubt = "retry"
    stop_reason: str | None = None
    bad_items: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.counts.remaining == 0

    def as_dict(self) -> dict[str, Any]:
        counts = asdict(self.counts)
        counts["remaining"] = self.counts.remaining
        return {
            "status": self.status,
            "counts": counts,
            "session": asdict(self.session),
            "elapsed_s": round(self.elapsed_s, 3),
            "in_doubt": self.in_doubt,
            "stop_reason": self.stop_reason,
        }


@dataclass(slots=True)
class _Work:
    item_id: int
    external_id: str
    messages: list[ChatMessage]
    key: str | None
    text_chars: int


class _StopRunError(Exception):
    """Raised inside a worker when the run must stop (the model said every item would fail)."""


class Runner:
    """Executes one run; `await runner.run()` returns its summary. Not reusable."""

    def __init__(
        self,
        ws: Workspace,
        run: Run,
        model: TargetModel,
        *,
        params: SamplingParams,
        options: RunOptions | None = None,
        progress: Callable[[RunProgress], None] | None = None,
    ) -> None:
        self.ws = ws
        self.run_id = run.id
        self.run_name = run.name
        self.eval_set_id = run.eval_set_id
        self.model = model
        self.params = params
        self.options = options or RunOptions()
        self._progress_cb = progress
        self._use_cache = self.options.use_cache and model.cacheable
        self._rpm = TokenBucket(self.options.rpm) if self.options.rpm else None
        self._tpm = TokenBucket(self.options.tpm) if self.options.tpm else None
        self._queue: asyncio.Queue[_Work | None] = asyncio.Queue(
            maxsize=2 * self.options.concurrency
        )
        self._stop = asyncio.Event()
        self.stopping = False  # read on every item, so a plain attribute rather than the event
        self._stop_reason: str | None = None
        self._pause_until = 0.0
        # Conversations being asked now, each with the workers waiting for the same answer.
        self._inflight: dict[str, list[asyncio.Future[Completion | None]]] = {}
        self._rows: list[list[Any]] = []
        self._cache_rows: list[list[Any]] = []
        self._unacked = 0
        self._flush_now = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._journal: DispatchJournal | None = None
        self._link: ThreadLink | ProcessLink | None = None
        self._bad_items: list[str] = []
        self._write_error: Exception | None = None
        self._closing = False
        self.progress = RunProgress(total=0)

    # -- control -------------------------------------------------------------------------------
    def request_stop(self, reason: str = "interrupted") -> None:
        """Stop taking new items; requests in flight finish and are written. Safe from a signal."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._stop.set()
        self.stopping = True

    # -- set-up and summary (one-off queries, on a thread so the loop stays free) ---------------
    async def _tx(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def call() -> T:
            with self.ws.engine.begin() as conn:
                return fn(conn, *args, **kwargs)

        return await asyncio.to_thread(call)

    async def run(self) -> RunSummary:
        started = time.perf_counter()
        journal_path = store.runs_folder(self.ws) / f"run-{self.run_id}.journal"
        opts = self.options
        last_item: int | None = None
        in_doubt: list[int] = []
        try:
            last_item = await self._tx(store.scope_last_item, self.eval_set_id, opts.limit)
            open_ids = read_open(journal_path)
            if open_ids:
                answered = await self._tx(store.answered_among, self.run_id, open_ids)
                in_doubt = sorted(open_ids - answered)
            if in_doubt:
                log.warning(
                    "%d item(s) were sent before the previous session stopped and have no stored "
                    "answer; %s",
                    len(in_doubt),
                    "asking again" if opts.in_doubt == "retry" else "recording them as in_doubt",
                )
            await self._tx(self._prepare, in_doubt, opts)
            self._journal = DispatchJournal(journal_path)
            if opts.in_doubt == "retry":
                for item_id in in_doubt:  # the server may have seen them until they are answered
                    self._journal.sent(item_id)
            self.progress.total = await self._tx(
                store.count_pending, self.run_id, self.eval_set_id, last_item
            )
            await self._tx(store.set_status, self.run_id, "running")
            self._emit()
            if self.progress.total:
                await self._execute(last_item)
        finally:
            summary = await self._finish(started, last_item, len(in_doubt))
        return summary

    def _prepare(self, conn: Any, in_doubt: list[int], opts: RunOptions) -> None:
        if opts.retry_failed:
            store.delete_failed(conn, self.run_id, keep_in_doubt=opts.in_doubt == "skip")
        if in_doubt and opts.in_doubt == "skip":
            error = (
                f"{store.IN_DOUBT}: sent before the previous session stopped; its answer was lost "
                "and it is not asked again (--in-doubt retry asks again)"
            )
            rows = [self._failure_row(item_id, error, attempts=1) for item_id in in_doubt]
            store.write_responses(
                conn,
                [
                    {"run_id": self.run_id, **dict(zip(RESPONSE_FIELDS, r, strict=True))}
                    for r in rows
                ],
                [],
            )

    async def _finish(self, started: float, last_item: int | None, in_doubt: int) -> RunSummary:
        status = "stopped"
        try:
            counts = await self._tx(
                store.run_counts, self.run_id, self.eval_set_id, last_item=last_item
            )
            status = self._final_status(counts)
            summary = RunSummary(
                run=self.run_name,
                status=status,
                counts=counts,
                session=self.progress,
                elapsed_s=time.perf_counter() - started,
                in_doubt=in_doubt,
                in_doubt_action=self.options.in_doubt,
                stop_reason=self._stop_reason,
                bad_items=self._bad_items[:20],
            )
            stats = summary.as_dict() | {"limit": self.options.limit}
            finished = status == "finished"
            await self._tx(
                store.finish_run, self.run_id, status=status, stats=stats, finished=finished
            )
        finally:
            if self._journal is not None:
                self._journal.close(remove=self._stop_reason is None and status == "finished")
        return summary

    def _final_status(self, counts: store.RunCounts) -> str:
        if self._stop_reason is not None and self._stop_reason != "interrupted":
            return "stopped"
        if counts.remaining == 0:
            return "finished"
        return "interrupted"

    # -- the hot loop --------------------------------------------------------------------------
    def _make_link(self) -> ThreadLink | ProcessLink:
        config = LinkConfig(
            run_id=self.run_id,
            eval_set_id=self.eval_set_id,
            model=self.model.name,
            params=self.params.as_dict(),
            use_cache=self._use_cache,
            page_size=self.options.page_size,
        )
        use_process = self.options.store_process
        if use_process is None:
            use_process = self.progress.total >= PROCESS_THRESHOLD
        if use_process:
            return ProcessLink(self.ws.db_url, config, engine=self.ws.engine)
        return ThreadLink(self.ws.engine, config)

    async def _execute(self, last_item: int | None) -> None:
        with _steady_gc():
            await self._execute_steady(last_item)

    async def _execute_steady(self, last_item: int | None) -> None:
        self._link = link = self._make_link()
        await link.start()
        workers = [asyncio.create_task(self._worker()) for _ in range(self.options.concurrency)]
        writer = asyncio.create_task(self._writer())
        ticker = asyncio.create_task(self._ticker()) if self._progress_cb else None
        try:
            await self._produce(last_item)
            for _ in workers:
                await self._queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if ticker is not None:
                ticker.cancel()
            self._closing = True
            self._flush_now.set()
            await asyncio.gather(writer, return_exceptions=True)
            try:
                if self._write_error is None:
                    await self._flush()  # what arrived after the writer's last batch
            except Exception as exc:
                self._store_failed(exc)
            finally:
                await link.close()
            self._emit()

    async def _produce(self, last_item: int | None) -> None:
        assert self._link is not None
        link = self._link
        # One page ahead: the next page is read while this one is being asked.
        ahead = asyncio.ensure_future(link.page(0, last_item))
        try:
            while not self.stopping:
                try:
                    page = await ahead
                except Exception as exc:  # the store side cannot read: stop, as for a write
                    self._store_failed(exc)
                    return
                if page is None:
                    return
                ahead = asyncio.ensure_future(link.page(page["after"], last_item))
                for item_id, external_id, error in page["bad"]:
                    self._bad_items.append(external_id)
                    self._append(self._failure_row(item_id, error, attempts=0), None, error=True)
                hits = page["hits"]
                for item_id, external_id, messages, key, chars in page["works"]:
                    if self.stopping:
                        return
                    work = _Work(
                        item_id, external_id, _MESSAGES.validate_python(messages), key, chars
                    )
                    payload = hits.get(key) if key is not None else None
                    if payload is not None:
                        await self._record(work, _completion_of(payload), attempts=0, latency=None)
                    else:
                        await self._queue.put(work)
        finally:
            if not ahead.done():
                ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ahead

    async def _worker(self) -> None:
        while True:
            work = await self._queue.get()
            if work is None:
                return
            if self.stopping:
                continue  # left for the next session: never sent
            try:
                await self._answer(work)
            except _StopRunError:
                continue

    async def _answer(self, work: _Work) -> None:
        key = work.key
        leading = False
        if key is not None:
            if key in self._inflight:
                # The same conversation is being asked right now: wait for that answer.
                waiter: asyncio.Future[Completion | None] = (
                    asyncio.get_running_loop().create_future()
                )
                self._inflight[key].append(waiter)
                result = await waiter
                if result is not None:
                    await self._record(work, result, attempts=0, latency=None)
                    return
            else:
                self._inflight[key] = []
                leading = True
        completion: Completion | None = None
        try:
            completion = await self._request(work)
        finally:
            if leading and key is not None:
                for waiter in self._inflight.pop(key):
                    if not waiter.done():
                        waiter.set_result(completion)

    async def _request(self, work: _Work) -> Completion | None:
        """Ask for one item until it succeeds, fails for good, or the run stops."""
        opts = self.options
        estimate = 0
        if self._tpm is not None:
            estimate = estimate_tokens(work.text_chars, len(work.messages), self.params.max_tokens)
        attempt = 0
        while True:
            attempt += 1
            await self._wait_for_limits(estimate)
            if self.stopping:
                return None
            if attempt == 1 and self._journal is not None:
                self._journal.sent(work.item_id)
            self.progress.requests += 1
            started = time.perf_counter()
            try:
                completion = await self.model.complete(
                    work.messages, params=self.params, item_id=work.external_id
                )
            except RetryableError as exc:
                if exc.retry_after is not None:
                    self._pause_until = max(self._pause_until, time.monotonic() + exc.retry_after)
                if attempt >= opts.max_attempts:
                    await self._record_failure(work, exc, attempts=attempt)
                    return None
                self.progress.retries += 1
                delay = backoff_delay(
                    attempt,
                    base=opts.backoff_base,
                    cap=opts.backoff_max,
                    retry_after=exc.retry_after,
                )
                log.info("item %s: %s; retrying in %.2f s", work.external_id, exc, delay)
                if await self._sleep_unless_stopped(delay):
                    return None
                continue
            except FatalModelError as exc:
                if exc.stops_run:
                    self.request_stop(f"{exc.kind}: {exc.message}")
                    raise _StopRunError from exc
                await self._record_failure(work, exc, attempts=attempt)
                return None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in a model adapter fails its item, not the run
                log.exception(
                    "item %s: unexpected error from %s", work.external_id, self.model.name
                )
                error = ModelError("unexpected", f"{type(exc).__name__}: {exc}")
                await self._record_failure(work, error, attempts=attempt)
                return None
            latency = (time.perf_counter() - started) * 1000.0
            if self._tpm is not None:
                used = (completion.prompt_tokens or 0) + (completion.completion_tokens or 0)
                if used:
                    self._tpm.settle(used - estimate)
            await self._record(work, completion, attempts=attempt, latency=latency)
            return completion

    async def _wait_for_limits(self, estimate: int) -> None:
        pause = self._pause_until - time.monotonic()
        if pause > 0:
            await self._sleep_unless_stopped(pause)
        if self._rpm is not None:
            await self._rpm.acquire(1)
        if self._tpm is not None:
            await self._tpm.acquire(estimate)

    async def _sleep_unless_stopped(self, delay: float) -> bool:
        """Sleep `delay` seconds; True if the run was asked to stop meanwhile."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=delay)
        except TimeoutError:
            return False
        return True

    # -- outcomes ------------------------------------------------------------------------------
    def _cost(self, completion: Completion) -> float | None:
        opts = self.options
        if opts.price_in is None and opts.price_out is None:
            return None
        return (
            (completion.prompt_tokens or 0) * (opts.price_in or 0.0)
            + (completion.completion_tokens or 0) * (opts.price_out or 0.0)
        ) / 1_000_000

    async def _record(
        self, work: _Work, completion: Completion, *, attempts: int, latency: float | None
    ) -> None:
        cached = attempts == 0
        cost = None if cached else self._cost(completion)
        # In RESPONSE_FIELDS order.
        row = [
            work.item_id,
            completion.transcript or [completion.message],
            completion.text,
            completion.finish_reason,
            None,
            latency,
            completion.prompt_tokens,
            completion.completion_tokens,
            cost,
            attempts,
            cached,
        ]
        cache_row = None
        if self._use_cache and not cached and work.key is not None:
            payload: dict[str, Any] = {
                "text": completion.text,
                "message": completion.message,
                "finish_reason": completion.finish_reason,
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
            }
            if completion.transcript:
                payload["transcript"] = completion.transcript
            cache_row = [work.key, self.model.name, payload]
        p = self.progress
        p.succeeded += 1
        p.cached += cached
        if not cached:
            p.prompt_tokens += completion.prompt_tokens or 0
            p.completion_tokens += completion.completion_tokens or 0
            p.cost_usd += cost or 0.0
        self._append(row, cache_row, error=False)
        if not self._room.is_set():
            await self._room.wait()

    async def _record_failure(self, work: _Work, exc: ModelError, *, attempts: int) -> None:
        detail = f"{exc.kind}: {exc.message}"
        if attempts > 1:
            detail += f" (after {attempts} attempts)"
        self._append(self._failure_row(work.item_id, detail, attempts=attempts), None, error=True)
        if not self._room.is_set():
            await self._room.wait()

    @staticmethod
    def _failure_row(item_id: int, error: str, *, attempts: int) -> list[Any]:
        return [item_id, [], None, None, error, None, None, None, None, attempts, False]

    def _append(self, row: list[Any], cache_row: list[Any] | None, *, error: bool) -> None:
        self._rows.append(row)
        if cache_row is not None:
            self._cache_rows.append(cache_row)
        if error:
            self.progress.failed += 1
        self.progress.done += 1
        if len(self._rows) >= self.options.flush_every:
            self._flush_now.set()
        if self._unacked + len(self._rows) >= 8 * self.options.flush_every:
            self._room.clear()  # the database is behind: hold the workers until it catches up

    # -- writer --------------------------------------------------------------------------------
    async def _writer(self) -> None:
        interval = self.options.flush_interval
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), timeout=interval)
            self._flush_now.clear()
            try:
                await self._flush()
            except Exception as exc:
                self._store_failed(exc)
                return

    def _store_failed(self, exc: Exception) -> None:
        # A lost batch's items are in the journal: the next session asks them again. Stop rather
        # than answer more items that could not be stored.
        log.error("the store side failed: %s", exc, exc_info=exc)
        self._write_error = exc
        self.request_stop(f"the answers could not be stored: {exc}")
        self._room.set()

    async def _flush(self) -> None:
        if not self._rows:
            self._room.set()
            return
        assert self._link is not None
        rows, cache_rows = self._rows, self._cache_rows
        self._rows, self._cache_rows = [], []
        self._unacked += len(rows)
        try:
            await self._link.write(rows, cache_rows)
        finally:
            self._unacked -= len(rows)
        if self._journal is not None:
            self._journal.done(r[0] for r in rows)
        if self._unacked + len(self._rows) < 8 * self.options.flush_every:
            self._room.set()

    # -- progress ------------------------------------------------------------------------------
    def _emit(self) -> None:
        if self._progress_cb is not None:
            self._progress_cb(self.progress)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            self._emit()


@contextlib.contextmanager
def _steady_gc() -> Iterator[None]:
    """Keep the garbage collector from pausing the event loop during a run.

    Measured at concurrency 256: full collections walked every object alive since start-up (the
    imported libraries included) and paused the loop for 50–100 ms each, a few times a second.
    Freezing what exists before the run takes it out of every collection (without a collection
    first: that alone takes a tenth of a second); a larger first threshold makes the young
    collections rarer. Both are restored afterwards.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(threshold[0], 20_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _completion_of(payload: dict[str, Any]) -> Completion:
    return Completion(
        text=payload.get("text") or "",
        message=payload.get("message") or {"role": "assistant", "content": payload.get("text")},
        finish_reason=payload.get("finish_reason"),
        prompt_tokens=payload.get("prompt_tokens"),
        completion_tokens=payload.get("completion_tokens"),
        transcript=payload.get("transcript"),
    )
