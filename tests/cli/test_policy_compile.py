from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from policylab.cli import app
from policylab.policy.compile import compile_grader_prompt, compile_guide
from policylab.policy.loader import load_policy

MINI = Path(__file__).resolve().parents[1] / "policy" / "fixtures" / "mini" / "policy.yaml"


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def test_grader_to_stdout(runner: CliRunner) -> None:
    result = runner.invoke(app, ["policy", "compile", str(MINI), "--target", "grader", "-c", "CYB"])
    assert result.exit_code == 0, result.output
    assert result.stdout == compile_grader_prompt(load_policy(MINI).policy, category="CYB").text


def test_guide_format_follows_the_output_suffix(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "site" / "guide.html"
    result = runner.invoke(app, ["policy", "compile", str(MINI), "-t", "guide", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == compile_guide(load_policy(MINI).policy, fmt="html")
    assert "Wrote labelling guide (html)" in result.stdout
    md = runner.invoke(app, ["policy", "compile", str(MINI), "-t", "guide", "-c", "MED"])
    assert md.stdout.startswith("# Mini policy: labelling guide")
    forced = runner.invoke(
        app, ["policy", "compile", str(MINI), "-t", "guide", "--guide-format", "html"]
    )
    assert forced.stdout.startswith("<!DOCTYPE html>")


def test_examples_jsonl(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    result = runner.invoke(app, ["policy", "compile", str(MINI), "-t", "examples", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 11
    assert "Wrote 11 training rows" in result.stdout
    assert rows[0]["id"] == "med-allow/prompt"
    assert rows[0]["response"] is None


def test_unknown_category_exits_one(runner: CliRunner) -> None:
    result = runner.invoke(app, ["policy", "compile", str(MINI), "-t", "grader", "-c", "NOPE"])
    assert result.exit_code == 1
    assert "policy mini has no category `NOPE`" in result.stderr
    assert "use one of: MED, CYB, CYB.1, CYB.2" in result.stderr


def test_target_is_required(runner: CliRunner) -> None:
    result = runner.invoke(app, ["policy", "compile", str(MINI)])
    assert result.exit_code == 2
