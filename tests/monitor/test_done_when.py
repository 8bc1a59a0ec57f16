"""Issue 6, done when: a new user ingests a month of logs, sees a drift alert on the category whose
rate was made to move, opens the cluster no category covers, turns it into a draft category, and
sees which stored verdicts that draft would flip. Every step goes through the CLI."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from policylab.cli import app
from policylab.monitor.impact import policy_impact
from policylab.policy.loader import load_policy
from policylab.store import monitor as store
from policylab.store.models import MonitorConversation
from policylab.store.workspace import Workspace

from .synthetic_logs import SHIFT_DAY, START, month_of_logs

pytestmark = pytest.mark.slow


@pytest.fixture
def policy(example_pack: Path) -> Path:
    """The Acme example pack, whose root file has a `monitoring:` section (the README tour's)."""
    assert "\nmonitoring:\n" in example_pack.read_text(encoding="utf-8")
    return example_pack


def _ok(result: object) -> str:
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    return str(result.output)  # type: ignore[attr-defined]


def test_a_month_of_logs_end_to_end(tmp_path: Path, policy: Path) -> None:
    runner = CliRunner()
    ws_dir = tmp_path / ".policylab"
    ws = Workspace.init(ws_dir)
    logs = tmp_path / "march.jsonl"
    counts = month_of_logs(logs)
    w = ["--workspace", str(ws_dir)]

    # 1. Ingest: PII redacted before it is stored, and counted.
    out = _ok(runner.invoke(app, ["monitor", "ingest", str(logs), "--source", "prod", *w]))
    total = sum(v for k, v in counts.items() if k != "pii_rows")
    assert f"Ingested {total:,} conversations" in out
    assert f"email {counts['pii_rows']:,}" in out
    assert f"phone {counts['pii_rows']:,}" in out
    with ws.session() as session:
        stored = session.scalars(select(MonitorConversation.messages)).all()
        users = session.scalars(select(MonitorConversation.user_hash)).all()
    assert not any("@example.com" in str(m) or "555-010-" in str(m) for m in stored)
    assert sum("[EMAIL]" in str(m) for m in stored) == counts["pii_rows"]
    assert all(u is not None and not u.startswith("user-") for u in users)
    # Ingesting the same file again stores nothing new.
    again = _ok(runner.invoke(app, ["monitor", "ingest", str(logs), "--source", "prod", *w]))
    assert "Ingested 0 conversations" in again
    assert f"{total:,} already stored" in again

    # 2. Grade (in this process; the Ray path is tested on its own).
    out = _ok(
        runner.invoke(
            app,
            [
                "monitor",
                "grade",
                "--grader",
                "rules",
                "--policy",
                str(policy),
                "--no-ray",
                "--name",
                "march",
                *w,
            ],
        )
    )
    assert f"Graded {total:,} conversations" in out

    # 3. Drift: the malware category's rate moved in the last week.
    out = _ok(runner.invoke(app, ["monitor", "drift", *w]))
    since = (START.date() + dt.timedelta(days=SHIFT_DAY)).isoformat()
    chart = re.search(r"ACTIVE control chart: CYB\.2 since (\S+)", out)
    assert chart is not None, out
    assert chart.group(1) == since
    # The rate alert waits for the 95% lower bound to clear its max: a day or two later at most.
    rate = re.search(r"ACTIVE rate: CYB share since (\S+)", out)
    assert rate is not None, out
    lag = dt.date.fromisoformat(rate.group(1)) - dt.date.fromisoformat(since)
    assert dt.timedelta(0) <= lag <= dt.timedelta(days=2)
    assert "ACTIVE category drift: categories" in out
    assert "e.g. #" in out  # example conversations are shown
    assert "control chart: SH" not in out
    assert "control chart: ADV" not in out

    # 4. Taxonomy discovery: the betting conversations form a cluster no category covers.
    out = _ok(
        runner.invoke(app, ["monitor", "clusters", "--min-size", "15", "--min-users", "5", *w])
    )
    with ws.session() as session:
        clusters = store.list_clusters(session, kind="discovery")
    betting = [c for c in clusters if {"bet", "bets", "betting", "casino", "odds"} & set(c.terms)]
    assert betting, [c.terms for c in clusters]
    cluster = betting[0]
    assert cluster.size >= 0.8 * counts["betting"] / max(1, len(betting))
    assert cluster.users is not None
    assert cluster.users >= 5

    # 5. Propose it as a category: a draft policy, shown as a policy diff.
    draft = tmp_path / "draft.yaml"
    out = _ok(
        runner.invoke(
            app,
            [
                "monitor",
                "propose",
                str(cluster.id),
                "--policy",
                str(policy),
                "-o",
                str(draft),
                "--id",
                "GAMBLING",
                "--expected",
                "refuse",
                *w,
            ],
        )
    )
    assert "+ category GAMBLING" in out
    assert "1.1.0-draft" in out
    loaded = load_policy(draft).policy
    assert loaded.category("GAMBLING") is not None
    proposed = loaded.examples_for("GAMBLING")
    assert proposed
    assert all("@example.com" not in (e.prompt or "") for e in proposed)

    # 6. Impact: the stored verdicts on betting conversations flip to violations under the draft.
    out = _ok(runner.invoke(app, ["policy", "impact", "--run", "march", "--draft", str(draft), *w]))
    assert re.search(r"GAMBLING\s+│\s+\d+", out), out
    base = load_policy(policy).policy
    with ws.session() as session:
        grading = store.get_grading(session, "march")
        subjects = store.impact_subjects_for_grading(session, grading)
    report = policy_impact(subjects, base=base, draft=loaded, grader="rules")
    gambling = [f for f in report.flips if f.after.category == "GAMBLING"]
    assert len(gambling) >= 0.8 * counts["betting"]
    assert all(f.direction == "to violation" for f in gambling)
    assert all(f.before.violation is None and f.after.violation is True for f in gambling)
    # Nothing else moves much: the draft only adds a category.
    assert len(report.flips) - len(gambling) <= 0.05 * total
