"""The labelling queue: handing out items, taking labels and skips, and the qualification round.

Every call that changes the queue runs in one short write transaction (`write_session`):

- SQLite: `BEGIN IMMEDIATE` takes the database's write lock before the first read, so the choice
  of an item and its reservation cannot interleave with another writer's. Inside one process the
  writers also queue on a lock, so they wait on each other without SQLite's sleeping busy handler.
- PostgreSQL: the next item is chosen and its counter raised in one statement,
  `UPDATE campaign_items ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1)`, on the item
  row whose counters (`n_labels + n_reserved < k`) decide whether it has room: concurrent
  annotators take different rows instead of waiting, and a row updated since the statement's
  snapshot is re-checked by PostgreSQL before it is locked. Writing the reservation and reading
  the item ride in the same statement (data-modifying CTEs), as do the three writes of a label:
  one round trip each, where SQLite runs the same steps as separate statements.

The unique constraints on (campaign, item, annotator) are the last line of defence. A reservation
lasts `reservation_seconds`; expired ones are returned to the queue (anyone may take the item,
the same annotator included). A label is acknowledged only after its transaction has committed.

The requests annotators make all day (the next item, a label, a skip) are a few Core statements
each (no ORM objects), on the campaign's settings as `QueueCampaign`: read once per process, as
only a campaign's status ever changes, and the status is read with every request
(`queue_context`, which reads the user's row in the same statement). `reserve_next`,
`take_label` and `take_skip` take those settings and the annotator's id; `next_work`,
`submit_label` and `skip_item` take the ORM objects, for callers that hold them.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import (
    Connection,
    Engine,
    String,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, aliased

from policylab.campaigns.consensus import LabelView, Rule, consensus
from policylab.campaigns.schema import LabelInput, LabelSchema
from policylab.core import Behavior
from policylab.errors import PolicylabError
from policylab.stats.aggregation import annotator_accuracy
from policylab.store.campaigns import QUEUE_ROLES, schema_of
from policylab.store.models import (
    Assignment,
    Campaign,
    CampaignItem,
    Item,
    Label,
    Qualification,
    Response,
    User,
)

T = TypeVar("T")
QUALIFICATION_ROLES = ("qualification",)


class QueueError(PolicylabError):
    """A request the queue refuses; `status` is the HTTP status that says why."""

    def __init__(self, message: str, *, status: int, hint: str | None = None):
        self.status = status
        super().__init__(message, hint=hint)


class LostRaceError(Exception):
    """A concurrent transaction took what this one was about to take (on PostgreSQL: the same
    annotator's other request reserved the item after this statement's snapshot). `run_write`
    rolls back and retries."""


# -- transactions -----------------------------------------------------------------------------------
_SQLITE_LOCKS: dict[str, threading.Lock] = {}
_SQLITE_LOCKS_GUARD = threading.Lock()


def _sqlite_lock(engine: Engine) -> threading.Lock:
    key = str(engine.url)
    with _SQLITE_LOCKS_GUARD:
        return _SQLITE_LOCKS.setdefault(key, threading.Lock())


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session in a write transaction that commits on success (see the module docstring)."""
    if engine.dialect.name == "sqlite":
        with _sqlite_lock(engine), Session(engine, expire_on_commit=False) as session:
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
        return
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, IntegrityError | LostRaceError):
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40001", "40P01")  # serialization failure, deadlock


def run_write(engine: Engine, work: Callable[[Session], T], *, attempts: int = 5) -> T:
    """Run `work` in a write transaction, retrying on a lost race (a unique constraint hit by a
    concurrent duplicate request, `LostRaceError`, or a PostgreSQL deadlock): the retry sees the
    winner's row."""
    for attempt in range(attempts):
        try:
            with write_session(engine) as session:
                return work(session)
        except (IntegrityError, OperationalError, LostRaceError) as exc:
            if attempt == attempts - 1 or not _retryable(exc):
                raise
            time.sleep(0.002 * (attempt + 1))
    raise AssertionError("unreachable")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _column_type(column: Any) -> Any:
    return column.property.columns[0].type


def _one_of(column: Any, values: tuple[str, ...]) -> Any:
    """`column IN values` for a fixed list, as plain parameters (no per-call list expansion)."""
    return or_(*(column == v for v in values))


def _typed(name: str, column: Any) -> Any:
    """A parameter with `column`'s type (needed where PostgreSQL cannot infer it)."""
    return bindparam(name, type_=_column_type(column))


# -- the campaign as the queue sees it ------------------------------------------------------------------
@dataclass(frozen=True)
class QueueCampaign:
    """A campaign's settings as the queue uses them. Only `status` changes after creation."""

    id: int
    name: str
    status: str
    k: int
    qualification_n: int
    qualification_threshold: float
    reservation_seconds: int
    agreement: str
    max_per_annotator: int | None
    schema: LabelSchema


# (database URL, campaign id, created at) -> settings. The creation time guards against an id
# reused after a deletion; the cached status is replaced by the one read with each request.
_SETTINGS: dict[tuple[URL, int, dt.datetime], QueueCampaign] = {}
_SETTINGS_MAX = 256


