"""`policylab policy import`: each format writes a policy file that loads back as the import."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from policylab.cli import app
from policylab.policy.importers import (
    import_ailuminate,
    import_model_spec,
    llama_guard_taxonomy,
)
from policylab.policy.loader import load_policy

runner = CliRunner()


@pytest.mark.realdata
@pytest.mark.slow
def test_import_model_spec_writes_a_loadable_policy(shared_data: Path, tmp_path: Path) -> None:
    spec = shared_data / "model_spec" / "model_spec.md"
    examples = shared_data / "model_spec" / "examples"
    out = tmp_path / "model_spec.yaml"
    result = runner.invoke(
        app,
        [
            "policy",
            "import",
            str(spec),
            "--format",
            "model-spec",
            "--examples",
            str(examples),
            "-o",
            str(out),
        ],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    assert "footnotes without file (4): d0pu, h82a, rse0, t5q0" in result.output
    assert "files without footnote (2): 91ld, lds1" in result.output
    assert "root 22" in result.output
    assert "81 categories" in result.output
    loaded = load_policy(out).policy
    assert loaded == import_model_spec(spec, examples_dir=examples)


@pytest.mark.realdata
def test_import_ailuminate_checks_a_prompt_set(shared_data: Path, tmp_path: Path) -> None:
    prompts = shared_data / "ailuminate" / "airr_official_1.0_demo_fr_fr_prompt_set_release.csv"
    out = tmp_path / "ail.yaml"
    result = runner.invoke(
        app,
        ["policy", "import", "--format", "ailuminate", "--prompts", str(prompts), "-o", str(out)],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    assert "rows" in result.output
    assert "skilled 600, unskilled 600" in result.output
    assert "unknown hazard codes: none" in result.output
    assert load_policy(out).policy == import_ailuminate()


def test_import_llama_guard(tmp_path: Path) -> None:
    out = tmp_path / "lg.yaml"
    result = runner.invoke(app, ["policy", "import", "-f", "llama-guard", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert load_policy(out).policy == llama_guard_taxonomy()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "model-spec"], "needs SOURCE"),
        (["x.csv", "--format", "ailuminate"], "a prompt set goes in --prompts"),
        (["--format", "llama-guard", "--examples", "ex"], "--examples does not apply"),
        (["missing.md", "--format", "model-spec"], "file not found"),
    ],
)
def test_bad_command_lines_fail_with_a_message(
    args: list[str], message: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.yaml"
    result = runner.invoke(app, ["policy", "import", *args, "-o", str(out)], terminal_width=200)
    assert result.exit_code == 1
    assert message in result.output
    assert not out.exists()
