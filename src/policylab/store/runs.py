"""Runs of target models and their responses in the workspace.

A run is one model, with fixed sampling parameters, answering one eval set; its name is unique. A
response row holds the answer to one item (at most one per run and item): `messages` is the list of
assistant messages the model produced (the prompt stays on the item); `error`, set when the item
failed, reads `"<class>: <detail>"` (classes such as `http_500`, `timeout`, `bad_messages`).

The runner reads pending items in pages and writes responses in batches through `StoreSide`, at the
end of this module, on threads or in a store process of its own; the functions it calls take a
SQLAlchemy `Connection` and use the Core, not the ORM.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import logging
import math
import os
import signal
import struct
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection, Engine, Row, and_, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from policylab.chat import ChatMessage
from policylab.errors import PolicylabError
from policylab.store.db import make_engine
from policylab.store.eval_sets import get_eval_set
from policylab.store.models import EvalSet, Item, Response, ResponseCache, Run
from policylab.store.workspace import Workspace

log = logging.getLogger(__name__)

IN_DOUBT = "in_doubt"
_PG_LOCK_NAMESPACE = 0x706C6162  # "plab": keeps run locks apart from other advisory locks


class RunBusyError(PolicylabError):
    """Another process is executing this run right now."""


# -- runs -----------------------------------------------------------------------------------------
def find_run(session: Session, name: str) -> Run | None:
    return session.scalars(select(Run).where(Run.name == name)).first()


def get_run(session: Session, name: str) -> Run:
    """The run called `name`, or an error listing the runs there are."""
    found = find_run(session, name)
    if found is None:
        known = sorted(session.scalars(select(Run.name)))
        shown = ", ".join(known[:20]) + (" …" if len(known) > 20 else "")
        raise PolicylabError(
            f"no run {name!r}",
            hint=f"runs: {shown or 'none yet'}; start one with "
            "`policylab run --model … --items SET`",
        )
    return found


def open_run(
    session: Session, *, name: str, set_name: str, model: str, params: dict[str, Any]
) -> tuple[Run, bool]:
    """The run called `name`, created if missing. Returns it and whether it is new.

    An existing run resumes only with the same eval set, model and sampling parameters: answers
    given under other settings must not be mixed into it.
    """
    eval_set = get_eval_set(session, set_name)
    run = find_run(session, name)
    if run is None:
        if not name.strip() or len(name) > 300:
            raise PolicylabError(f"run name {name!r}: give 1 to 300 characters")
        run = Run(
            name=name,
            eval_set_id=eval_set.id,
            model=model,
            model_config_={"params": params},
            status="created",
        )
        session.add(run)
        session.flush()
        return run, True
    stored_set = session.get(EvalSet, run.eval_set_id)
    stored_params = run.model_config_.get("params", {})
    differences = []
    if run.eval_set_id != eval_set.id:
        differences.append(f"items {stored_set.name if stored_set else '?'!r} (not {set_name!r})")
    if run.model != model:
        differences.append(f"model {run.model!r} (not {model!r})")
    if stored_params != params:
        differences.append(f"parameters {stored_params} (not {params})")
    if differences:
        raise PolicylabError(
            f"run {name!r} already exists with " + "; ".join(differences),
            hint="pass --name NEW to start another run, "
            "or repeat the run's own settings to resume it",
        )
    return run, False


@dataclass(frozen=True)
class RunOverview:
    """One line of `policylab runs list`."""

    run: Run
    set_name: str
    items: int
    succeeded: int
    failed: int


def list_runs(session: Session) -> list[RunOverview]:
    """Every run with its set's name, item count and answers so far, newest first."""
    ok = Response.error.is_(None)
    answers = (
        select(
            Response.run_id,
            func.count(Response.id).filter(ok).label("ok"),
            func.count(Response.id).filter(~ok).label("failed"),
        )
        .group_by(Response.run_id)
        .subquery()
    )
    sizes = (
        select(Item.eval_set_id, func.count(Item.id).label("n"))
        .group_by(Item.eval_set_id)
        .subquery()
    )
    rows = session.execute(
        select(Run, EvalSet.name, sizes.c.n, answers.c.ok, answers.c.failed)
        .join(EvalSet, EvalSet.id == Run.eval_set_id)
        .outerjoin(sizes, sizes.c.eval_set_id == Run.eval_set_id)
        .outerjoin(answers, answers.c.run_id == Run.id)
        .order_by(Run.created_at.desc(), Run.id.desc())
    )
    return [
        RunOverview(run, set_name, int(n or 0), int(done or 0), int(failed or 0))
        for run, set_name, n, done, failed in rows
    ]