def _settings_of(campaign: Campaign) -> QueueCampaign:
    return QueueCampaign(
        id=campaign.id,
        name=campaign.name,
        status=campaign.status,
        k=campaign.k,
        qualification_n=campaign.qualification_n,
        qualification_threshold=campaign.qualification_threshold,
        reservation_seconds=campaign.reservation_seconds,
        agreement=campaign.agreement,
        max_per_annotator=campaign.max_per_annotator,
        schema=schema_of(campaign),
    )


def _cached_settings(
    session: Session, campaign_id: int, created_at: dt.datetime, status: str
) -> QueueCampaign:
    key = (session.get_bind().engine.url, campaign_id, created_at)
    found = _SETTINGS.get(key)
    if found is None:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:  # deleted since the caller read its id
            raise QueueError(f"no campaign with id {campaign_id}", status=404)
        found = _settings_of(campaign)
        if len(_SETTINGS) >= _SETTINGS_MAX:
            _SETTINGS.clear()
        _SETTINGS[key] = found
    return found if found.status == status else replace(found, status=status)


def queue_of(session: Session, campaign: Campaign) -> QueueCampaign:
    """The queue's view of a loaded campaign (its settings parsed once per process)."""
    return _cached_settings(session, campaign.id, campaign.created_at, campaign.status)


@dataclass(frozen=True)
class QueueContext:
    """Who asks and about which campaign, read in one statement at the start of a request."""

    user: User | None
    """A detached copy of the user's row (None: no such user)."""
    campaign: QueueCampaign | None
    """None: no campaign of that name."""


_CONTEXT = (
    select(
        User.name,
        User.roles,
        User.active,
        User.session_epoch,
        Campaign.id,
        Campaign.status,
        Campaign.created_at,
    )
    .select_from(User)
    .outerjoin(Campaign, Campaign.name == bindparam("campaign_name"))
    .where(User.id == bindparam("annotator"))
)


def queue_context(session: Session, campaign_name: str, user_id: int) -> QueueContext:
    """The user with id `user_id` and the campaign called `campaign_name`, in one round trip.

    Run it inside the request's transaction, so that the user's roles and the campaign's status
    are those the rest of the transaction works under."""
    row = (
        session.connection()
        .execute(_CONTEXT, {"campaign_name": campaign_name, "annotator": user_id})
        .first()
    )
    if row is None:
        return QueueContext(None, None)
    user = User(id=user_id, name=row[0], roles=list(row[1]), active=row[2], session_epoch=row[3])
    if row[4] is None:
        return QueueContext(user, None)
    return QueueContext(user, _cached_settings(session, row[4], row[6], row[5]))


# -- what an annotator sees -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Work:
    """An item reserved for one annotator. Holds nothing about other labels or gold answers."""

    assignment_id: int
    campaign: str
    phase: str
    """`qualification` or `work`."""
    item_id: str
    messages: list[dict[str, Any]]
    response: str | None
    response_messages: list[dict[str, Any]]
    categories: list[str]
    expires_at: dt.datetime
    done: int
    """Items this annotator has finished in this phase."""
    total: int | None
    """The phase's size for this annotator (qualification), or None (the queue)."""


@dataclass(frozen=True)
class NoWork:
    """Why there is nothing to label: `done`, `quota`, `waiting`, `paused`, `failed`."""

    reason: str
    message: str


def _roles(phase: str) -> tuple[str, ...]:
    return QUALIFICATION_ROLES if phase == "qualification" else QUEUE_ROLES


def _content_columns(phase: str) -> tuple[Any, ...]:
    """The item behind a reservation, and how many items the annotator finished in the phase."""
    mine, theirs = aliased(Assignment), aliased(CampaignItem)
    done = (
        select(func.count(mine.id))
        .join(theirs, theirs.id == mine.campaign_item_id)
        .where(
            mine.campaign_id == bindparam("campaign"),
            mine.annotator_id == bindparam("annotator"),
            _one_of(mine.status, ("submitted", "skipped")),
            _one_of(theirs.role, _roles(phase)),
        )
        .scalar_subquery()
    )
    return (
        Item.external_id,
        Item.messages,
        Item.categories,
        Response.text,
        Response.messages,
        done,
    )


@cache
def _content(phase: str) -> Any:
    return (
        select(*_content_columns(phase))
        .select_from(CampaignItem)
        .join(Item, Item.id == CampaignItem.item_id)
        .outerjoin(Response, Response.id == CampaignItem.response_id)
        .where(CampaignItem.id == bindparam("campaign_item"))
    )


def _work_of(
    queue: QueueCampaign, phase: str, assignment_id: int, expires_at: dt.datetime, row: Any
) -> Work:
    """A `Work` from the `_content_columns` of `row`."""
    external_id, messages, categories, text, response_messages, done = row
    return Work(
        assignment_id=assignment_id,
        campaign=queue.name,
        phase=phase,
        item_id=external_id,
        messages=messages,
        response=text,
        response_messages=list(response_messages or []),
        categories=list(categories),
        expires_at=_aware(expires_at),
        done=int(done or 0),
        total=queue.qualification_n if phase == "qualification" else None,
    )


