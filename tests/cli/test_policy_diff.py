from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policylab.cli import app

MINI = Path(__file__).resolve().parents[1] / "policy" / "fixtures" / "mini"


@pytest.fixture
def versions(tmp_path: Path) -> tuple[Path, Path]:
    """The mini policy, and a copy with a behaviour flip, a severity change and a new criterion."""
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(MINI, old)
    shutil.copytree(MINI, new)
    root = new / "policy.yaml"
    root.write_text(
        root.read_text(encoding="utf-8").replace("version: 1.2.0", "version: 1.3.0"),
        encoding="utf-8",
    )
    cyber = new / "cyber.yaml"
    text = cyber.read_text(encoding="utf-8")
    text = text.replace(
        "    severity: low\n    expected_behavior: comply",
        "    severity: low\n    expected_behavior: partial",
    )
    text = text.replace(
        "      - Gives a working exploit for a named system.\n",
        "      - Gives a working exploit for a named system.\n      - Names live targets.\n",
    )
    cyber.write_text(text, encoding="utf-8")
    return old / "policy.yaml", root


def test_text_diff_shows_flips_first(versions: tuple[Path, Path]) -> None:
    old, new = versions
    result = CliRunner().invoke(app, ["policy", "diff", str(old), str(new)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines[0] == "mini 1.2.0 → mini 1.3.0: 3 changes, 1 breaking"
    assert "Breaking" in lines[1]
    assert lines[2] == "~ category CYB.1 expected_behavior: comply → partial"
    assert "Header" in lines[3]
    assert lines[4] == "~ header mini version: 1.2.0 → 1.3.0"
    assert "Rules" in lines[5]
    assert lines[6] == "+ rule CYB.1.a violating: Names live targets."


def test_json_diff(versions: tuple[Path, Path]) -> None:
    old, new = versions
    result = CliRunner().invoke(app, ["policy", "diff", str(old), str(new), "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["old_version"], data["new_version"]) == ("1.2.0", "1.3.0")
    assert [
        (c["kind"], c["object"], c["id"], c["field"], c["breaking"]) for c in data["changes"]
    ] == [
        ("changed", "category", "CYB.1", "expected_behavior", True),
        ("changed", "header", "mini", "version", False),
        ("added", "rule", "CYB.1.a", "violating", False),
    ]


def test_no_changes(versions: tuple[Path, Path]) -> None:
    old, _ = versions
    result = CliRunner().invoke(app, ["policy", "diff", str(old), str(old)])
    assert result.exit_code == 0
    assert result.stdout.strip() == "mini 1.2.0 → mini 1.2.0: no changes"


def test_unreadable_side_exits_one(versions: tuple[Path, Path], tmp_path: Path) -> None:
    old, _ = versions
    result = CliRunner().invoke(app, ["policy", "diff", str(old), str(tmp_path / "gone.yaml")])
    assert result.exit_code == 1
    assert "gone.yaml: file not found" in result.stderr