def failed_examples(session: Session, run: Run, *, limit: int = 10) -> list[tuple[str, str]]:
    """(external id, error) of the run's first failed items."""
    rows = session.execute(
        select(Item.external_id, Response.error)
        .join(Response, Response.item_id == Item.id)
        .where(Response.run_id == run.id, Response.error.is_not(None))
        .order_by(Item.id)
        .limit(limit)
    )
    return [(external_id, error or "") for external_id, error in rows]


# -- the runner's queries -------------------------------------------------------------------------
def scope_last_item(conn: Connection, eval_set_id: int, limit: int | None) -> int | None:
    """The id of the last item in scope (the first `limit` items of the set); None for all."""
    if limit is None:
        return None
    return conn.scalar(
        select(Item.id)
        .where(Item.eval_set_id == eval_set_id)
        .order_by(Item.id)
        .offset(max(limit, 1) - 1)
        .limit(1)
    )


def _in_scope(eval_set_id: int, last_item: int | None) -> Any:
    clause = Item.eval_set_id == eval_set_id
    return and_(clause, Item.id <= last_item) if last_item is not None else clause


def _pending(run_id: int, eval_set_id: int, last_item: int | None) -> Any:
    return (
        select(Item.id, Item.external_id, Item.messages)
        .outerjoin(Response, and_(Response.item_id == Item.id, Response.run_id == run_id))
        .where(_in_scope(eval_set_id, last_item), Response.id.is_(None))
    )


def count_pending(conn: Connection, run_id: int, eval_set_id: int, last_item: int | None) -> int:
    query = _pending(run_id, eval_set_id, last_item).with_only_columns(func.count(Item.id))
    return int(conn.scalar(query) or 0)


def pending_page(
    conn: Connection,
    run_id: int,
    eval_set_id: int,
    *,
    after: int,
    size: int,
    last_item: int | None = None,
) -> Sequence[Row[int, str, Any]]:
    """The next `size` items after id `after` that have no response in the run, by id."""
    query = (
        _pending(run_id, eval_set_id, last_item)
        .where(Item.id > after)
        .order_by(Item.id)
        .limit(size)
    )
    return conn.execute(query).all()


def delete_failed(conn: Connection, run_id: int, *, keep_in_doubt: bool) -> int:
    """Delete the run's failed responses so their items are asked again; returns how many."""
    query = delete(Response).where(Response.run_id == run_id, Response.error.is_not(None))
    if keep_in_doubt:
        query = query.where(~Response.error.startswith(f"{IN_DOUBT}:"))
    return conn.execute(query).rowcount or 0


def answered_among(conn: Connection, run_id: int, item_ids: Iterable[int]) -> set[int]:
    """Which of `item_ids` already have a response (success or failure) in the run."""
    ids = list(item_ids)
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(
            conn.scalars(
                select(Response.item_id).where(
                    Response.run_id == run_id, Response.item_id.in_(chunk)
                )
            )
        )
    return found