def _work(
    conn: Connection,
    queue: QueueCampaign,
    user_id: int,
    phase: str,
    *,
    assignment_id: int,
    campaign_item_id: int,
    expires_at: dt.datetime,
) -> Work:
    row = conn.execute(
        _content(phase),
        {"campaign": queue.id, "annotator": user_id, "campaign_item": campaign_item_id},
    ).one()
    return _work_of(queue, phase, assignment_id, expires_at, row)


# -- expiry -------------------------------------------------------------------------------------------
_LAST_SWEEP: dict[int, float] = {}
SWEEP_EVERY = 5.0

_EXPIRE = (
    update(Assignment)
    .where(
        Assignment.campaign_id == bindparam("campaign"),
        Assignment.status == "reserved",
        Assignment.expires_at <= bindparam("now", type_=_column_type(Assignment.expires_at)),
    )
    .values(status="expired")
    .returning(Assignment.campaign_item_id)
)
_RELEASE = (
    update(CampaignItem)
    .where(CampaignItem.id == bindparam("campaign_item"))
    .values(n_reserved=CampaignItem.n_reserved - 1)
)


def expire_reservations(session: Session | Connection, campaign_id: int, now: dt.datetime) -> int:
    """Return expired reservations to the queue; how many there were."""
    expired = session.execute(_EXPIRE, {"campaign": campaign_id, "now": now}).scalars().all()
    # Items in id order, so that two sweeps lock them in the same order.
    for ci_id in sorted(expired):
        session.execute(_RELEASE, {"campaign_item": ci_id})
    return len(expired)


def _maybe_sweep(conn: Connection, campaign_id: int, now: dt.datetime, *, force: bool) -> int:
    last = _LAST_SWEEP.get(campaign_id, 0.0)
    if not force and time.monotonic() - last < SWEEP_EVERY:
        return 0
    _LAST_SWEEP[campaign_id] = time.monotonic()
    return expire_reservations(conn, campaign_id, now)


# -- handing out items ---------------------------------------------------------------------------------
@cache
def _live(phase: str) -> Any:
    return (
        select(Assignment.id, Assignment.campaign_item_id, Assignment.expires_at)
        .join(CampaignItem, CampaignItem.id == Assignment.campaign_item_id)
        .where(
            Assignment.campaign_id == bindparam("campaign"),
            Assignment.annotator_id == bindparam("annotator"),
            Assignment.status == "reserved",
            _one_of(CampaignItem.role, _roles(phase)),
        )
        .order_by(Assignment.id)
    )


def _live_work(
    conn: Connection, queue: QueueCampaign, user_id: int, phase: str, now: dt.datetime
) -> Work | None:
    for a_id, ci_id, expires in conn.execute(
        _live(phase), {"campaign": queue.id, "annotator": user_id}
    ):
        if _aware(expires) > now:
            return _work(
                conn,
                queue,
                user_id,
                phase,
                assignment_id=a_id,
                campaign_item_id=ci_id,
                expires_at=expires,
            )
    return None


_RESERVATION_COLUMNS = (
    "campaign_id",
    "campaign_item_id",
    "item_id",
    "annotator_id",
    "status",
    "reserved_at",
    "expires_at",
)


def _upsert_assignment(dialect: str, revive: tuple[str, ...], source: Any = None) -> Any:
    """A new reservation, or an old assignment of the same person on the same item (in a
    `revive` status) brought back to life: the unique constraint forbids a second row. The
    values are parameters named as the columns, or the rows of `source`."""
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Assignment)
    if source is not None:
        stmt = stmt.from_select(_RESERVATION_COLUMNS, source)
    return stmt.on_conflict_do_update(
        index_elements=[Assignment.campaign_id, Assignment.item_id, Assignment.annotator_id],
        set_={
            "status": "reserved",
            "reserved_at": stmt.excluded.reserved_at,
            "expires_at": stmt.excluded.expires_at,
        },
        where=_one_of(Assignment.status, revive),
    ).returning(Assignment.id)


# The queue never offers an item on which the annotator holds an assignment that has not expired,
# so only an expired one can come back; a qualification item can also come back while still
# marked reserved (its reservation ran out before the sweep).
_RESERVE = {
    (dialect, phase): _upsert_assignment(
        dialect, ("expired", "reserved") if phase == "qualification" else ("expired",)
    )
    for dialect in ("postgresql", "sqlite")
    for phase in ("qualification", "work")
}


def _reserve(
    conn: Connection,
    queue: QueueCampaign,
    user_id: int,
    phase: str,
    *,
    campaign_item_id: int,
    item_id: int,
    now: dt.datetime,
) -> Work:
    expires = now + dt.timedelta(seconds=queue.reservation_seconds)
    dialect = "postgresql" if conn.dialect.name == "postgresql" else "sqlite"
    a_id = conn.execute(
        _RESERVE[dialect, phase],
        {
            "campaign_id": queue.id,
            "campaign_item_id": campaign_item_id,
            "item_id": item_id,
            "annotator_id": user_id,
            "status": "reserved",
            "reserved_at": now,
            "expires_at": expires,
        },
    ).scalar()
    if a_id is None:
        # This person's assignment on the item is live: a concurrent request of theirs reserved
        # it after this statement's snapshot. The retry sees it and offers another item.
        raise LostRaceError(
            f"assignment of annotator {user_id} on campaign item {campaign_item_id}"
        )
    return _work(
        conn,
        queue,
        user_id,
        phase,
        assignment_id=a_id,
        campaign_item_id=campaign_item_id,
        expires_at=expires,
    )


