"""The labelling queue: handing out items, taking labels and skips, and the qualification round.

Every call that changes the queue runs in one short write transaction (`write_session`):

- SQLite: `BEGIN IMMEDIATE` takes the database's write lock before the first read, so the choice
  of an item and its reservation cannot interleave with another writer's. Inside one process the
  writers also queue on a lock, so they wait on each other without SQLite's sleeping busy handler.
- PostgreSQL: the next item is chosen with `SELECT ... FOR UPDATE SKIP LOCKED` on the item row,
  whose counters (`n_labels + n_reserved < k`) decide whether it has room: concurrent annotators
  take different rows instead of waiting, and a row updated since the statement's snapshot is
  re-checked by PostgreSQL before it is locked.

The unique constraints on (campaign, item, annotator) are the last line of defence. A reservation
lasts `reservation_seconds`; expired ones are returned to the queue (anyone may take the item,
the same annotator included). A label is acknowledged only after its transaction has committed.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from policylab.campaigns.consensus import LabelView, Rule, consensus
from policylab.campaigns.schema import LabelInput
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


class QueueError(PolicylabError):
    """A request the queue refuses; `status` is the HTTP status that says why."""

    def __init__(self, message: str, *, status: int, hint: str | None = None):
        self.status = status
        super().__init__(message, hint=hint)


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
    if isinstance(exc, IntegrityError):
        return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40001", "40P01")  # serialization failure, deadlock


def run_write(engine: Engine, work: Callable[[Session], T], *, attempts: int = 5) -> T:
    """Run `work` in a write transaction, retrying on a lost race (a unique constraint hit by a
    concurrent duplicate request, or a PostgreSQL deadlock): the retry sees the winner's row."""
    for attempt in range(attempts):
        try:
            with write_session(engine) as session:
                return work(session)
        except (IntegrityError, OperationalError) as exc:
            if attempt == attempts - 1 or not _retryable(exc):
                raise
            time.sleep(0.002 * (attempt + 1))
    raise AssertionError("unreachable")


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


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


def _work(session: Session, campaign: Campaign, a: Assignment, phase: str, user: User) -> Work:
    ci = session.get(CampaignItem, a.campaign_item_id)
    assert ci is not None
    item = session.get(Item, ci.item_id)
    assert item is not None
    response = session.get(Response, ci.response_id) if ci.response_id else None
    roles = ("qualification",) if phase == "qualification" else QUEUE_ROLES
    done = session.scalar(
        select(func.count(Assignment.id))
        .join(CampaignItem, CampaignItem.id == Assignment.campaign_item_id)
        .where(
            Assignment.campaign_id == campaign.id,
            Assignment.annotator_id == user.id,
            Assignment.status.in_(("submitted", "skipped")),
            CampaignItem.role.in_(roles),
        )
    )
    return Work(
        assignment_id=a.id,
        campaign=campaign.name,
        phase=phase,
        item_id=item.external_id,
        messages=item.messages,
        response=response.text if response else None,
        response_messages=list(response.messages) if response else [],
        categories=list(item.categories),
        expires_at=_aware(a.expires_at),
        done=int(done or 0),
        total=campaign.qualification_n if phase == "qualification" else None,
    )


@dataclass(frozen=True)
class NoWork:
    """Why there is nothing to label: `done`, `quota`, `waiting`, `paused`, `failed`."""

    reason: str
    message: str


# -- expiry -------------------------------------------------------------------------------------------
_LAST_SWEEP: dict[int, float] = {}
SWEEP_EVERY = 5.0


def expire_reservations(session: Session, campaign_id: int, now: dt.datetime) -> int:
    """Return expired reservations to the queue; how many there were."""
    expired = (
        session.execute(
            update(Assignment)
            .where(
                Assignment.campaign_id == campaign_id,
                Assignment.status == "reserved",
                Assignment.expires_at <= now,
            )
            .values(status="expired")
            .returning(Assignment.campaign_item_id)
        )
        .scalars()
        .all()
    )
    for ci_id in sorted(expired):
        session.execute(
            update(CampaignItem)
            .where(CampaignItem.id == ci_id)
            .values(n_reserved=CampaignItem.n_reserved - 1)
        )
    return len(expired)


