"""`policylab demo`: the main job on embedded defaults, step by step, as a user would run it.

Each step is one of the ordinary commands, run with the arguments shown on screen, so the demo is
also the tour: a workspace on SQLite, the example policy pack, the example eval set, a small local
model as the target, the local grader validated against a gold set, the launch gates and a report.
No API key and no network are needed.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click
import typer
from rich.rule import Rule

from policylab.cli._common import console, user_errors
from policylab.errors import PolicylabError

EXAMPLES = Path("examples")


def _steps(
    workspace: Path, out: Path, model: str, limit: int | None
) -> list[tuple[str, list[str]]]:
    policy = str(EXAMPLES / "policies" / "acme" / "policy.yaml")
    ws = ["--workspace", str(workspace)]
    run_name = "demo/" + model.replace(":", "-")
    run_limit = ["--limit", str(limit)] if limit else []
    return [
        ("Create the workspace (SQLite)", ["init", str(workspace)]),
        ("Check the policy", ["policy", "lint", policy]),
        ("Store this policy version", ["policy", "add", policy, *ws]),
        (
            "Import the example eval set",
            [
                "items",
                "import",
                str(EXAMPLES / "eval" / "acme-eval.jsonl"),
                "--set",
                "acme-eval",
                "--policy",
                policy,
                *ws,
            ],
        ),
        (
            f"Have the target model ({model}) answer it",
            ["run", "--model", model, "--items", "acme-eval", "--name", run_name, *run_limit, *ws],
        ),
        (
            "Check the local grader against human labels",
            [
                "validate",
                "local",
                "--gold",
                str(EXAMPLES / "gold" / "acme-gold.jsonl"),
                "--policy",
                policy,
                *ws,
            ],
        ),
        (
            "Grade every response",
            ["grade", "--run", run_name, "--grader", "local", "--policy", policy, *ws],
        ),
        ("Check the launch gates", ["gate", run_name, "--policy", policy, *ws]),
        (
            "Write the report",
            ["report", run_name, "--format", "html", "-o", str(out), "--policy", policy, *ws],
        ),
    ]


@user_errors
def demo(
    workspace: Path = typer.Option(
        Path(".policylab"), "--workspace", "-w", help="Workspace folder (made if missing)."
    ),
    out: Path = typer.Option(
        Path("out") / "demo-report.html", "--output", "-o", help="Where to write the report."
    ),
    model: str = typer.Option(
        "local:smollm2", "--model", "-m", help="The target model (default: a small local model)."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Answer only the first N prompts (a quicker look)."
    ),
) -> None:
    """Run the main job offline: lint, store, import, answer, validate, grade, gate, report.

    Run it from the project folder (it reads `examples/`). Run it again to resume: finished steps
    are quick, stored answers are not asked again.
    """
    if not (EXAMPLES / "policies" / "acme" / "policy.yaml").exists():
        raise PolicylabError(
            "the demo reads ./examples/ (the example policy pack and eval set)",
            hint="run `policylab demo` from the policylab project folder",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    from policylab.cli import app  # the demo drives the ordinary commands

    command = typer.main.get_command(app)
    started = time.perf_counter()
    gate_code = 0
    for number, (title, args) in enumerate(_steps(workspace, out, model, limit), start=1):
        console.print(Rule(f"[bold]{number}. {title}[/]", align="left"))
        console.print(f"[dim]$ policylab {shlex.join(args)}[/]")
        try:
            code = command.main(args, prog_name="policylab", standalone_mode=False)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        code = code or 0
        if args[0] == "gate":
            gate_code = code  # a failed gate is a finding, not a failure of the demo
            continue
        if code != 0:
            raise PolicylabError(
                f"step {number} ({title}) failed with exit code {code}",
                hint="fix what it reports above, then run `policylab demo` again to resume",
            )
    elapsed = time.perf_counter() - started
    console.print(Rule())
    verdict = (
        "[green]all launch gates passed[/]"
        if gate_code == 0
        else "[red]a launch gate did not pass[/]"
    )
    console.print(f"Done in {elapsed:,.0f} s: {verdict}. Report: [bold]{out}[/]")
    console.print(
        "Open it in a browser; `policylab serve` shows the same results in the dashboard."
    )