_QUALIFICATION = select(
    Qualification.status, Qualification.n, Qualification.correct, Qualification.score
).where(
    Qualification.campaign_id == bindparam("campaign"),
    Qualification.annotator_id == bindparam("annotator"),
)


@dataclass(frozen=True)
class QualificationState:
    """Where an annotator stands in a campaign's qualification round."""

    status: str
    """`pending`, `passed` or `failed`."""
    n: int
    correct: int
    score: float | None


def _qualification(conn: Connection, campaign_id: int, user_id: int) -> QualificationState:
    row = conn.execute(_QUALIFICATION, {"campaign": campaign_id, "annotator": user_id}).first()
    if row is None:
        conn.execute(
            insert(Qualification),
            {"campaign_id": campaign_id, "annotator_id": user_id, "status": "pending"},
        )
        return QualificationState("pending", 0, 0, None)
    return QualificationState(row[0], row[1], row[2], row[3])


_answered = aliased(Assignment)
_NEXT_QUALIFICATION = (
    select(CampaignItem.id, CampaignItem.item_id)
    .where(
        CampaignItem.campaign_id == bindparam("campaign"),
        CampaignItem.role == "qualification",
        CampaignItem.id.not_in(
            select(_answered.campaign_item_id).where(
                _answered.campaign_id == bindparam("campaign"),
                _answered.annotator_id == bindparam("annotator"),
                _answered.status == "submitted",
            )
        ),
    )
    .order_by(CampaignItem.position)
    .limit(1)
)


def _next_qualification(
    conn: Connection, queue: QueueCampaign, user_id: int, now: dt.datetime
) -> Work | NoWork:
    live = _live_work(conn, queue, user_id, "qualification", now)
    if live is not None:
        return live
    row = conn.execute(_NEXT_QUALIFICATION, {"campaign": queue.id, "annotator": user_id}).first()
    if row is None:
        return NoWork("waiting", "your qualification answers are being scored")
    return _reserve(
        conn, queue, user_id, "qualification", campaign_item_id=row[0], item_id=row[1], now=now
    )


