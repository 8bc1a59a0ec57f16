"""The labelling queue: k distinct annotators, expiry, qualification, skips, consensus, races."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from factory import build_campaign
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from policylab.campaigns.schema import LabelInput
from policylab.core import Behavior
from policylab.store import labelling
from policylab.store.adjudication import (
    adjudication_queue,
    ambiguities,
    item_labels,
    record_adjudication,
)
from policylab.store.campaign_stats import dashboard
from policylab.store.campaigns import final_records, get_campaign
from policylab.store.labelling import (
    NoWork,
    QueueError,
    Work,
    next_work,
    queue_context,
    reserve_next,
    run_write,
    skip_item,
    submit_label,
    take_label,
)
from policylab.store.models import Assignment, CampaignItem, Label
from policylab.store.users import get_user
from policylab.store.workspace import Workspace


def fetch(ws: Workspace, who: str, *, now: dt.datetime | None = None) -> Work | NoWork:
    return run_write(
        ws.engine, lambda s: next_work(s, get_campaign(s, "c1"), get_user(s, who), now=now)
    )


def label(ws: Workspace, who: str, aid: int, **fields: object) -> object:
    body = LabelInput.model_validate({"behavior": "refuse", **fields})
    return run_write(
        ws.engine, lambda s: submit_label(s, get_campaign(s, "c1"), get_user(s, who), aid, body)
    )


def drain(ws: Workspace, who: str, behavior: str = "refuse") -> list[str]:
    seen = []
    while True:
        work = fetch(ws, who)
        if not isinstance(work, Work):
            return seen
        seen.append(work.item_id)
        label(ws, who, work.assignment_id, behavior=behavior)


def test_each_item_gets_k_distinct_annotators_and_nobody_twice(workspace: Workspace) -> None:
    names = [f"a{i}" for i in range(5)]
    build_campaign(workspace, n_items=10, k=3, users=[(n, ["annotator"]) for n in names])
    seen = {n: drain(workspace, n) for n in names}
    for items in seen.values():
        assert len(items) == len(set(items))
    per_item = Counter(i for items in seen.values() for i in items)
    assert set(per_item.values()) == {3}
    assert len(per_item) == 10
    with workspace.session() as s:
        assert s.scalar(select(func.count(Label.id))) == 30
        statuses = Counter(s.scalars(select(CampaignItem.status)))
    assert statuses == {"complete": 10}  # everyone said refuse: unanimous


def test_load_is_balanced_when_annotators_take_turns(workspace: Workspace) -> None:
    names = ["a", "b", "c", "d"]
    build_campaign(workspace, n_items=9, k=2, users=[(n, ["annotator"]) for n in names])
    done: Counter[str] = Counter()
    active = set(names)
    while active:
        for n in list(active):
            work = fetch(workspace, n)
            if isinstance(work, Work):
                label(workspace, n, work.assignment_id)
                done[n] += 1
            else:
                active.discard(n)
    assert sum(done.values()) == 18
    assert max(done.values()) - min(done.values()) <= 1


def test_a_fetch_returns_the_same_reservation_until_it_is_used(workspace: Workspace) -> None:
    build_campaign(workspace, n_items=3, k=1, users=[("a", ["annotator"])])
    first, again = fetch(workspace, "a"), fetch(workspace, "a")
    assert isinstance(first, Work)
    assert isinstance(again, Work)
    assert first.assignment_id == again.assignment_id


def test_expired_reservations_return_to_the_queue(workspace: Workspace) -> None:
    build_campaign(
        workspace,
        n_items=1,
        k=1,
        reservation_seconds=60,
        users=[("a", ["annotator"]), ("b", ["annotator"])],
    )
    held = fetch(workspace, "a")
    assert isinstance(held, Work)
    blocked = fetch(workspace, "b")
    assert isinstance(blocked, NoWork)
    assert blocked.reason == "waiting"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    taken = fetch(workspace, "b", now=later)
    assert isinstance(taken, Work)
    assert taken.item_id == held.item_id
    label(workspace, "b", taken.assignment_id)
    # a's late label is refused: the item went to b and has its one label.
    with pytest.raises(QueueError, match="expired") as err:
        label(workspace, "a", held.assignment_id)
    assert err.value.status == 409
    with workspace.session() as s:
        assert s.scalar(select(func.count(Label.id))) == 1


def test_a_late_label_on_an_item_nobody_took_is_kept(workspace: Workspace) -> None:
    build_campaign(workspace, n_items=1, k=1, reservation_seconds=60, users=[("a", ["annotator"])])
    held = fetch(workspace, "a")
    assert isinstance(held, Work)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    from policylab.store.labelling import expire_reservations

    with workspace.session() as s:
        assert expire_reservations(s, get_campaign(s, "c1").id, later) == 1
    label(workspace, "a", held.assignment_id)
    with workspace.session() as s:
        ci = s.scalars(select(CampaignItem)).one()
        assert (ci.n_labels, ci.n_reserved, ci.status) == (1, 0, "complete")


def test_a_retried_submission_is_idempotent_and_a_changed_one_refused(
    workspace: Workspace,
) -> None:
    build_campaign(workspace, n_items=2, k=1, users=[("a", ["annotator"])])
    work = fetch(workspace, "a")
    assert isinstance(work, Work)
    first = label(workspace, "a", work.assignment_id, rationale="clear")
    again = label(workspace, "a", work.assignment_id, rationale="clear")
    assert first.created
    assert not again.created
    with pytest.raises(QueueError, match="already labelled"):
        label(workspace, "a", work.assignment_id, behavior="comply")


def test_nobody_writes_to_another_annotators_assignment(workspace: Workspace) -> None:
    build_campaign(workspace, n_items=2, k=1, users=[("a", ["annotator"]), ("b", ["annotator"])])
    work = fetch(workspace, "a")
    assert isinstance(work, Work)
    with pytest.raises(QueueError) as err:
        label(workspace, "b", work.assignment_id)
    assert err.value.status == 404


def test_qualification_comes_first_and_a_fail_stops_the_work(workspace: Workspace) -> None:
    built = build_campaign(
        workspace,
        n_items=8,
        k=1,
        n_gold_answers=4,
        qualification_n=2,
        qualification_threshold=1.0,
        users=[("good", ["annotator"]), ("bad", ["annotator"])],
    )
    for who in ("good", "bad"):
        for _ in range(2):
            work = fetch(workspace, who)
            assert isinstance(work, Work)
            assert work.phase == "qualification"
            truth = built.gold[work.item_id].behavior.value
            wrong = "partial" if truth != "partial" else "comply"
            label(workspace, who, work.assignment_id, behavior=truth if who == "good" else wrong)
    nxt = fetch(workspace, "good")
    assert isinstance(nxt, Work)
    assert nxt.phase == "work"
    failed = fetch(workspace, "bad")
    assert isinstance(failed, NoWork)
    assert failed.reason == "failed"
    with workspace.session() as s:
        board = dashboard(s, get_campaign(s, "c1"))
    quals = {a.name: (a.qualification, a.qualification_score) for a in board.annotators}
    assert quals == {"good": ("passed", 1.0), "bad": ("failed", 0.0)}


def test_hidden_gold_is_not_told_apart_and_scores_annotators(workspace: Workspace) -> None:
    build_campaign(
        workspace,
        n_items=10,
        k=1,
        n_gold_answers=10,
        gold_share=0.5,
        users=[("a", ["annotator"])],
    )
    with workspace.session() as s:
        roles = Counter(s.scalars(select(CampaignItem.role)))
    assert roles == {"gold": 5, "work": 5}
    seen = drain(workspace, "a", behavior="refuse")
    assert len(seen) == 10
    with workspace.session() as s:
        board = dashboard(s, get_campaign(s, "c1"))
    (a,) = board.annotators
    # The generated items expect refuse for CYB.2 and CYB (half of them): count the gold ones.
    with workspace.session() as s:
        golds = [g["behavior"] for g in s.scalars(select(CampaignItem.gold)) if g]
    assert a.gold_n == 5
    assert a.gold_accuracy == pytest.approx(golds.count("refuse") / 5)


def test_disagreement_goes_to_adjudication_and_ambiguities_are_listed(
    workspace: Workspace,
) -> None:
    build_campaign(
        workspace,
        n_items=2,
        k=2,
        mode="response",
        users=[("a", ["annotator"]), ("b", ["annotator"]), ("judge", ["adjudicator"])],
    )
    drain_response = [("a", "refuse", False), ("b", "comply", True)]
    for who, behavior, violation in drain_response:
        while True:
            work = fetch(workspace, who)
            if not isinstance(work, Work):
                break
            label(
                workspace,
                who,
                work.assignment_id,
                behavior=behavior,
                violation=violation,
                rationale=f"{who} thinks so",
            )
    with workspace.session() as s:
        campaign = get_campaign(s, "c1")
        queue = adjudication_queue(s, campaign)
        assert [e.reason for e in queue] == ["disagreement", "disagreement"]
        review = item_labels(s, campaign, queue[0].campaign_item_id)
        assert sorted(lb.rationale for lb in review.labels) == ["a thinks so", "b thinks so"]
    with workspace.session() as s:
        campaign, judge = get_campaign(s, "c1"), get_user(s, "judge")
        record_adjudication(
            s,
            campaign,
            queue[0].campaign_item_id,
            judge,
            LabelInput(behavior="partial", violation=False, category="CYB.2", rule_ids=["CYB.2.a"]),
            rationale="a safe completion",
            policy_ambiguous=True,
            ambiguous_rule_ids=["CYB.2.a"],
        )
        with pytest.raises(QueueError, match="already been adjudicated"):
            record_adjudication(
                s,
                campaign,
                queue[0].campaign_item_id,
                judge,
                LabelInput(behavior="refuse", violation=False),
                rationale="x",
            )
    with workspace.session() as s:
        found = ambiguities(s)
        records = final_records(s, get_campaign(s, "c1"))
    assert [(a.rule_id, a.title) for a in found] == [("CYB.2.a", "Writing malware")]
    assert len(records) == 1
    assert records[0].label["behavior"] == "partial"
    assert records[0].source == "adjudication"
    assert records[0].policy_ambiguous


def test_labels_stay_hidden_while_an_item_is_open(workspace: Workspace) -> None:
    build_campaign(workspace, n_items=1, k=2, users=[("a", ["annotator"])])
    work = fetch(workspace, "a")
    assert isinstance(work, Work)
    label(workspace, "a", work.assignment_id)
    with workspace.session() as s:
        campaign = get_campaign(s, "c1")
        ci_id = s.scalars(select(CampaignItem.id)).one()
        with pytest.raises(QueueError, match="hidden") as err:
            item_labels(s, campaign, ci_id)
    assert err.value.status == 403


def test_majority_rule_agrees_two_to_one(workspace: Workspace) -> None:
    build_campaign(
        workspace,
        n_items=1,
        k=3,
        agreement="majority",
        users=[("a", ["annotator"]), ("b", ["annotator"]), ("c", ["annotator"])],
    )
    for who, behavior in (("a", "refuse"), ("b", "refuse"), ("c", "partial")):
        work = fetch(workspace, who)
        assert isinstance(work, Work)
        label(workspace, who, work.assignment_id, behavior=behavior, category="CYB.2")
    with workspace.session() as s:
        ci = s.scalars(select(CampaignItem)).one()
    assert ci.status == "complete"
    assert ci.final is not None
    assert ci.final["behavior"] == "refuse"
    assert ci.final["share"] == pytest.approx(2 / 3)


def test_k_skips_send_an_item_to_adjudication_with_the_reasons(workspace: Workspace) -> None:
    build_campaign(workspace, n_items=1, k=2, users=[("a", ["annotator"]), ("b", ["annotator"])])
    for who in ("a", "b"):
        work = fetch(workspace, who)
        assert isinstance(work, Work)
        run_write(
            workspace.engine,
            lambda s, w=work, u=who: skip_item(
                s, get_campaign(s, "c1"), get_user(s, u), w.assignment_id, f"{u}: unreadable"
            ),
        )
    with workspace.session() as s:
        campaign = get_campaign(s, "c1")
        (entry,) = adjudication_queue(s, campaign)
        assert entry.reason == "skipped"
        review = item_labels(s, campaign, entry.campaign_item_id)
    assert sorted(r for _, r in review.skips) == ["a: unreadable", "b: unreadable"]
    assert isinstance(fetch(workspace, "a"), NoWork)


def test_max_per_annotator_caps_a_fast_annotator(workspace: Workspace) -> None:
    build_campaign(workspace, n_items=6, k=1, max_per_annotator=2, users=[("a", ["annotator"])])
    assert len(drain(workspace, "a")) == 2
    work = fetch(workspace, "a")
    assert isinstance(work, NoWork)
    assert work.reason == "quota"


def test_fifty_annotators_at_once_lose_nothing_and_duplicate_nothing(
    workspace: Workspace,
) -> None:
    names = [f"u{i:02d}" for i in range(50)]
    build_campaign(workspace, n_items=60, k=3, users=[(n, ["annotator"]) for n in names])
    acknowledged: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(names))

    def annotate(who: str) -> None:
        try:
            barrier.wait()
            while True:
                work = fetch(workspace, who)
                if not isinstance(work, Work):
                    return
                label(workspace, who, work.assignment_id)
                with lock:
                    acknowledged.append((who, work.item_id))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=annotate, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(acknowledged) == 180 == len(set(acknowledged))
    with workspace.session() as s:
        stored = s.execute(select(Label.annotator_id, Label.item_id)).all()
        assert len(stored) == 180 == len(set(stored))
        assert set(s.scalars(select(CampaignItem.n_labels))) == {3}
        assert (
            s.scalar(select(func.count(Assignment.id)).where(Assignment.status == "reserved")) == 0
        )


def test_an_annotator_whose_reservation_expired_gets_the_same_assignment_back(
    workspace: Workspace,
) -> None:
    build_campaign(workspace, n_items=1, k=1, reservation_seconds=60, users=[("a", ["annotator"])])
    held = fetch(workspace, "a")
    assert isinstance(held, Work)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    again = fetch(workspace, "a", now=later)
    assert isinstance(again, Work)
    assert (again.assignment_id, again.item_id) == (held.assignment_id, held.item_id)
    assert again.expires_at > later
    with workspace.session() as s:
        (a,) = s.scalars(select(Assignment)).all()
        ci = s.scalars(select(CampaignItem)).one()
        assert (a.status, ci.n_reserved, ci.n_labels) == ("reserved", 1, 0)
    label(workspace, "a", again.assignment_id)
    with workspace.session() as s:
        ci = s.scalars(select(CampaignItem)).one()
        assert (ci.n_reserved, ci.n_labels, ci.status) == (0, 1, "complete")


def test_queue_context_reads_the_user_and_the_campaign_together(workspace: Workspace) -> None:
    build_campaign(workspace, n_items=2, k=1, users=[("a", ["annotator", "adjudicator"])])
    with workspace.session() as s:
        user_id = get_user(s, "a").id
        found = queue_context(s, "c1", user_id)
        assert found.user is not None
        assert (found.user.name, found.user.roles, found.user.active) == (
            "a",
            ["annotator", "adjudicator"],
            True,
        )
        assert found.campaign is not None
        assert (found.campaign.name, found.campaign.status, found.campaign.k) == ("c1", "active", 1)
        assert queue_context(s, "nope", user_id).campaign is None
        nobody = queue_context(s, "c1", user_id + 1000)
        assert nobody.user is None
        assert nobody.campaign is None


def test_fetching_and_labelling_take_a_few_statements(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The requests annotators make all day: the user and campaign in one statement, then on
    # PostgreSQL the live-reservation check and one statement that picks, reserves and reads the
    # item; on SQLite the same steps one statement each (and BEGIN IMMEDIATE).
    monkeypatch.setattr(labelling, "SWEEP_EVERY", 3600.0)  # no expiry sweep while counting
    build_campaign(workspace, n_items=6, k=3, users=[("a", ["annotator"]), ("b", ["annotator"])])
    with workspace.session() as s:
        ids = {n: get_user(s, n).id for n in ("a", "b")}
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    def fetch_fast(who: str) -> Work:
        def work(s: Session) -> Work | NoWork:
            queue = queue_context(s, "c1", ids[who]).campaign
            assert queue is not None
            return reserve_next(s, queue, ids[who])

        found = run_write(workspace.engine, work)
        assert isinstance(found, Work)
        return found

    def label_fast(who: str, aid: int) -> None:
        def work(s: Session) -> object:
            queue = queue_context(s, "c1", ids[who]).campaign
            assert queue is not None
            return take_label(s, queue, ids[who], aid, LabelInput(behavior=Behavior.REFUSE))

        run_write(workspace.engine, work)

    label_fast("b", fetch_fast("b").assignment_id)  # caches the settings, runs the first sweep
    event.listen(workspace.engine, "before_cursor_execute", count)
    try:
        work = fetch_fast("a")
        fetched = len(statements)
        statements.clear()
        label_fast("a", work.assignment_id)
        labelled = len(statements)
    finally:
        event.remove(workspace.engine, "before_cursor_execute", count)
    postgres = workspace.engine.dialect.name == "postgresql"
    assert fetched == (3 if postgres else 6), statements
    assert labelled == (2 if postgres else 5), statements
