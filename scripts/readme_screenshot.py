"""Take the README's screenshot of the demo's report (docs/images/demo-report.png).

    .venv/bin/policylab demo && .venv/bin/python scripts/readme_screenshot.py [out/demo-report.html]

Debian's chromium through Playwright, headless, 1280 × 1600 px: the top of the report (the summary,
the gates and the largest risks).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    report = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "out" / "demo-report.html")
    if not report.is_file():
        raise SystemExit(f"{report}: no report; run `policylab demo` first")
    target = ROOT / "docs" / "images" / "demo-report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.goto(report.resolve().as_uri())
        page.screenshot(path=str(target))
        browser.close()
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
