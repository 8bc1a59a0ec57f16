"""The HTML labelling guide of the example pack opens in Debian's chromium, with its table of contents
and a working link to a rule's anchor (the anchor the labelling page links to)."""

from __future__ import annotations

from pathlib import Path

import pytest

from policylab.policy.compile import compile_guide
from policylab.policy.loader import load_policy

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_guide_opens_in_chromium(example_pack: Path, tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    policy = load_policy(example_pack).policy
    guide = tmp_path / "guide.html"
    guide.write_text(compile_guide(policy, fmt="html"), encoding="utf-8")
    rule = policy.rules[0].id
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(guide.as_uri())
        assert policy.title in page.title()
        page.goto(f"{guide.as_uri()}#rule-{rule}")
        target = page.locator(f'[id="rule-{rule}"]')
        assert target.count() == 1
        assert target.is_visible()
        assert page.locator("a[href^='#cat-']").count() >= len(
            [c for c in policy.categories if c.parent_id is None]
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "labelling-guide.png"))
        browser.close()
    assert errors == []
