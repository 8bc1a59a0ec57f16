"""`policylab policy import`: turn a published policy or taxonomy into a policy YAML file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from policylab.cli._common import console, user_errors
from policylab.errors import InputError, Location, Problem
from policylab.policy.importers import (
    ImportedPolicy,
    ImportReport,
    import_ailuminate_with_report,
    import_model_spec_with_report,
    llama_guard_taxonomy,
)
from policylab.policy.writer import dump_policy_yaml


class Format(StrEnum):
    MODEL_SPEC = "model-spec"
    AILUMINATE = "ailuminate"
    LLAMA_GUARD = "llama-guard"


@user_errors
def import_policy(
    source: Path | None = typer.Argument(
        None, help="The file to import: the Model Spec's model_spec.md (not used by the others)."
    ),
    fmt: Format = typer.Option(..., "--format", "-f", help="What SOURCE is."),
    output: Path = typer.Option(..., "--output", "-o", help="The policy YAML file to write."),
    examples: Path | None = typer.Option(
        None, "--examples", help="model-spec: the spec repository's examples/ folder."
    ),
    prompts: Path | None = typer.Option(
        None, "--prompts", help="ailuminate: a prompt-set CSV whose hazard codes to check."
    ),
    spec_version: str | None = typer.Option(
        None, "--spec-version", help="model-spec: the release date, e.g. 2025-12-18."
    ),
) -> None:
    """Import the OpenAI Model Spec, the AILuminate hazards or the Llama Guard 3 categories."""
    imported = _import(fmt, source, examples, prompts, spec_version)
    written = dump_policy_yaml(imported.policy, output)
    _show(imported.report)
    policy = imported.policy
    console.print(
        f"Wrote [bold]{written}[/]: {policy.id} {policy.version}, {len(policy.categories)} "
        f"categories, {len(policy.rules)} rules, {len(policy.examples)} examples."
    )


def _import(
    fmt: Format,
    source: Path | None,
    examples: Path | None,
    prompts: Path | None,
    spec_version: str | None,
) -> ImportedPolicy:
    misplaced = {
        "--examples": examples is not None and fmt is not Format.MODEL_SPEC,
        "--spec-version": spec_version is not None and fmt is not Format.MODEL_SPEC,
        "--prompts": prompts is not None and fmt is not Format.AILUMINATE,
    }
    for option, wrong in misplaced.items():
        if wrong:
            _usage(f"{option} does not apply to --format {fmt.value}")
    if fmt is Format.MODEL_SPEC:
        if source is None:
            _usage("--format model-spec needs SOURCE, the spec's model_spec.md")
        return import_model_spec_with_report(source, examples_dir=examples, version=spec_version)
    if source is not None:
        hint = " (a prompt set goes in --prompts)" if fmt is Format.AILUMINATE else ""
        _usage(f"--format {fmt.value} is built in and reads no SOURCE{hint}")
    if fmt is Format.AILUMINATE:
        return import_ailuminate_with_report(prompts)
    policy = llama_guard_taxonomy()
    report = ImportReport("llama-guard")
    report.counts["categories"] = len(policy.categories)
    report.counts["rules"] = len(policy.rules)
    return ImportedPolicy(policy, report)


def _usage(message: str) -> NoReturn:
    raise InputError(
        [Problem(message, Location(field="policylab policy import"), "see --help")],
        what="the command line",
    )


def _show(report: ImportReport) -> None:
    table = Table(title=f"Import report: {report.source}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, n in report.counts.items():
        table.add_row(key.replace("_", " "), str(n))
    for name, counts in report.breakdowns.items():
        detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        table.add_row(name.replace("_", " "), detail)
    console.print(table)
    for name, items in report.unresolved.items():
        label = name.replace("_", " ")
        if items:
            listed = escape(", ".join(items))
            console.print(f"[yellow]{label} ({len(items)}):[/] {listed}", highlight=False)
        else:
            console.print(f"{label}: none")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
