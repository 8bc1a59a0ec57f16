"""Security rules, each tested through the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from factory import PASSWORD, build_campaign
from fastapi.testclient import TestClient

from policylab.store.workspace import Workspace
from policylab.web.app import create_app

USERS = [
    ("ann", ["annotator"]),
    ("bob", ["annotator"]),
    ("judge", ["adjudicator"]),
    ("author", ["policy_author"]),
    ("root", ["admin"]),
]


@pytest.fixture
def app_client(workspace: Workspace) -> Iterator[TestClient]:
    build_campaign(workspace, n_items=4, k=2, users=USERS)
    with TestClient(create_app(workspace, secret="s" * 40)) as client:
        yield client


def sign_in(client: TestClient, name: str) -> dict[str, str]:
    client.cookies.clear()
    token = client.get("/api/csrf").json()["csrf_token"]
    headers = {"X-CSRF-Token": token}
    r = client.post("/api/session", json={"name": name, "password": PASSWORD}, headers=headers)
    assert r.status_code == 200, r.text
    return headers


def test_wrong_password_and_unknown_user_get_the_same_answer(app_client: TestClient) -> None:
    token = app_client.get("/api/csrf").json()["csrf_token"]
    h = {"X-CSRF-Token": token}
    wrong = app_client.post(
        "/api/session", json={"name": "ann", "password": "nope nope"}, headers=h
    )
    nobody = app_client.post(
        "/api/session", json={"name": "zed", "password": "nope nope"}, headers=h
    )
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json() == nobody.json() == {"detail": "wrong name or password"}
    assert "policylab_session" not in wrong.cookies
    page = app_client.post("/login", data={"name": "zed", "password": "x" * 9, "csrf_token": token})
    assert page.status_code == 401
    assert "Wrong name or password." in page.text


def test_session_cookie_is_httponly_and_samesite(app_client: TestClient) -> None:
    token = app_client.get("/api/csrf").json()["csrf_token"]
    r = app_client.post(
        "/api/session", json={"name": "ann", "password": PASSWORD}, headers={"X-CSRF-Token": token}
    )
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie
    https = TestClient(app_client.app, base_url="https://testserver")
    token = https.get("/api/csrf").json()["csrf_token"]
    r = https.post(
        "/api/session", json={"name": "ann", "password": PASSWORD}, headers={"X-CSRF-Token": token}
    )
    assert "secure" in r.headers["set-cookie"].lower()


def test_state_changes_without_the_csrf_token_are_refused(app_client: TestClient) -> None:
    headers = sign_in(app_client, "ann")
    assert app_client.post("/api/campaigns/c1/next").status_code == 403
    forged = {"X-CSRF-Token": headers["X-CSRF-Token"] + "x"}
    assert app_client.post("/api/campaigns/c1/next", headers=forged).status_code == 403
    assert (
        app_client.post("/api/session", json={"name": "ann", "password": PASSWORD}).status_code
        == 403
    )
    assert app_client.post("/logout").status_code == 403
    assert app_client.post("/api/campaigns/c1/next", headers=headers).status_code == 200


def test_an_annotator_reads_and_writes_only_their_own_assignments(app_client: TestClient) -> None:
    ann = sign_in(app_client, "ann")
    work = app_client.post("/api/campaigns/c1/next", headers=ann).json()
    bob = sign_in(app_client, "bob")
    body = {"behavior": "refuse"}
    r = app_client.post(
        f"/api/campaigns/c1/assignments/{work['assignment_id']}/label", json=body, headers=bob
    )
    assert r.status_code == 404
    r = app_client.post(
        f"/api/campaigns/c1/assignments/{work['assignment_id']}/skip",
        json={"reason": "x"},
        headers=bob,
    )
    assert r.status_code == 404
    ann = sign_in(app_client, "ann")
    r = app_client.post(
        f"/api/campaigns/c1/assignments/{work['assignment_id']}/label", json=body, headers=ann
    )
    assert r.status_code == 201


def test_blind_labelling_holds_in_the_api(app_client: TestClient) -> None:
    ann = sign_in(app_client, "ann")
    work = app_client.post("/api/campaigns/c1/next", headers=ann).json()
    app_client.post(
        f"/api/campaigns/c1/assignments/{work['assignment_id']}/label",
        json={"behavior": "refuse", "rationale": "ann's secret reason"},
        headers=ann,
    )
    bob = sign_in(app_client, "bob")
    seen = app_client.post("/api/campaigns/c1/next", headers=bob).json()
    assert seen["item_id"] == work["item_id"]
    leaks = [app_client.post("/api/campaigns/c1/next", headers=bob)]
    for path in [
        "/api/campaigns",
        "/api/campaigns/c1/schema",
        "/api/me",
        "/api/campaigns/c1/stats",
        "/api/campaigns/c1/adjudication",
        "/api/campaigns/c1/ambiguities",
        "/api/openapi.json",
    ]:
        leaks.append(app_client.get(path))
    for ci in range(1, 6):
        leaks.append(app_client.get(f"/api/campaigns/c1/items/{ci}/labels"))
    for r in leaks:
        assert "ann's secret reason" not in r.text
        assert '"annotator": "ann"' not in r.text
    # Even an adjudicator cannot read labels of an item still being labelled.
    judge = sign_in(app_client, "judge")
    del judge
    items = [app_client.get(f"/api/campaigns/c1/items/{ci}/labels") for ci in range(1, 5)]
    assert {r.status_code for r in items} == {403}
    # Once bob disagrees, the item goes to adjudication and the judge sees both rationales.
    bob = sign_in(app_client, "bob")
    app_client.post(
        f"/api/campaigns/c1/assignments/{seen['assignment_id']}/label",
        json={"behavior": "comply"},
        headers=bob,
    )
    judge_headers = sign_in(app_client, "judge")
    queue = app_client.get("/api/campaigns/c1/adjudication").json()
    assert [e["item_id"] for e in queue] == [work["item_id"]]
    labels = app_client.get(f"/api/campaigns/c1/items/{queue[0]['campaign_item_id']}/labels")
    assert labels.status_code == 200
    assert "ann's secret reason" in labels.text
    r = app_client.post(
        f"/api/campaigns/c1/items/{queue[0]['campaign_item_id']}/adjudication",
        json={
            "label": {"behavior": "refuse"},
            "rationale": "the guide says so",
            "policy_ambiguous": True,
            "ambiguous_rule_ids": ["CYB.2.a"],
        },
        headers=judge_headers,
    )
    assert r.status_code == 201, r.text


def test_roles_guard_every_route(app_client: TestClient) -> None:
    ann = sign_in(app_client, "ann")
    assert app_client.get("/api/users").status_code == 403
    assert (
        app_client.post(
            "/api/users",
            json={"name": "eve", "password": "p" * 10, "roles": ["admin"]},
            headers=ann,
        ).status_code
        == 403
    )
    assert (
        app_client.patch("/api/users/ann", json={"roles": ["admin"]}, headers=ann).status_code
        == 403
    )
    assert (
        app_client.post(
            "/api/campaigns/c1/status", json={"status": "closed"}, headers=ann
        ).status_code
        == 403
    )
    assert app_client.get("/api/campaigns/c1/stats").status_code == 403
    assert app_client.get("/api/campaigns/c1/adjudication").status_code == 403
    assert app_client.get("/admin/users").status_code == 403
    judge = sign_in(app_client, "judge")
    assert app_client.post("/api/campaigns/c1/next", headers=judge).status_code == 403
    assert app_client.get("/api/users").status_code == 403
    author = sign_in(app_client, "author")
    del author
    assert app_client.get("/api/campaigns/c1/stats").status_code == 200
    assert app_client.get("/api/campaigns/c1/adjudication").status_code == 403
    root = sign_in(app_client, "root")
    assert app_client.get("/api/users").status_code == 200
    r = app_client.post(
        "/api/users",
        json={"name": "eve", "password": "p" * 10, "roles": ["annotator"]},
        headers=root,
    )
    assert r.status_code == 201
    r = app_client.patch("/api/users/ann", json={"active": False}, headers=root)
    assert r.json()["active"] is False
    app_client.cookies.clear()
    assert app_client.get("/api/me").status_code == 401


def test_a_role_change_signs_the_user_out(app_client: TestClient) -> None:
    sign_in(app_client, "ann")
    ann_cookie = app_client.cookies.get("policylab_session")
    root = sign_in(app_client, "root")
    app_client.patch("/api/users/ann", json={"roles": ["annotator", "adjudicator"]}, headers=root)
    app_client.cookies.clear()
    app_client.cookies.set("policylab_session", ann_cookie or "")
    assert app_client.get("/api/me").status_code == 401


def test_pages_send_security_headers_and_redirect_strangers(app_client: TestClient) -> None:
    r = app_client.get("/campaigns/c1/label", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")
    page = app_client.get("/login")
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "https://" not in page.text  # nothing loaded from elsewhere: works offline
    assert app_client.get("/static/htmx.min.js").text.startswith("/*! htmx 2")


def test_the_labelling_routes_check_the_user_in_their_own_transaction(
    app_client: TestClient,
) -> None:
    # They read the user's row with the campaign instead of in a session of their own: a role
    # change, a lost role and a deactivation must still take effect on the next request.
    ann = sign_in(app_client, "ann")
    work = app_client.post("/api/campaigns/c1/next", headers=ann).json()
    old_cookie = app_client.cookies.get("policylab_session") or ""
    root = sign_in(app_client, "root")
    app_client.patch("/api/users/ann", json={"roles": ["annotator", "adjudicator"]}, headers=root)
    app_client.cookies.clear()
    app_client.cookies.set("policylab_session", old_cookie)
    app_client.cookies.set("policylab_csrf", ann["X-CSRF-Token"])
    assert app_client.post("/api/campaigns/c1/next", headers=ann).status_code == 401
    label = f"/api/campaigns/c1/assignments/{work['assignment_id']}/label"
    assert app_client.post(label, json={"behavior": "refuse"}, headers=ann).status_code == 401

    root = sign_in(app_client, "root")
    app_client.patch("/api/users/ann", json={"roles": ["adjudicator"]}, headers=root)
    ann = sign_in(app_client, "ann")
    r = app_client.post("/api/campaigns/c1/next", headers=ann)
    assert r.status_code == 403
    assert r.json() == {"detail": "this needs the annotator role"}

    root = sign_in(app_client, "root")
    app_client.patch("/api/users/ann", json={"roles": ["annotator"]}, headers=root)
    ann = sign_in(app_client, "ann")
    assert app_client.post(label, json={"behavior": "refuse"}, headers=ann).status_code == 201
    assert app_client.post("/api/campaigns/nope/next", headers=ann).status_code == 404
    ann_cookie = app_client.cookies.get("policylab_session") or ""
    root = sign_in(app_client, "root")
    app_client.patch("/api/users/ann", json={"active": False}, headers=root)
    app_client.cookies.clear()
    app_client.cookies.set("policylab_session", ann_cookie)
    app_client.cookies.set("policylab_csrf", ann["X-CSRF-Token"])
    assert app_client.post("/api/campaigns/c1/next", headers=ann).status_code == 401


def test_a_paused_or_closed_campaign_stops_the_queue_at_once(app_client: TestClient) -> None:
    # The queue reads a campaign's settings once per process, but its status on every request.
    ann = sign_in(app_client, "ann")
    work = app_client.post("/api/campaigns/c1/next", headers=ann).json()
    assert "assignment_id" in work
    root = sign_in(app_client, "root")
    r = app_client.post("/api/campaigns/c1/status", json={"status": "paused"}, headers=root)
    assert r.json() == {"status": "paused"}
    ann = sign_in(app_client, "ann")
    assert app_client.post("/api/campaigns/c1/next", headers=ann).json()["reason"] == "paused"
    root = sign_in(app_client, "root")
    app_client.post("/api/campaigns/c1/status", json={"status": "closed"}, headers=root)
    ann = sign_in(app_client, "ann")
    label = f"/api/campaigns/c1/assignments/{work['assignment_id']}/label"
    r = app_client.post(label, json={"behavior": "refuse"}, headers=ann)
    assert r.status_code == 409
    assert "closed" in r.json()["detail"]
    root = sign_in(app_client, "root")
    app_client.post("/api/campaigns/c1/status", json={"status": "active"}, headers=root)
    ann = sign_in(app_client, "ann")
    assert app_client.post(label, json={"behavior": "refuse"}, headers=ann).status_code == 201


def test_api_answers_carry_the_security_headers_and_are_not_cached(
    app_client: TestClient,
) -> None:
    api = app_client.get("/api/csrf")
    page = app_client.get("/login")
    for r in (api, page):
        assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "SAMEORIGIN"
        assert r.headers["referrer-policy"] == "same-origin"
    assert api.headers["cache-control"] == "no-store"
    assert "no-store" not in page.headers.get("cache-control", "")
    assert app_client.get("/static/htmx.min.js").headers["x-content-type-options"] == "nosniff"