def _maybe_sweep(session: Session, campaign: Campaign, now: dt.datetime, *, force: bool) -> int:
    last = _LAST_SWEEP.get(campaign.id, 0.0)
    if not force and time.monotonic() - last < SWEEP_EVERY:
        return 0
    _LAST_SWEEP[campaign.id] = time.monotonic()
    return expire_reservations(session, campaign.id, now)


# -- handing out items ---------------------------------------------------------------------------------
def _live_reservation(
    session: Session, campaign: Campaign, user: User, roles: tuple[str, ...], now: dt.datetime
) -> Assignment | None:
    rows = session.scalars(
        select(Assignment)
        .join(CampaignItem, CampaignItem.id == Assignment.campaign_item_id)
        .where(
            Assignment.campaign_id == campaign.id,
            Assignment.annotator_id == user.id,
            Assignment.status == "reserved",
            CampaignItem.role.in_(roles),
        )
        .order_by(Assignment.id)
    ).all()
    for a in rows:
        if _aware(a.expires_at) > now:
            return a
    return None


def _reserve(
    session: Session, campaign: Campaign, ci: CampaignItem, user: User, now: dt.datetime
) -> Assignment:
    expires = now + dt.timedelta(seconds=campaign.reservation_seconds)
    # An expired reservation of this annotator on this item comes back to life: the unique
    # constraint forbids a second row, and it is the same person on the same item. (The queue
    # never offers an item on which the annotator holds a reservation that has not been expired,
    # so only a qualification item can come back while still marked reserved.)
    old = session.scalars(
        select(Assignment).where(
            Assignment.campaign_item_id == ci.id,
            Assignment.annotator_id == user.id,
            Assignment.status.in_(("expired", "reserved")),
        )
    ).first()
    if old is not None:
        if old.status == "reserved" and ci.role in QUEUE_ROLES:
            ci.n_reserved -= 1
        old.status, old.reserved_at, old.expires_at = "reserved", now, expires
        a = old
    else:
        a = Assignment(
            campaign_id=campaign.id,
            campaign_item_id=ci.id,
            item_id=ci.item_id,
            annotator_id=user.id,
            status="reserved",
            reserved_at=now,
            expires_at=expires,
        )
        session.add(a)
    if ci.role in QUEUE_ROLES:
        ci.n_reserved += 1
    session.flush()
    return a


def _qualification(session: Session, campaign: Campaign, user: User) -> Qualification:
    q = session.scalars(
        select(Qualification).where(
            Qualification.campaign_id == campaign.id, Qualification.annotator_id == user.id
        )
    ).first()
    if q is None:
        q = Qualification(campaign_id=campaign.id, annotator_id=user.id, status="pending")
        session.add(q)
        session.flush()
    return q


def _next_qualification(
    session: Session, campaign: Campaign, user: User, now: dt.datetime
) -> Work | NoWork:
    live = _live_reservation(session, campaign, user, ("qualification",), now)
    if live is not None:
        return _work(session, campaign, live, "qualification", user)
    answered = select(Assignment.campaign_item_id).where(
        Assignment.campaign_id == campaign.id,
        Assignment.annotator_id == user.id,
        Assignment.status == "submitted",
    )
    ci = session.scalars(
        select(CampaignItem)
        .where(
            CampaignItem.campaign_id == campaign.id,
            CampaignItem.role == "qualification",
            CampaignItem.id.not_in(answered),
        )
        .order_by(CampaignItem.position)
        .limit(1)
    ).first()
    if ci is None:
        return NoWork("waiting", "your qualification answers are being scored")
    return _work(
        session, campaign, _reserve(session, campaign, ci, user, now), "qualification", user
    )


