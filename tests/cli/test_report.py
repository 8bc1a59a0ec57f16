"""`policylab report` writes HTML, PDF and Markdown."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from policylab.cli import app
from policylab.store.workspace import Workspace

runner = CliRunner()


@pytest.fixture
def ws(tmp_path: Path, synthetic: Any) -> Path:
    workspace = Workspace.init(tmp_path / ".policylab")
    synthetic.build_case(workspace)
    workspace.close()
    return workspace.path


def test_html_of_two_runs(ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"
    result = runner.invoke(
        app,
        [
            "report",
            "run-a",
            "run-b",
            "-g",
            "rules",
            "-w",
            str(ws),
            "-o",
            str(out),
            "--n-boot",
            "500",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stdout
    html = out.read_text(encoding="utf-8")
    assert '<section id="comparison">' in html
    assert "model-a minus model-b" in html
    assert "Wrote" in result.stdout


def test_pdf(ws: Path, tmp_path: Path) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    out = tmp_path / "report.pdf"
    result = runner.invoke(
        app,
        ["report", "run-b", "-w", str(ws), "-f", "pdf", "-o", str(out), "--n-boot", "200"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stdout
    subprocess.run(
        ["pdftoppm", "-png", "-r", "20", "-f", "1", "-l", "2", str(out), str(tmp_path / "p")],
        check=True,
        timeout=120,
    )
    assert list(tmp_path.glob("p-*.png"))


def test_markdown_with_redaction(ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "card.md"
    result = runner.invoke(
        app,
        [
            "report",
            "run-b",
            "-w",
            str(ws),
            "-f",
            "md",
            "-o",
            str(out),
            "--redact",
            "--n-boot",
            "200",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stdout
    text = out.read_text(encoding="utf-8")
    assert "[response redacted:" in text
    assert (tmp_path / "card-plots" / "category_under.svg").is_file()


def test_a_run_twice_is_an_error(ws: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["report", "run-b", "run-b", "-w", str(ws), "-o", str(tmp_path / "x.html")]
    )
    assert result.exit_code == 1
    assert "named twice" in result.stderr
