from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policylab.cli import app

FIXTURES = Path(__file__).resolve().parents[1] / "policy" / "fixtures"

# Every defect planted in fixtures/broken, as `file:line:col: SEVERITY CODE`.
PLANTED = [
    "broken/policy.yaml:13:5: WARNING C001",
    "broken/policy.yaml:17:5: ERROR H001",
    "broken/policy.yaml:17:5: WARNING H002",
    "broken/policy.yaml:26:25: ERROR M001",
    "broken/policy.yaml:27:25: ERROR M002",
    "broken/policy.yaml:28:5: WARNING C002",
    "broken/policy.yaml:32:5: WARNING H003",
    "broken/policy.yaml:40:5: ERROR D001",
    "broken/policy.yaml:40:5: WARNING H004",
    "broken/policy.yaml:45:5: WARNING C001",
    "broken/policy.yaml:45:5: ERROR D006",
    "broken/policy.yaml:45:5: WARNING H004",
    "broken/policy.yaml:58:9: WARNING V001",
    "broken/policy.yaml:59:5: WARNING C003",
    "broken/policy.yaml:59:5: INFO C004",
    "broken/policy.yaml:59:5: ERROR D002",
    "broken/policy.yaml:66:18: ERROR D005",
    "broken/policy.yaml:72:5: WARNING V001",
    "broken/policy.yaml:73:23: ERROR D007",
    "broken/policy.yaml:75:1: WARNING G002",
    "broken/policy.yaml:75:1: INFO G003",
    "broken/policy.yaml:76:3: WARNING G001",
    "broken/policy.yaml:77:5: WARNING G004",
    "broken/extra.yaml:9:5: ERROR X002",
    "broken/extra.yaml:10:23: ERROR D004",
    "broken/extra.yaml:18:5: ERROR X003",
    "broken/extra.yaml:22:9: WARNING X004",
    "broken/extra.yaml:25:5: ERROR D003",
    "broken/extra.yaml:29:5: ERROR D001",
    "broken/extra.yaml:33:5: INFO X005",
    "broken/extra.yaml:39:5: WARNING X001",
    "broken/extra.yaml:40:16: WARNING D008",
    "broken/extra.yaml:48:5: ERROR X006",
]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(FIXTURES)  # paths print relative to the working directory
    return CliRunner()


def _prefixes(output: str) -> list[str]:
    """`file:line:col: SEVERITY CODE` of each finding line, in output order."""
    out = []
    for line in output.splitlines():
        head = line.split(" ", 3)
        if len(head) >= 3 and head[1] in ("ERROR", "WARNING", "INFO"):
            out.append(" ".join(head[:3]))
    return out


def test_planted_defects_are_each_reported_at_their_line(runner: CliRunner) -> None:
    result = runner.invoke(app, ["policy", "lint", "broken/policy.yaml"])
    assert result.exit_code == 1, result.output
    assert _prefixes(result.stdout) == PLANTED
    assert "broken/policy.yaml:66:18: ERROR D005 precedence names category `MISSING`" in (
        result.stdout
    )
    assert "    hint: did you mean `WEA.a`?" in result.stdout
    assert "14 errors, 16 warnings, 3 info in 2 files" in result.stdout


def test_planted_lines_hold_what_the_findings_name() -> None:
    # A guard on the fixture itself: if someone edits it, the line numbers above must follow.
    lines = (FIXTURES / "broken" / "policy.yaml").read_text(encoding="utf-8").splitlines()
    assert lines[39] == "  - id: WEA"
    assert lines[57].strip() == "- Generally helps with building a weapon, etc."
    assert "MISSING" in lines[65]
    extra = (FIXTURES / "broken" / "extra.yaml").read_text(encoding="utf-8").splitlines()
    assert extra[8].strip() == "violates: false"
    assert extra[28].strip() == "- id: ex-1"


def test_json_format(runner: CliRunner) -> None:
    result = runner.invoke(app, ["policy", "lint", "broken/policy.yaml", "--format", "json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["summary"] == {"error": 14, "warning": 16, "info": 3}
    got = [
        f"{f['file']}:{f['line']}:{f['column']}: {f['severity'].upper()} {f['code']}"
        for f in data["findings"]
    ]
    assert got == PLANTED
    first = data["findings"][0]
    assert set(first) == {"code", "severity", "file", "line", "column", "field", "message", "hint"}


def test_clean_policy_exits_zero(runner: CliRunner) -> None:
    result = runner.invoke(app, ["policy", "lint", "mini/policy.yaml"])
    assert result.exit_code == 0, result.output
    assert "mini/policy.yaml: no findings in 2 files" in result.stdout


def test_token_budget_option(runner: CliRunner) -> None:
    result = runner.invoke(app, ["policy", "lint", "mini/policy.yaml", "--token-budget", "100"])
    assert result.exit_code == 0  # warnings do not fail the command
    assert _prefixes(result.stdout) == [
        "mini/policy.yaml:23:5: WARNING T001",
        "mini/cyber.yaml:3:5: WARNING T001",
        "mini/cyber.yaml:18:5: WARNING T001",
        "mini/cyber.yaml:30:5: WARNING T001",
    ]
    assert "over the budget of 100" in result.stdout


def test_load_error_lists_each_problem_and_exits_one(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    text = (FIXTURES / "mini" / "policy.yaml").read_text(encoding="utf-8")
    bad.write_text(
        text.replace("    severity: medium", "    severity: mild").replace(
            "include:\n  - cyber.yaml\n", "include:\n  - missing.yaml\n"
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["policy", "lint", str(bad)])
    assert result.exit_code == 1
    assert result.stdout == ""
    errors = result.stderr.splitlines()
    assert errors[0] == f"error: 2 problems loading {bad}:"
    assert any(
        line.startswith(f"{bad}:") and "(categories[MED].severity)" in line for line in errors
    )
    assert any("included file not found: missing.yaml" in line for line in errors)


def test_missing_file(runner: CliRunner) -> None:
    result = runner.invoke(app, ["policy", "lint", "nope.yaml"])
    assert result.exit_code == 1
    assert "nope.yaml: file not found" in result.stderr