_candidate, _held = aliased(CampaignItem), aliased(Assignment)
# Choose the first item in queue order with room that this person has not had, and count the
# reservation on it, in one statement; on PostgreSQL concurrent fetches skip each other's rows.
_PICK = (
    update(CampaignItem)
    .where(
        CampaignItem.id
        == select(_candidate.id)
        .where(
            _candidate.campaign_id == bindparam("campaign"),
            _candidate.status == "open",
            _one_of(_candidate.role, QUEUE_ROLES),
            _candidate.n_labels + _candidate.n_reserved < _candidate.k,
            ~select(_held.id)
            .where(
                _held.campaign_item_id == _candidate.id,
                _held.annotator_id == bindparam("annotator"),
                _held.status != "expired",
            )
            .exists(),
        )
        .order_by(_candidate.position)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    .values(n_reserved=CampaignItem.n_reserved + 1)
    .returning(CampaignItem.id, CampaignItem.item_id, CampaignItem.response_id)
)


def _take_in_one_statement() -> Any:
    """PostgreSQL: `_PICK`, the reservation and the item's content in one statement, one round
    trip. No row: no item has room; a row without an assignment id: `LostRaceError`."""
    picked = _PICK.cte("picked")
    source = select(
        _typed("campaign", Assignment.campaign_id),
        picked.c.id,
        picked.c.item_id,
        _typed("annotator", Assignment.annotator_id),
        literal("reserved", String),
        _typed("now", Assignment.reserved_at),
        _typed("expires", Assignment.expires_at),
    )
    reserved = _upsert_assignment("postgresql", ("expired",), source).cte("reserved")
    return (
        select(picked.c.id, reserved.c.id, *_content_columns("work"))
        .select_from(picked)
        .join(Item, Item.id == picked.c.item_id)
        .outerjoin(Response, Response.id == picked.c.response_id)
        .outerjoin(reserved, true())
    )


_TAKE_PG = _take_in_one_statement()


def _take(conn: Connection, queue: QueueCampaign, user_id: int, now: dt.datetime) -> Work | None:
    """Reserve the queue's next item with room for the annotator, or None if there is none."""
    params = {"campaign": queue.id, "annotator": user_id}
    if conn.dialect.name == "postgresql":
        expires = now + dt.timedelta(seconds=queue.reservation_seconds)
        row = conn.execute(_TAKE_PG, {**params, "now": now, "expires": expires}).first()
        if row is None:
            return None
        if row[1] is None:
            raise LostRaceError(f"assignment of annotator {user_id} on campaign item {row[0]}")
        return _work_of(queue, "work", row[1], expires, row[2:])
    picked = conn.execute(_PICK, params).first()
    if picked is None:
        return None
    return _reserve(
        conn, queue, user_id, "work", campaign_item_id=picked[0], item_id=picked[1], now=now
    )


_TAKEN = (
    select(func.count(Assignment.id))
    .join(CampaignItem, CampaignItem.id == Assignment.campaign_item_id)
    .where(
        Assignment.campaign_id == bindparam("campaign"),
        Assignment.annotator_id == bindparam("annotator"),
        _one_of(Assignment.status, ("submitted", "reserved")),
        _one_of(CampaignItem.role, QUEUE_ROLES),
    )
)
_STILL_OPEN = select(func.count(CampaignItem.id)).where(
    CampaignItem.campaign_id == bindparam("campaign"),
    CampaignItem.status == "open",
    _one_of(CampaignItem.role, QUEUE_ROLES),
)


def reserve_next(
    session: Session, queue: QueueCampaign, user_id: int, *, now: dt.datetime | None = None
) -> Work | NoWork:
    """The annotator's current reservation, or a new one: a qualification item first, then the
    queue's next item with room, in queue order. Run it in `write_session`."""
    now = now or now_utc()
    if queue.status != "active":
        return NoWork("paused", f"campaign {queue.name} is {queue.status}")
    conn = session.connection()
    if queue.qualification_n > 0:
        q = _qualification(conn, queue.id, user_id)
        if q.status == "failed":
            return NoWork(
                "failed",
                f"you scored {q.correct}/{q.n} on the qualification round, below the pass mark "
                f"of {queue.qualification_threshold:.0%}; an admin can let you try again",
            )
        if q.status == "pending":
            return _next_qualification(conn, queue, user_id, now)
    live = _live_work(conn, queue, user_id, "work", now)
    if live is not None:
        return live
    params = {"campaign": queue.id, "annotator": user_id}
    if queue.max_per_annotator is not None:
        taken = conn.execute(_TAKEN, params).scalar()
        if (taken or 0) >= queue.max_per_annotator:
            return NoWork("quota", f"you have labelled your share ({queue.max_per_annotator})")
    _maybe_sweep(conn, queue.id, now, force=False)
    work = _take(conn, queue, user_id, now)
    if work is None and _maybe_sweep(conn, queue.id, now, force=True):
        work = _take(conn, queue, user_id, now)
    if work is not None:
        return work
    if conn.execute(_STILL_OPEN, params).scalar():
        return NoWork("waiting", "every open item is with other annotators or done by you")
    return NoWork("done", "nothing left to label in this campaign")


def next_work(
    session: Session, campaign: Campaign, user: User, *, now: dt.datetime | None = None
) -> Work | NoWork:
    """`reserve_next` for a loaded campaign and user. Run it in `write_session`."""
    return reserve_next(session, queue_of(session, campaign), user.id, now=now)


# -- taking labels -------------------------------------------------------------------------------------
_OWN = (
    select(Assignment.id, Assignment.status, Assignment.campaign_item_id, Assignment.item_id)
    .where(
        Assignment.id == bindparam("assignment"),
        Assignment.campaign_id == bindparam("campaign"),
        Assignment.annotator_id == bindparam("annotator"),
    )
    .with_for_update()
)


def _own_assignment(
    conn: Connection, queue: QueueCampaign, user_id: int, assignment_id: int
) -> Any:
    row = conn.execute(
        _OWN, {"assignment": assignment_id, "campaign": queue.id, "annotator": user_id}
    ).first()
    if row is None:
        # The same answer whether the assignment does not exist or is someone else's.
        raise QueueError(f"no assignment {assignment_id} of yours in this campaign", status=404)
    return row


def _finished_now() -> Any:
    return bindparam("now", type_=_column_type(Assignment.finished_at))


# The usual case in one statement: the annotator's own live reservation becomes submitted.
_SUBMIT_RESERVED = (
    update(Assignment)
    .where(
        Assignment.id == bindparam("assignment"),
        Assignment.campaign_id == bindparam("campaign"),
        Assignment.annotator_id == bindparam("annotator"),
        Assignment.status == "reserved",
    )
    .values(status="submitted", finished_at=_finished_now())
    .returning(Assignment.campaign_item_id, Assignment.item_id)
)
_SUBMIT_EXPIRED = (
    update(Assignment)
    .where(Assignment.id == bindparam("assignment"))
    .values(status="submitted", finished_at=_finished_now())
)
_ITEM = (
    select(
        CampaignItem.role,
        CampaignItem.status,
        CampaignItem.n_labels,
        CampaignItem.n_reserved,
        CampaignItem.n_skips,
        CampaignItem.k,
    )
    .where(CampaignItem.id == bindparam("campaign_item"))
    .with_for_update()
)
# Counts a label on a queue item (a qualification item has no counters): no row back means the
# item is a qualification item.
_COUNT_LABEL = (
    update(CampaignItem)
    .where(
        CampaignItem.id == bindparam("campaign_item"),
        _one_of(CampaignItem.role, QUEUE_ROLES),
    )
    .values(
        n_reserved=CampaignItem.n_reserved - bindparam("released"),
        n_labels=CampaignItem.n_labels + 1,
    )
    .returning(CampaignItem.role, CampaignItem.status, CampaignItem.n_labels, CampaignItem.k)
)
_INSERT_LABEL = insert(Label).returning(Label.id)
_STORED_LABEL = select(
    Label.id,
    Label.behavior,
    Label.violation,
    Label.category,
    Label.rule_ids,
    Label.rationale,
    Label.confidence,
).where(Label.assignment_id == bindparam("assignment"))


@dataclass(frozen=True)
class StoredLabel:
    """A label as stored."""

    id: int
    assignment_id: int
    behavior: str | None
    violation: bool | None
    category: str | None
    rule_ids: list[str]
    rationale: str | None
    confidence: int | None


@dataclass(frozen=True)
class Submitted:
    label: StoredLabel
    created: bool
    """False when the same label had already been taken (a retried request)."""
    qualification: QualificationState | None = None


_LABELS_ON_ITEM = (
    select(User.name, Label.behavior, Label.violation, Label.category, Label.rule_ids)
    .join(User, User.id == Label.annotator_id)
    .where(Label.campaign_item_id == bindparam("campaign_item"))
)
_GOLD = select(CampaignItem.gold).where(CampaignItem.id == bindparam("campaign_item"))
_FINAL = bindparam("final", type_=_column_type(CampaignItem.final))
_COMPLETE = (
    update(CampaignItem)
    .where(CampaignItem.id == bindparam("campaign_item"))
    .values(
        status="complete",
        final=_FINAL,
        resolved_at=bindparam("now", type_=_column_type(CampaignItem.resolved_at)),
    )
)
_TO_ADJUDICATION = (
    update(CampaignItem)
    .where(CampaignItem.id == bindparam("campaign_item"))
    .values(status="adjudication")
)


def _resolve(
    conn: Connection, queue: QueueCampaign, ci_id: int, role: str, now: dt.datetime
) -> None:
    """Close an item that has all its labels: agreed, gold, or to adjudication."""
    params: dict[str, Any] = {"campaign_item": ci_id, "now": now}
    if role == "gold":
        gold = conn.execute(_GOLD, params).scalar()
        conn.execute(_COMPLETE, {**params, "final": dict(gold or {})})
        return
    views = [
        LabelView(r[0], r[1], r[2], r[3], list(r[4] or []))
        for r in conn.execute(_LABELS_ON_ITEM, params)
    ]
    rule: Rule = "majority" if queue.agreement == "majority" else "unanimous"
    result = consensus(queue.schema, views, rule=rule)
    if result.agreed:
        conn.execute(_COMPLETE, {**params, "final": result.final})
    else:
        conn.execute(_TO_ADJUDICATION, params)


_QUALIFICATION_ANSWERS = (
    select(CampaignItem.id, CampaignItem.gold, Label.behavior, Label.violation)
    .join(Label, Label.campaign_item_id == CampaignItem.id)
    .where(
        CampaignItem.campaign_id == bindparam("campaign"),
        CampaignItem.role == "qualification",
        Label.annotator_id == bindparam("annotator"),
    )
)
_SCORE = (
    update(Qualification)
    .where(
        Qualification.campaign_id == bindparam("campaign"),
        Qualification.annotator_id == bindparam("annotator"),
    )
    .values(
        n=bindparam("answered"),
        correct=bindparam("right"),
        score=bindparam("share"),
        status=bindparam("verdict"),
        finished_at=bindparam("now", type_=_column_type(Qualification.finished_at)),
    )
)
_COUNT_ANSWERS = (
    update(Qualification)
    .where(
        Qualification.campaign_id == bindparam("campaign"),
        Qualification.annotator_id == bindparam("annotator"),
    )
    .values(n=bindparam("answered"))
)


def _score_qualification(
    conn: Connection, queue: QueueCampaign, user_id: int, now: dt.datetime
) -> QualificationState:
    q = _qualification(conn, queue.id, user_id)
    params: dict[str, Any] = {"campaign": queue.id, "annotator": user_id}
    rows = conn.execute(_QUALIFICATION_ANSWERS, params).all()
    if len(rows) < queue.qualification_n:
        conn.execute(_COUNT_ANSWERS, {**params, "answered": len(rows)})
        return replace(q, n=len(rows))
    schema = queue.schema
    frame = pd.DataFrame(
        {
            "item": [r[0] for r in rows],
            "rater": f"annotator {user_id}",
            "value": [schema.decision_key(r[2], r[3]) for r in rows],
        }
    )
    gold = {r[0]: schema.decision_key(r[1]["behavior"], r[1].get("violation")) for r in rows}
    acc = annotator_accuracy(frame, gold, source="qualification").iloc[0]
    correct, score = int(acc["k"]), float(acc["accuracy"])
    status = "passed" if score >= queue.qualification_threshold else "failed"
    conn.execute(
        _SCORE,
        {
            **params,
            "answered": len(rows),
            "right": correct,
            "share": score,
            "verdict": status,
            "now": now,
        },
    )
    return QualificationState(status, len(rows), correct, score)


def _retried(conn: Connection, assignment_id: int, label: LabelInput) -> Submitted:
    """A label sent again for an assignment already labelled: the stored one if it says the same."""
    row = conn.execute(_STORED_LABEL, {"assignment": assignment_id}).one()
    stored = StoredLabel(assignment_id=assignment_id, **row._asdict())
    same = (
        LabelInput(
            behavior=Behavior(stored.behavior) if stored.behavior else None,
            violation=stored.violation,
            category=stored.category,
            rule_ids=list(stored.rule_ids),
            rationale=stored.rationale,
            confidence=stored.confidence,
        ).content()
        == label.content()
    )
    if same:
        return Submitted(stored, created=False)
    raise QueueError(
        "you have already labelled this item",
        status=409,
        hint="labels cannot be changed once submitted",
    )


def _submit_late(
    conn: Connection,
    queue: QueueCampaign,
    user_id: int,
    assignment_id: int,
    label: LabelInput,
    now: dt.datetime,
) -> tuple[int, int, str] | Submitted:
    """A label for an assignment that is not a live reservation: a retry, a skipped item, a
    closed campaign, or an expired reservation (kept if the item still has room)."""
    a = _own_assignment(conn, queue, user_id, assignment_id)
    if a.status == "submitted":
        return _retried(conn, assignment_id, label)
    if a.status == "skipped":
        raise QueueError("you skipped this item", status=409)
    if queue.status == "closed":
        raise QueueError(f"campaign {queue.name} is closed", status=409)
    ci = conn.execute(_ITEM, {"campaign_item": a.campaign_item_id}).one()
    if (
        a.status == "expired"
        and ci.role in QUEUE_ROLES
        and (ci.status != "open" or ci.n_labels + ci.n_reserved >= ci.k)
    ):
        raise QueueError(
            "your reservation expired and the item went to someone else",
            status=409,
            hint="fetch the next item",
        )
    conn.execute(_SUBMIT_EXPIRED, {"assignment": assignment_id, "now": now})
    return a.campaign_item_id, a.item_id, a.status


# Label columns given per request; the rest (item, campaign item) come from the assignment.
_LABEL_FIELDS = (
    "behavior",
    "violation",
    "category",
    "rule_ids",
    "rationale",
    "confidence",
    "duration_ms",
    "created_at",
)


def _submit_in_one_statement() -> Any:
    """PostgreSQL: `_SUBMIT_RESERVED`, `_COUNT_LABEL` and the label's insert in one statement,
    one round trip. No row: the assignment is not a live reservation of this annotator."""
    claimed = _SUBMIT_RESERVED.cte("claimed")
    counted = (
        update(CampaignItem)
        .where(
            CampaignItem.id == claimed.c.campaign_item_id, _one_of(CampaignItem.role, QUEUE_ROLES)
        )
        .values(n_reserved=CampaignItem.n_reserved - 1, n_labels=CampaignItem.n_labels + 1)
        .returning(CampaignItem.role, CampaignItem.status, CampaignItem.n_labels, CampaignItem.k)
        .cte("counted")
    )
    fields = [_typed(f"label_{name}", getattr(Label, name)) for name in _LABEL_FIELDS]
    source = select(
        _typed("assignment", Label.assignment_id),
        _typed("campaign", Label.campaign_id),
        claimed.c.campaign_item_id,
        claimed.c.item_id,
        _typed("annotator", Label.annotator_id),
        *fields,
    )
    columns = ("assignment_id", "campaign_id", "campaign_item_id", "item_id", "annotator_id")
    labelled = (
        insert(Label)
        .from_select(columns + _LABEL_FIELDS, source)
        .returning(Label.id)
        .cte("labelled")
    )
    return (
        select(
            claimed.c.campaign_item_id,
            labelled.c.id,
            counted.c.role,
            counted.c.status,
            counted.c.n_labels,
            counted.c.k,
        )
        .select_from(claimed)
        .join(labelled, true())
        .outerjoin(counted, true())
    )


_SUBMIT_PG = _submit_in_one_statement()


def _record(
    conn: Connection,
    params: dict[str, Any],
    fields: dict[str, Any],
    ci_id: int,
    item_id: int,
    *,
    released: int,
) -> tuple[int, int, Any]:
    """Count a label on its item (releasing the reservation) and store it: the campaign item,
    the label's id, and the item's counters (None for a qualification item)."""
    counted = conn.execute(_COUNT_LABEL, {"campaign_item": ci_id, "released": released}).first()
    label_id = conn.execute(
        _INSERT_LABEL,
        {
            "assignment_id": params["assignment"],
            "campaign_id": params["campaign"],
            "campaign_item_id": ci_id,
            "item_id": item_id,
            "annotator_id": params["annotator"],
            **fields,
        },
    ).scalar_one()
    return ci_id, label_id, counted


def take_label(
    session: Session,
    queue: QueueCampaign,
    user_id: int,
    assignment_id: int,
    label: LabelInput,
    *,
    now: dt.datetime | None = None,
) -> Submitted:
    """Take a label for one of the annotator's own assignments. Run it in `write_session`.

    A retried request with the same label returns the stored one (`created` False); a different
    label for an item already labelled is refused: labels are not edited after the fact.
    """
    now = now or now_utc()
    queue.schema.validate_label(label)
    conn = session.connection()
    stored = StoredLabel(
        id=0,
        assignment_id=assignment_id,
        behavior=label.behavior.value if label.behavior else None,
        violation=label.violation,
        category=label.category,
        rule_ids=list(label.rule_ids),
        rationale=(label.rationale or "").strip() or None,
        confidence=label.confidence,
    )
    fields = {
        "behavior": stored.behavior,
        "violation": stored.violation,
        "category": stored.category,
        "rule_ids": stored.rule_ids,
        "rationale": stored.rationale,
        "confidence": stored.confidence,
        "duration_ms": label.duration_ms,
        "created_at": now,
    }
    params: dict[str, Any] = {
        "assignment": assignment_id,
        "campaign": queue.id,
        "annotator": user_id,
        "now": now,
    }
    recorded = None
    if queue.status != "closed" and conn.dialect.name == "postgresql":
        row = conn.execute(_SUBMIT_PG, {**params, **{f"label_{k}": v for k, v in fields.items()}})
        found = row.first()
        if found is not None:
            recorded = found[0], found[1], found[2:] if found[2] is not None else None
    elif queue.status != "closed":
        claimed = conn.execute(_SUBMIT_RESERVED, params).first()
        if claimed is not None:
            recorded = _record(conn, params, fields, claimed[0], claimed[1], released=1)
    if recorded is None:
        late = _submit_late(conn, queue, user_id, assignment_id, label, now)
        if isinstance(late, Submitted):
            return late
        ci_id, item_id, was = late
        recorded = _record(
            conn, params, fields, ci_id, item_id, released=1 if was == "reserved" else 0
        )
    ci_id, taken, counted = recorded
    stored = replace(stored, id=taken)
    if counted is None:
        return Submitted(
            stored, created=True, qualification=_score_qualification(conn, queue, user_id, now)
        )
    role, status, n_labels, k = counted
    if n_labels >= k and status == "open":
        _resolve(conn, queue, ci_id, role, now)
    return Submitted(stored, created=True)


def submit_label(
    session: Session,
    campaign: Campaign,
    user: User,
    assignment_id: int,
    label: LabelInput,
    *,
    now: dt.datetime | None = None,
) -> Submitted:
    """`take_label` for a loaded campaign and user. Run it in `write_session`."""
    return take_label(session, queue_of(session, campaign), user.id, assignment_id, label, now=now)


# -- skipping -------------------------------------------------------------------------------------------
_SKIP = (
    update(Assignment)
    .where(Assignment.id == bindparam("assignment"))
    .values(status="skipped", finished_at=_finished_now(), skip_reason=bindparam("reason"))
)
_COUNT_SKIP = (
    update(CampaignItem)
    .where(CampaignItem.id == bindparam("campaign_item"))
    .values(
        n_reserved=CampaignItem.n_reserved - bindparam("released"),
        n_skips=CampaignItem.n_skips + 1,
        status=bindparam("item_status"),
    )
)


def take_skip(
    session: Session,
    queue: QueueCampaign,
    user_id: int,
    assignment_id: int,
    reason: str,
    *,
    now: dt.datetime | None = None,
) -> str:
    """Give an item back with a reason; the annotator will not get it again. After k skips of
    a work item it goes to adjudication, where the reasons are shown. Returns the assignment's
    status (`skipped`). Run it in `write_session`."""
    now = now or now_utc()
    reason = reason.strip()
    if not reason:
        raise QueueError("say why you skip this item", status=422)
    conn = session.connection()
    a = _own_assignment(conn, queue, user_id, assignment_id)
    if a.status == "skipped":
        return "skipped"
    if a.status == "submitted":
        raise QueueError("you have already labelled this item", status=409)
    ci = conn.execute(_ITEM, {"campaign_item": a.campaign_item_id}).one()
    if ci.role == "qualification":
        raise QueueError("qualification items cannot be skipped", status=409)
    status = ci.status
    if ci.role == "work" and status == "open" and ci.n_skips + 1 >= ci.k and ci.n_labels < ci.k:
        status = "adjudication"
    conn.execute(
        _COUNT_SKIP,
        {
            "campaign_item": a.campaign_item_id,
            "released": 1 if a.status == "reserved" else 0,
            "item_status": status,
        },
    )
    conn.execute(_SKIP, {"assignment": assignment_id, "now": now, "reason": reason[:2000]})
    return "skipped"


def skip_item(
    session: Session,
    campaign: Campaign,
    user: User,
    assignment_id: int,
    reason: str,
    *,
    now: dt.datetime | None = None,
) -> Assignment:
    """`take_skip` for a loaded campaign and user; returns the assignment as stored."""
    take_skip(session, queue_of(session, campaign), user.id, assignment_id, reason, now=now)
    found = session.get(Assignment, assignment_id, populate_existing=True)
    assert found is not None
    return found
