"""A real server on 127.0.0.1 (uvicorn in a subprocess): 50 annotators at once, and a kill -9."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest
from factory import PASSWORD, build_campaign
from live_server import Server, signed_in
from sqlalchemy import func, select

from policylab.store.models import Assignment, CampaignItem, Label, User
from policylab.store.workspace import Workspace

pytestmark = pytest.mark.slow


def annotate(
    base_url: str,
    who: str,
    acked: list[tuple[str, str]],
    lock: threading.Lock,
    errors: list[BaseException],
    *,
    stop: Callable[[], bool] = lambda: False,
    wait_for_expiry: bool = False,
) -> None:
    """Label until the queue has nothing left for `who`. With `wait_for_expiry`, keep asking
    while the only open items are reserved by others (whose reservations will expire)."""
    try:
        client = signed_in(base_url, who, PASSWORD)
        deadline = time.monotonic() + 60
        while not stop():
            r = client.post("/api/campaigns/c1/next")
            r.raise_for_status()
            work = r.json()
            if wait_for_expiry and work.get("reason") == "waiting":
                assert time.monotonic() < deadline, f"{who} still waiting after 60 s"
                time.sleep(0.5)
                continue
            if "assignment_id" not in work:
                return
            r = client.post(
                f"/api/campaigns/c1/assignments/{work['assignment_id']}/label",
                json={"behavior": "refuse", "rationale": f"{who} on {work['item_id']}"},
            )
            r.raise_for_status()
            with lock:
                acked.append((who, work["item_id"]))
    except httpx.TransportError:
        if not stop():
            raise
    except BaseException as exc:  # reported by the test
        errors.append(exc)


def stored_labels(ws: Workspace) -> set[tuple[str, str]]:
    from policylab.store.models import Item

    with ws.session() as s:
        rows = s.execute(
            select(User.name, Item.external_id)
            .select_from(Label)
            .join(User, User.id == Label.annotator_id)
            .join(Item, Item.id == Label.item_id)
        ).all()
    pairs = [(a, b) for a, b in rows]
    assert len(pairs) == len(set(pairs)), "a duplicate label"
    return set(pairs)


@pytest.mark.parametrize("workers", [1, 2])
def test_fifty_annotators_at_once_lose_no_label_and_make_no_duplicate(
    workspace: Workspace, server_factory: type[Server], workers: int
) -> None:
    # With two server processes, the processes' writers meet only in the database: SQLite's
    # BEGIN IMMEDIATE, PostgreSQL's row locks.
    names = [f"u{i:02d}" for i in range(50)]
    build_campaign(workspace, n_items=50, k=3, users=[(n, ["annotator"]) for n in names])
    server = server_factory(workspace.path, workers=workers).start()
    acked: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    threads = [
        threading.Thread(target=annotate, args=(server.url, n, acked, lock, errors)) for n in names
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert len(acked) == 150 == len(set(acked))
    assert stored_labels(workspace) == set(acked)
    with workspace.session() as s:
        assert set(s.scalars(select(CampaignItem.n_labels))) == {3}
        assert (
            s.scalar(select(func.count(Assignment.id)).where(Assignment.status == "reserved")) == 0
        )


def test_a_killed_server_loses_no_acknowledged_label(
    workspace: Workspace, server_factory: type[Server]
) -> None:
    names = [f"u{i:02d}" for i in range(20)]
    build_campaign(
        workspace,
        n_items=200,
        k=2,
        reservation_seconds=10,
        users=[(n, ["annotator"]) for n in names],
    )
    server = server_factory(workspace.path).start()
    acked: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    killed = threading.Event()
    threads = [
        threading.Thread(
            target=annotate,
            args=(server.url, n, acked, lock, errors),
            kwargs={"stop": killed.is_set},
        )
        for n in names
    ]
    for t in threads:
        t.start()
    while True:  # kill -9 mid-campaign, once some labels are in
        with lock:
            if len(acked) >= 60:
                break
        threading.Event().wait(0.01)
    killed.set()
    server.kill()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert 60 <= len(acked) < 400
    assert set(acked) <= stored_labels(workspace)
    # A new server takes over: the campaign finishes with every label exactly once. The items
    # the killed clients held come back when their 10 s reservations expire.
    again = server_factory(workspace.path).start()
    more: list[tuple[str, str]] = []
    threads = [
        threading.Thread(
            target=annotate,
            args=(again.url, n, more, lock, errors),
            kwargs={"wait_for_expiry": True},
        )
        for n in names[:5]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    final = stored_labels(workspace)
    assert set(acked) <= final
    assert set(more) <= final
    assert len(final) == 400