def _candidate(session: Session, campaign: Campaign, user: User) -> CampaignItem | None:
    mine = select(Assignment.id).where(
        Assignment.campaign_item_id == CampaignItem.id,
        Assignment.annotator_id == user.id,
        Assignment.status != "expired",
    )
    query = (
        select(CampaignItem)
        .where(
            CampaignItem.campaign_id == campaign.id,
            CampaignItem.status == "open",
            CampaignItem.role.in_(QUEUE_ROLES),
            CampaignItem.n_labels + CampaignItem.n_reserved < CampaignItem.k,
            ~mine.exists(),
        )
        .order_by(CampaignItem.position)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return session.scalars(query).first()


def next_work(
    session: Session, campaign: Campaign, user: User, *, now: dt.datetime | None = None
) -> Work | NoWork:
    """The annotator's current reservation, or a new one: a qualification item first, then the
    queue's next item with room, in queue order. Run it in `write_session`."""
    now = now or now_utc()
    if campaign.status != "active":
        return NoWork("paused", f"campaign {campaign.name} is {campaign.status}")
    if campaign.qualification_n > 0:
        q = _qualification(session, campaign, user)
        if q.status == "failed":
            return NoWork(
                "failed",
                f"you scored {q.correct}/{q.n} on the qualification round, below the pass mark "
                f"of {campaign.qualification_threshold:.0%}; an admin can let you try again",
            )
        if q.status == "pending":
            return _next_qualification(session, campaign, user, now)
    live = _live_reservation(session, campaign, user, QUEUE_ROLES, now)
    if live is not None:
        return _work(session, campaign, live, "work", user)
    if campaign.max_per_annotator is not None:
        taken = session.scalar(
            select(func.count(Assignment.id))
            .join(CampaignItem, CampaignItem.id == Assignment.campaign_item_id)
            .where(
                Assignment.campaign_id == campaign.id,
                Assignment.annotator_id == user.id,
                Assignment.status.in_(("submitted", "reserved")),
                CampaignItem.role.in_(QUEUE_ROLES),
            )
        )
        if (taken or 0) >= campaign.max_per_annotator:
            return NoWork("quota", f"you have labelled your share ({campaign.max_per_annotator})")
    _maybe_sweep(session, campaign, now, force=False)
    ci = _candidate(session, campaign, user)
    if ci is None and _maybe_sweep(session, campaign, now, force=True):
        ci = _candidate(session, campaign, user)
    if ci is None:
        still_open = session.scalar(
            select(func.count(CampaignItem.id)).where(
                CampaignItem.campaign_id == campaign.id,
                CampaignItem.status == "open",
                CampaignItem.role.in_(QUEUE_ROLES),
            )
        )
        if still_open:
            return NoWork("waiting", "every open item is with other annotators or done by you")
        return NoWork("done", "nothing left to label in this campaign")
    return _work(session, campaign, _reserve(session, campaign, ci, user, now), "work", user)


# -- taking labels -------------------------------------------------------------------------------------
def _own_assignment(
    session: Session, campaign: Campaign, user: User, assignment_id: int
) -> Assignment:
    query = select(Assignment).where(
        Assignment.id == assignment_id,
        Assignment.campaign_id == campaign.id,
        Assignment.annotator_id == user.id,
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    a = session.scalars(query).first()
    if a is None:
        # The same answer whether the assignment does not exist or is someone else's.
        raise QueueError(f"no assignment {assignment_id} of yours in this campaign", status=404)
    return a


def _locked_item(session: Session, ci_id: int) -> CampaignItem:
    query = select(CampaignItem).where(CampaignItem.id == ci_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    ci = session.scalars(query).first()
    assert ci is not None
    return ci


@dataclass(frozen=True)
class Submitted:
    label: Label
    created: bool
    """False when the same label had already been taken (a retried request)."""
    qualification: Qualification | None = None


def _resolve(session: Session, campaign: Campaign, ci: CampaignItem, now: dt.datetime) -> None:
    """Close an item that has all its labels: agreed, gold, or to adjudication."""
    if ci.role == "gold":
        ci.status, ci.final, ci.resolved_at = "complete", dict(ci.gold or {}), now
        return
    schema = schema_of(campaign)
    rows = session.execute(
        select(User.name, Label.behavior, Label.violation, Label.category, Label.rule_ids)
        .join(User, User.id == Label.annotator_id)
        .where(Label.campaign_item_id == ci.id)
    ).all()
    views = [LabelView(r[0], r[1], r[2], r[3], list(r[4] or [])) for r in rows]
    rule: Rule = "majority" if campaign.agreement == "majority" else "unanimous"
    result = consensus(schema, views, rule=rule)
    if result.agreed:
        ci.status, ci.final, ci.resolved_at = "complete", result.final, now
    else:
        ci.status = "adjudication"


def _score_qualification(
    session: Session, campaign: Campaign, user: User, now: dt.datetime
) -> Qualification:
    q = _qualification(session, campaign, user)
    schema = schema_of(campaign)
    rows = session.execute(
        select(CampaignItem.id, CampaignItem.gold, Label.behavior, Label.violation)
        .join(Label, Label.campaign_item_id == CampaignItem.id)
        .where(
            CampaignItem.campaign_id == campaign.id,
            CampaignItem.role == "qualification",
            Label.annotator_id == user.id,
        )
    ).all()
    q.n = len(rows)
    if q.n < campaign.qualification_n:
        return q
    frame = pd.DataFrame(
        {
            "item": [r[0] for r in rows],
            "rater": user.name,
            "value": [schema.decision_key(r[2], r[3]) for r in rows],
        }
    )
    gold = {r[0]: schema.decision_key(r[1]["behavior"], r[1].get("violation")) for r in rows}
    acc = annotator_accuracy(frame, gold, source="qualification").iloc[0]
    q.correct, q.score = int(acc["k"]), float(acc["accuracy"])
    q.status = "passed" if q.score >= campaign.qualification_threshold else "failed"
    q.finished_at = now
    return q


def submit_label(
    session: Session,
    campaign: Campaign,
    user: User,
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
    schema_of(campaign).validate_label(label)
    a = _own_assignment(session, campaign, user, assignment_id)
    if a.status == "submitted":
        stored = session.scalars(select(Label).where(Label.assignment_id == a.id)).one()
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
    if a.status == "skipped":
        raise QueueError("you skipped this item", status=409)
    if campaign.status == "closed":
        raise QueueError(f"campaign {campaign.name} is closed", status=409)
    ci = _locked_item(session, a.campaign_item_id)
    if ci.role in QUEUE_ROLES:
        if a.status == "expired" and (ci.status != "open" or ci.n_labels + ci.n_reserved >= ci.k):
            raise QueueError(
                "your reservation expired and the item went to someone else",
                status=409,
                hint="fetch the next item",
            )
        if a.status == "reserved":
            ci.n_reserved -= 1
        ci.n_labels += 1
    a.status, a.finished_at = "submitted", now
    stored = Label(
        assignment_id=a.id,
        campaign_id=campaign.id,
        campaign_item_id=ci.id,
        item_id=ci.item_id,
        annotator_id=user.id,
        behavior=label.behavior.value if label.behavior else None,
        violation=label.violation,
        category=label.category,
        rule_ids=list(label.rule_ids),
        rationale=(label.rationale or "").strip() or None,
        confidence=label.confidence,
        duration_ms=label.duration_ms,
        created_at=now,
    )
    session.add(stored)
    session.flush()
    qualification = None
    if ci.role == "qualification":
        qualification = _score_qualification(session, campaign, user, now)
    elif ci.n_labels >= ci.k and ci.status == "open":
        _resolve(session, campaign, ci, now)
    return Submitted(stored, created=True, qualification=qualification)


def skip_item(
    session: Session,
    campaign: Campaign,
    user: User,
    assignment_id: int,
    reason: str,
    *,
    now: dt.datetime | None = None,
) -> Assignment:
    """Give an item back with a reason; the annotator will not get it again. After k skips of
    a work item it goes to adjudication, where the reasons are shown."""
    now = now or now_utc()
    reason = reason.strip()
    if not reason:
        raise QueueError("say why you skip this item", status=422)
    a = _own_assignment(session, campaign, user, assignment_id)
    if a.status == "skipped":
        return a
    if a.status == "submitted":
        raise QueueError("you have already labelled this item", status=409)
    ci = _locked_item(session, a.campaign_item_id)
    if ci.role == "qualification":
        raise QueueError("qualification items cannot be skipped", status=409)
    if a.status == "reserved":
        ci.n_reserved -= 1
    ci.n_skips += 1
    a.status, a.finished_at, a.skip_reason = "skipped", now, reason[:2000]
    if ci.role == "work" and ci.status == "open" and ci.n_skips >= ci.k and ci.n_labels < ci.k:
        ci.status = "adjudication"
    session.flush()
    return a
