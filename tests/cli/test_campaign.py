"""`policylab campaign ...` and `policylab user ...` end to end on a SQLite workspace."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "campaigns"))

from factory import MINI, PASSWORD

from policylab.cli import app
from policylab.data.items import ItemRecord
from policylab.policy.loader import load_policy
from policylab.store.items import get_or_create_eval_set, insert_items
from policylab.store.policies import add_policy_version
from policylab.store.workspace import Workspace

runner = CliRunner()


def run(ws: Path, *args: str, input: str | None = None) -> str:
    result = runner.invoke(app, [*args, "--workspace", str(ws)], input=input)
    assert result.exit_code == 0, result.output
    return result.output


def test_campaign_commands(tmp_path: Path) -> None:
    ws = tmp_path / ".policylab"
    runner.invoke(app, ["init", str(ws)])
    w = Workspace.open(ws)
    with w.session() as s:
        add_policy_version(s, load_policy(MINI))
        es, _ = get_or_create_eval_set(s, "s1")
        insert_items(
            s,
            es.id,
            [
                ItemRecord.from_prompt(
                    f"q{i}", id=f"q{i}", categories=[c], expected_behavior=b, source="authored"
                )
                for i, (c, b) in enumerate([("CYB.1", "comply"), ("CYB.2", "refuse")] * 4)
            ],
        )
    w.close()
    out = run(
        ws, "user", "add", "ann", "--role", "annotator", "--password-stdin", input=PASSWORD + "\n"
    )
    assert "Added ann (annotator)" in out
    run(ws, "user", "add", "root", "-r", "admin", "--password-stdin", input=PASSWORD + "\n")
    assert "ann" in run(ws, "user", "list")
    assert "annotator, adjudicator" in run(
        ws, "user", "role", "ann", "-r", "annotator", "-r", "adjudicator"
    )
    bad = runner.invoke(
        app,
        ["user", "add", "eve", "-r", "wizard", "--password-stdin", "--workspace", str(ws)],
        input=PASSWORD + "\n",
    )
    assert bad.exit_code == 1
    assert "unknown role 'wizard'" in bad.output

    gold_ids = tmp_path / "gold.jsonl"
    out = run(
        ws,
        "campaign",
        "gold",
        "--set",
        "s1",
        "--per-cell",
        "2",
        "--by",
        "category,expected_behavior",
        "--out",
        str(gold_ids),
    )
    assert "Wrote 4 item ids" in out
    out = run(
        ws,
        "campaign",
        "create",
        "c1",
        "--policy",
        "mini",
        "--set",
        "s1",
        "--k",
        "1",
        "--items",
        str(gold_ids),
        "--gold-from-expected",
        "--gold-share",
        "0.5",
        "--qualification",
        "1",
    )
    assert "3 items" in out or "hidden gold" in out
    assert "c1" in run(ws, "campaign", "list")
    status = json.loads(run(ws, "campaign", "status", "c1", "--format", "json"))
    assert status["progress"]["items"] == 3
    assert "0 item(s) waiting" in run(ws, "campaign", "adjudicate", "list", "c1")
    assert "No ambiguity" in run(ws, "campaign", "ambiguities")
    out = run(
        ws,
        "campaign",
        "coverage",
        "--set",
        "s1",
        "--policy",
        "mini",
        "--target",
        "4",
        "--plot",
        str(tmp_path / "cov.png"),
    )
    assert "empty" in out
    assert (tmp_path / "cov.png").read_bytes()[:4] == b"\x89PNG"
    export = tmp_path / "gold-out.jsonl"
    assert "Wrote" in run(ws, "campaign", "export", "c1", "--out", str(export))
    run(
        ws,
        "campaign",
        "export",
        "c1",
        "--format",
        "label-studio",
        "--out",
        str(tmp_path / "ls.json"),
    )
    assert (tmp_path / "ls.xml").exists()
    run(ws, "campaign", "export", "c1", "--format", "argilla", "--out", str(tmp_path / "arg"))
    assert (tmp_path / "arg" / ".argilla" / "settings.json").exists()
    assert "paused" in run(ws, "campaign", "status", "c1", "--set", "paused")
