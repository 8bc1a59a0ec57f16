"""Chromium (Debian's, driven by Playwright): sign in, qualify, label three items with the
keyboard alone, then adjudicate a disagreement as another user."""

from __future__ import annotations

from pathlib import Path

import pytest
from factory import PASSWORD, build_campaign
from live_server import Server, signed_in

from policylab.store.workspace import Workspace

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def test_label_with_the_keyboard_then_adjudicate(
    tmp_path: Path, server_factory: type[Server]
) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    ws = Workspace.init(tmp_path / ".policylab")
    built = build_campaign(
        ws,
        n_items=6,
        k=2,
        mode="response",
        n_gold_answers=2,
        qualification_n=2,
        qualification_threshold=1.0,
        users=[("alice", ["annotator"]), ("bob", ["annotator"]), ("carol", ["adjudicator"])],
    )
    ws.close()
    server = server_factory(tmp_path / ".policylab").start()
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(server.url + "/campaigns/c1/label")
        # The field `autofocus` names: headless chromium does not always apply autofocus, and the
        # keys would go nowhere.
        page.focus("#name")
        page.keyboard.type("alice")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_selector(".work[data-phase=qualification]")
        # Qualification: the known answers, keys only (1/2/3 behaviour, v/n violation).
        for step in range(2):
            work = page.wait_for_selector(".work[data-phase=qualification] >> nth=0")
            assert work is not None
            item = work.get_attribute("data-item") or ""
            gold = built.gold[item]
            page.keyboard.press({"comply": "1", "partial": "2", "refuse": "3"}[gold.behavior.value])
            page.keyboard.press("v" if gold.violation else "n")
            if step == 0:
                page.screenshot(path=str(ARTIFACTS / "labelling-qualification.png"))
            page.keyboard.press("Enter")
            page.wait_for_function(
                "(old) => !document.querySelector(`.work[data-item='${old}']`)", arg=item
            )
        labelled = []
        for step in range(3):
            work = page.wait_for_selector(".work[data-phase=work]")
            assert work is not None
            item = work.get_attribute("data-item") or ""
            page.keyboard.press("3")  # refuse
            page.keyboard.press("v")  # violates
            page.keyboard.press("h")  # high confidence
            page.keyboard.press("t")
            page.keyboard.type("it gives working code")
            page.keyboard.press("Escape")
            if step == 0:
                page.screenshot(path=str(ARTIFACTS / "labelling-page.png"))
            page.keyboard.press("Enter")
            page.wait_for_function(
                "(old) => !document.querySelector(`.work[data-item='${old}']`)", arg=item
            )
            labelled.append(item)
        assert len(set(labelled)) == 3
        # Bob disagrees on alice's items through the API.
        bob = signed_in(server.url, "bob", PASSWORD)
        for _ in range(10):
            work = bob.post("/api/campaigns/c1/next").json()
            if "assignment_id" not in work:
                break
            if work["phase"] == "qualification":
                gold = built.gold[work["item_id"]]
                body = {"behavior": gold.behavior.value, "violation": gold.violation}
            else:
                body = {"behavior": "comply", "violation": False}
            bob.post(f"/api/campaigns/c1/assignments/{work['assignment_id']}/label", json=body)
        # Carol adjudicates one of them, in another browser context.
        carol = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        carol.goto(server.url + "/campaigns/c1/adjudicate")
        carol.fill("#name", "carol")
        carol.fill("#password", PASSWORD)
        carol.keyboard.press("Enter")
        carol.wait_for_selector("text=Adjudication queue")
        carol.click("text=Adjudicate >> nth=0")
        carol.wait_for_selector("#labels")
        assert "it gives working code" in carol.inner_text("#labels")
        carol.keyboard.press("2")
        carol.keyboard.press("n")
        carol.fill("#rationale", "a safe completion: explains, gives no code")
        carol.check("#policy_ambiguous")
        carol.check("input[name=ambiguous_rule_ids][value='CYB.2.a']")
        carol.screenshot(path=str(ARTIFACTS / "adjudication-page.png"))
        carol.click("#submit")
        carol.wait_for_selector("text=Adjudication queue")
        browser.close()
    reviewer = signed_in(server.url, "carol", PASSWORD)
    found = reviewer.get("/api/campaigns/c1/ambiguities").json()
    assert [a["rule_id"] for a in found] == ["CYB.2.a"]
    assert reviewer.get("/api/campaigns/c1/stats").json()["progress"]["adjudicated"] == 1
