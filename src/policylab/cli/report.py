"""`policylab report RUN [RUN...] --format html|pdf|md -o FILE`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from policylab.cli._common import WorkspaceOption, console, open_workspace, user_errors
from policylab.cli.results import GraderOption, PolicyOption, load_scored
from policylab.errors import PolicylabError
from policylab.report.build import RunInput, build_report
from policylab.report.render import render_html, render_markdown, render_pdf
from policylab.results import compute_results


class ReportFormat(StrEnum):
    HTML = "html"
    PDF = "pdf"
    MD = "md"


@user_errors
def report(
    runs: list[str] = typer.Argument(
        ..., help="One run or more; later runs are compared with the first."
    ),
    format: ReportFormat = typer.Option(
        ReportFormat.HTML, "--format", "-f", help="html, pdf or md."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="The file to write."),
    policy_file: Path | None = PolicyOption,
    grader: str | None = GraderOption,
    redact: bool = typer.Option(
        False, "--redact", help="Hide responses and shorten requests in the failures appendix."
    ),
    reference: str | None = typer.Option(
        None, "--reference", help="A reference run: adds AILuminate-style grade bands."
    ),
    n_boot: int = typer.Option(10_000, "--n-boot", min=100, help="Bootstrap replicates."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstraps."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Write a report of one run or more for a launch review or a system card.

    Sections: a summary for a reader in a hurry (gates, largest risks), launch gates, rates with
    95% intervals by severity tier and category (tables and forest plots), model comparison (two
    runs or more), grader validity, human labelling data, coverage, known limitations and an
    appendix of representative failures (with a content warning; --redact hides responses).

    html is one self-contained file; pdf is rendered by WeasyPrint; md is for a system card, with
    its plots written as SVG files to a folder beside it (FILE-plots/).
    """
    if len(set(runs)) != len(runs):
        raise PolicylabError("a run is named twice", hint="name each run once")
    ws = open_workspace(workspace)
    scored = [
        load_scored(
            ws, name, policy_file=policy_file, grader=grader, with_text=True, with_campaigns=True
        )
        for name in runs
    ]
    policy = scored[0].policy
    ref = None
    if reference is not None:
        other = load_scored(ws, reference, policy_file=policy_file, grader=grader)
        ref = compute_results(other.outcomes, policy)
    built = build_report(
        [RunInput(s.outcomes, s.validity, s.campaigns) for s in scored],
        policy,
        redact=redact,
        reference=ref,
        n_boot=n_boot,
        seed=seed,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    if format is ReportFormat.HTML:
        output.write_text(render_html(built), encoding="utf-8")
    elif format is ReportFormat.PDF:
        output.write_bytes(render_pdf(built))
    else:
        plots = output.parent / f"{output.stem}-plots"
        output.write_text(render_markdown(built, plots_dir=plots), encoding="utf-8")
    gates = ", ".join(f"{r.results.info.name}: {r.gates.status}" for r in built.runs)
    console.print(f"Wrote {output} ({format.value}); gates {gates}")