def cached_payloads(conn: Connection, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Cached completions for the keys that have one."""
    if not keys:
        return {}
    rows = conn.execute(
        select(ResponseCache.key, ResponseCache.payload).where(ResponseCache.key.in_(keys))
    )
    return dict(rows.all())


def write_responses(
    conn: Connection, responses: list[dict[str, Any]], cache: list[dict[str, Any]]
) -> None:
    """Insert response rows, and cache rows (skipping keys already cached), in the open transaction.

    A second response for the same run and item violates the unique constraint and fails loudly:
    the run lock and the resume query make it impossible, and silently keeping one would hide a
    repeated request.
    """
    if responses:
        conn.execute(insert(Response), responses)
    if cache:
        dialect = conn.dialect.name
        if dialect == "postgresql":
            conn.execute(postgresql.insert(ResponseCache).on_conflict_do_nothing(), cache)
        elif dialect == "sqlite":
            conn.execute(sqlite.insert(ResponseCache).on_conflict_do_nothing(), cache)
        else:
            existing = set(cached_payloads(conn, [c["key"] for c in cache]))
            fresh = [c for c in cache if c["key"] not in existing]
            if fresh:
                conn.execute(insert(ResponseCache), fresh)


# -- summaries ------------------------------------------------------------------------------------
@dataclass
class RunCounts:
    """A run's items in scope, answered, failed (by error class), tokens, cost and latency."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    cached: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None

    @property
    def remaining(self) -> int:
        return self.total - self.succeeded - self.failed


def error_class(error: str) -> str:
    """The class of a stored error (`http_429: Rate limit…` → `http_429`)."""
    head, sep, _ = error.partition(":")
    return head.strip() if sep and head.strip() and " " not in head.strip() else "error"


def _percentile(conn: Connection, where: Any, n: int, p: float) -> float | None:
    """The nearest-rank p-th percentile of the latencies (the value at rank ceil(p·n))."""
    if n == 0:
        return None
    rank = max(1, math.ceil(p * n))
    value = conn.scalar(
        select(Response.latency_ms)
        .where(where, Response.latency_ms.is_not(None))
        .order_by(Response.latency_ms)
        .offset(rank - 1)
        .limit(1)
    )
    return float(value) if value is not None else None


def run_counts(
    conn: Connection, run_id: int, eval_set_id: int, *, last_item: int | None = None
) -> RunCounts:
    """Counts over every response of the run (all sessions), within the scope `last_item`."""
    in_scope = Response.run_id == run_id
    if last_item is not None:
        in_scope = and_(in_scope, Response.item_id <= last_item)
    total = conn.scalar(select(func.count(Item.id)).where(_in_scope(eval_set_id, last_item)))
    ok = Response.error.is_(None)
    row = conn.execute(
        select(
            func.count(Response.id).filter(ok),
            func.count(Response.id).filter(~ok),
            func.count(Response.id).filter(Response.cached.is_(True)),
            func.coalesce(func.sum(Response.prompt_tokens), 0),
            func.coalesce(func.sum(Response.completion_tokens), 0),
            func.coalesce(func.sum(Response.cost_usd), 0.0),
            func.count(Response.latency_ms),
        ).where(in_scope)
    ).one()
    errors: Counter[str] = Counter()
    failed_rows = conn.execute(
        select(Response.error).where(in_scope, ~ok).execution_options(yield_per=1000)
    )
    for (error,) in failed_rows:
        errors[error_class(error or "")] += 1
    latencies = int(row[6])
    return RunCounts(
        total=int(total or 0),
        succeeded=int(row[0] or 0),
        failed=int(row[1] or 0),
        cached=int(row[2] or 0),
        errors=dict(errors.most_common()),
        prompt_tokens=int(row[3] or 0),
        completion_tokens=int(row[4] or 0),
        cost_usd=float(row[5] or 0.0),
        latency_p50_ms=_percentile(conn, in_scope, latencies, 0.50),
        latency_p95_ms=_percentile(conn, in_scope, latencies, 0.95),
    )


def finish_run(
    conn: Connection, run_id: int, *, status: str, stats: dict[str, Any], finished: bool
) -> None:
    values: dict[str, Any] = {"status": status, "stats": stats}
    values["finished_at"] = dt.datetime.now(dt.UTC) if finished else None
    conn.execute(update(Run).where(Run.id == run_id).values(**values))


def set_status(conn: Connection, run_id: int, status: str) -> None:
    conn.execute(update(Run).where(Run.id == run_id).values(status=status))


# -- export ---------------------------------------------------------------------------------------
def iter_responses(
    session: Session, run: Run, *, include_errors: bool = False, page: int = 1000
) -> Iterator[tuple[Item, Response]]:
    """The run's responses with their items, by item id, read in pages."""
    after = 0
    while True:
        query = (
            select(Item, Response)
            .join(Response, Response.item_id == Item.id)
            .where(Response.run_id == run.id, Item.id > after)
            .order_by(Item.id)
            .limit(page)
        )
        if not include_errors:
            query = query.where(Response.error.is_(None))
        rows = session.execute(query).all()
        if not rows:
            return
        yield from rows
        after = rows[-1][0].id
        session.expunge_all()


# -- one process per run --------------------------------------------------------------------------
@contextlib.contextmanager
def run_lock(ws: Workspace, run: Run) -> Iterator[None]:
    """Hold the run for this process, or raise RunBusyError if another process is executing it.

    SQLite: an exclusive `flock` on a file beside the database. PostgreSQL: a session advisory lock.
    The operating system or the server releases either when the process dies, even by `kill -9`.
    """
    if not ws.is_sqlite:
        with ws.engine.connect() as conn:
            got = conn.scalar(
                text("SELECT pg_try_advisory_lock(:a, :b)"), {"a": _PG_LOCK_NAMESPACE, "b": run.id}
            )
            conn.commit()
            if not got:
                raise RunBusyError(
                    f"run {run.name!r} is being executed by another process right now",
                    hint="wait for it to finish, or stop it; then run the same command again",
                )
            try:
                yield
            finally:
                conn.execute(
                    text("SELECT pg_advisory_unlock(:a, :b)"),
                    {"a": _PG_LOCK_NAMESPACE, "b": run.id},
                )
                conn.commit()
        return
    folder = runs_folder(ws)
    path = folder / f"run-{run.id}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise RunBusyError(
                f"run {run.name!r} is being executed by another process (pid {holder}) right now",
                hint="wait for it to finish, or stop it; then run the same command again",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def runs_folder(ws: Workspace) -> Path:
    """The workspace folder holding run locks and dispatch journals (created if missing)."""
    folder = ws.path / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- the store side of a run: pages out, batches in --------------------------------------------
# The runner (policylab.runs.store_link) reaches this code on its own threads, or in a child process
# started as `python -c "from policylab.store.runs import serve_stdio; serve_stdio()"`, which reads
# length-prefixed JSON messages on stdin and answers on stdout: `init` → `ready`, `page` → `page`,
# `write` → `written` (after the commit), `close` → `closed`. The child ignores SIGINT and SIGTERM,
# which reach the whole process group when a user stops the run: the parent decides when to stop
# and closes stdin. If the parent dies (even by `kill -9`), stdin ends, and every batch already
# received has been committed. The child imports only the store layer, to start fast.
RESPONSE_FIELDS = (
    "item_id",
    "messages",
    "text",
    "finish_reason",
    "error",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "attempts",
    "cached",
)
CACHE_FIELDS = ("key", "model", "payload")
_MESSAGES = TypeAdapter(list[ChatMessage])
FRAME_HEADER = struct.Struct("!I")


@dataclass(frozen=True)
class LinkConfig:
    """What the store side needs to know about the run."""

    run_id: int
    eval_set_id: int
    model: str
    params: dict[str, Any]
    use_cache: bool
    page_size: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "eval_set_id": self.eval_set_id,
            "model": self.model,
            "params": self.params,
            "use_cache": self.use_cache,
            "page_size": self.page_size,
        }


def describe_bad_messages(external_id: str, exc: Exception) -> str:
    """`bad_messages: item 'x': messages[2].content: <what is wrong>`."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        index, *rest = first["loc"] or ("?",)
        where = f"messages[{index}]" + "".join(f".{p}" for p in rest)
        return f"bad_messages: item {external_id!r}: {where}: {first['msg']}"
    return f"bad_messages: item {external_id!r}: {exc}"


def cache_key(model: str, params: dict[str, Any], messages: list[dict[str, Any]]) -> str:
    """The response-cache key: sha256 of the model, the sampling parameters and the messages."""
    blob = orjson.dumps(
        {"model": model, "params": params, "messages": messages}, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(blob).hexdigest()


class StoreSide:
    """The database work of a run, on whichever thread or process the link puts it."""

    def __init__(self, engine: Engine, config: LinkConfig) -> None:
        self.engine = engine
        self.config = config

    def page(self, after: int, last_item: int | None) -> dict[str, Any] | None:
        """The next page after item id `after`: valid items (normalised messages, cache key,
        text length), bad items with their error, and cached payloads by key; None at the end."""
        c = self.config
        with self.engine.connect() as conn:
            rows = pending_page(
                conn, c.run_id, c.eval_set_id, after=after, size=c.page_size, last_item=last_item
            )
            if not rows:
                return None
            works: list[list[Any]] = []
            bad: list[list[Any]] = []
            for item_id, external_id, raw in rows:
                try:
                    if not isinstance(raw, list) or not raw:
                        raise TypeError("`messages` must be a non-empty list of chat messages")
                    messages = _MESSAGES.validate_python(raw)
                except (ValidationError, TypeError) as exc:
                    bad.append([item_id, external_id, describe_bad_messages(external_id, exc)])
                    continue
                dumped = [m.model_dump(exclude_none=True, mode="json") for m in messages]
                key = cache_key(c.model, c.params, dumped) if c.use_cache else None
                chars = sum(len(m.text) for m in messages)
                works.append([item_id, external_id, dumped, key, chars])
            hits: dict[str, Any] = {}
            if c.use_cache:
                hits = cached_payloads(conn, [w[3] for w in works])
        return {"after": int(rows[-1][0]), "works": works, "bad": bad, "hits": hits}

    def write(self, rows: Sequence[Sequence[Any]], cache_rows: Sequence[Sequence[Any]]) -> None:
        """Commit response rows (lists in RESPONSE_FIELDS order) and cache rows in one transaction."""
        run_id = self.config.run_id
        responses = [{"run_id": run_id, **dict(zip(RESPONSE_FIELDS, r, strict=True))} for r in rows]
        cache = [dict(zip(CACHE_FIELDS, r, strict=True)) for r in cache_rows]
        with self.engine.begin() as conn:
            write_responses(conn, responses, cache)


def _json_text(value: Any) -> str:
    # JSON columns encoded by orjson: a few times faster than the json module SQLAlchemy uses.
    return orjson.dumps(value).decode()


def _read(stream: IO[bytes]) -> Any:
    header = stream.read(FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        return None
    size = FRAME_HEADER.unpack(header)[0]
    body = stream.read(size)
    if len(body) < size:
        return None
    return orjson.loads(body)


def _reply(stream: IO[bytes], message: list[Any]) -> None:
    blob = orjson.dumps(message)
    stream.write(FRAME_HEADER.pack(len(blob)) + blob)
    stream.flush()


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """Answer the runner's messages from `inp` on `out` until `close` or the end of `inp`."""
    side: StoreSide | None = None
    while (message := _read(inp)) is not None:
        kind = message[0]
        try:
            if kind == "init":
                engine = make_engine(message[1], json_serializer=_json_text)
                side = StoreSide(engine, LinkConfig(**message[2]))
                _reply(out, ["ready"])
            elif kind == "page":
                assert side is not None
                _reply(out, ["page", side.page(message[1], message[2])])
            elif kind == "write":
                assert side is not None
                side.write(message[1], message[2])
                _reply(out, ["written"])
            elif kind == "close":
                _reply(out, ["closed"])
                return
        except BrokenPipeError:
            return  # the parent is gone; what was received is committed
        except Exception as exc:
            log.exception("the store process failed on %r", kind)
            _reply(out, ["error", f"{type(exc).__name__}: {exc}"])
            return


def serve_stdio() -> None:
    """The store process's entry point: serve the runner on stdin and stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Lower priority: this work has deep buffers and can wait, while the runner's event loop is
    # sensitive to every millisecond it is kept off a core (answers sit unread meanwhile).
    os.nice(10)
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, out)
    # Every batch received is committed and every reply flushed: skip the interpreter's teardown
    # (a tenth of a second the runner would otherwise wait for).
    os._exit(0)
