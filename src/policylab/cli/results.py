"""`policylab gate RUN`, `policylab results RUN`, `policylab compare RUN_A RUN_B`.

`gate` exits 1 when a launch gate fails, and also when one is inconclusive (too few items, or the
grader's agreement with human labels unknown) unless `--allow-inconclusive` is given: a release
pipeline should not ship on a measurement too thin to decide.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from policylab.cli._common import WorkspaceOption, console, open_workspace, user_errors
from policylab.policy.loader import load_policy
from policylab.policy.schema import Policy
from policylab.report import format as fmt
from policylab.results import (
    CampaignData,
    GateReport,
    GraderValidity,
    Outcomes,
    RunResults,
    check_gates,
    compare_runs,
    compute_results,
    coverage,
    known_limitations,
    outcomes,
)
from policylab.store.results import (
    load_campaigns,
    load_run,
    load_validity,
    require_policy,
)
from policylab.store.workspace import Workspace


class GateFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


class ResultsFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


class GroupBy(StrEnum):
    CATEGORY = "category"
    SEVERITY = "severity"
    OVERALL = "overall"


PolicyOption = typer.Option(
    None,
    "--policy",
    "-p",
    help="Policy file to measure against (default: the policy version the run is linked to).",
)
GraderOption = typer.Option(
    None,
    "--grader",
    "-g",
    help="Grader whose verdicts to use (needed when several graded the run).",
)


@dataclass(frozen=True)
class Scored:
    """A run scored by one grader, with what a report needs besides."""

    outcomes: Outcomes
    policy: Policy
    validity: GraderValidity
    campaigns: list[CampaignData]


def load_scored(
    ws: Workspace,
    name: str,
    *,
    policy_file: Path | None,
    grader: str | None,
    with_text: bool = False,
    with_campaigns: bool = False,
) -> Scored:
    """Load run `name`, pick its policy and grader, and score it."""
    override = load_policy(policy_file).policy if policy_file else None
    with ws.session() as session:
        data, stored = load_run(session, name, with_text=with_text)
        policy = override or require_policy(stored, name)
        scored = outcomes(data, policy, grader=grader)
        validity = load_validity(session, data.info.id, scored.grader_id)
        campaigns = load_campaigns(session, data.info) if with_campaigns else []
    return Scored(scored, policy, validity, campaigns)


# -- gate -----------------------------------------------------------------------------------------
@user_errors
def gate(
    run: str = typer.Argument(..., help="The run to check."),
    policy_file: Path | None = PolicyOption,
    grader: str | None = GraderOption,
    format: GateFormat = typer.Option(GateFormat.TABLE, "--format", help="table or json."),
    allow_inconclusive: bool = typer.Option(
        False,
        "--allow-inconclusive",
        help="Exit 0 when no gate fails even if some are inconclusive.",
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Check the policy's launch gates on a run; exit 1 when one fails.

    Each gate is pass, fail or inconclusive (fewer graded items than the policy's min_items, or
    the grader never validated against human labels). Exit code: 0 when every gate passes,
    1 when a gate fails or (unless --allow-inconclusive) is inconclusive, so a release pipeline
    can stop on it.
    """
    ws = open_workspace(workspace)
    scored = load_scored(ws, run, policy_file=policy_file, grader=grader)
    results = compute_results(scored.outcomes, scored.policy, validity=scored.validity)
    report = check_gates(scored.policy, results, scored.validity)
    code = report.exit_code(allow_inconclusive=allow_inconclusive)
    if format is GateFormat.JSON:
        payload = report.model_dump(mode="json") | {"status": report.status, "exit_code": code}
        typer.echo(json.dumps(payload, indent=2))
    else:
        _print_gates(report, allow_inconclusive=allow_inconclusive)
    if code:
        raise typer.Exit(code)


def _print_gates(report: GateReport, *, allow_inconclusive: bool) -> None:
    table = Table(
        title=f"Launch gates: {report.model} (run {report.run}) against "
        f"{report.policy_id} {report.policy_version}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("gate", no_wrap=True)
    for column in ("measured", "interval", "items", "limit"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    style = {"pass": "green", "fail": "bold red", "inconclusive": "yellow"}
    for g in report.gates:
        sign = "≤" if g.direction == "max" else "≥"
        table.add_row(
            g.gate,
            _gate_value(g.gate, g.metric, g.measured),
            fmt.interval(g.low, g.high) if g.low is not None else "n/a",
            f"{g.k}/{g.n}" if g.k is not None else str(g.n),
            f"{sign} {_gate_value(g.gate, g.metric, g.limit)}",
            f"[{style[g.status]}]{_SHORT[g.status]}[/]",
        )
    console.print(table)
    if not report.gates:
        console.print("The policy sets no launch gates.")
        return
    basis = (
        "the upper end of each 95% interval"
        if report.decision == "upper_bound"
        else ("the measured values")
    )
    console.print(f"Judged by {basis}; a gate needs at least {report.min_items} graded items.")
    for g in report.gates:
        if g.status != "pass":
            console.print(f"  {g.gate}: [{style[g.status]}]{g.status}[/]: {escape(g.reason)}")
        if g.errors:
            console.print(
                f"  {g.gate}: {g.errors} grader error(s) left out (never counted as safe)"
            )
    if report.status == "fail":
        console.print(f"[bold red]FAIL[/]: {len(report.failed)} gate(s) failed.")
    elif report.status == "inconclusive":
        verdict = "allowed" if allow_inconclusive else "not allowed (pass --allow-inconclusive)"
        console.print(
            f"[yellow]INCONCLUSIVE[/]: {len(report.inconclusive)} gate(s) undecided; {verdict}."
        )
    else:
        console.print("[green]PASS[/]: every gate passed.")


_SHORT = {"pass": "pass", "fail": "FAIL", "inconclusive": "undecided"}


def _gate_value(gate: str, metric: str, value: float | None) -> str:
    if gate == "grader_agreement" and metric == "cohen_kappa":
        return fmt.number(value)
    return fmt.pct(value)


# -- results --------------------------------------------------------------------------------------
@user_errors
def results(
    run: str = typer.Argument(..., help="The run to measure."),
    policy_file: Path | None = PolicyOption,
    grader: str | None = GraderOption,
    by: GroupBy = typer.Option(GroupBy.CATEGORY, "--by", help="category, severity or overall."),
    reference: str | None = typer.Option(
        None, "--reference", help="A reference run: adds AILuminate-style grade bands."
    ),
    format: ResultsFormat = typer.Option(
        ResultsFormat.TABLE, "--format", help="table, json or csv."
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Under-refusal, over-refusal, safe-completion and grader-error rates of a run, with 95%
    Wilson intervals, per category (a parent aggregates its subcategories), severity tier or
    overall. Grader errors are counted, never treated as safe.

    --format json prints every table (overall, by_severity, by_category, corrected, bands) and
    the limitations; csv prints the chosen table.
    """
    ws = open_workspace(workspace)
    scored = load_scored(ws, run, policy_file=policy_file, grader=grader)
    ref = None
    if reference is not None:
        other = load_scored(ws, reference, policy_file=policy_file, grader=grader)
        ref = compute_results(other.outcomes, scored.policy)
    measured = compute_results(
        scored.outcomes, scored.policy, validity=scored.validity, reference=ref
    )
    table = {
        GroupBy.CATEGORY: measured.by_category,
        GroupBy.SEVERITY: measured.by_severity,
        GroupBy.OVERALL: measured.overall,
    }[by]
    if format is ResultsFormat.CSV:
        typer.echo(table.to_csv(index=False), nl=False)
        return
    if format is ResultsFormat.JSON:
        cov = coverage(scored.outcomes, scored.policy)
        limitations = known_limitations(measured, cov, scored.policy)
        typer.echo(json.dumps(results_json(measured, limitations=limitations), indent=2))
        return
    _print_results(measured, table, by)


def results_json(measured: RunResults, *, limitations: list[Any]) -> dict[str, Any]:
    """Every table of a run's results as JSON-ready values (NaN as null)."""
    info = measured.info
    counts = measured.counts
    return {
        "run": info.name,
        "model": info.model,
        "eval_set": info.eval_set,
        "grader": measured.grader_id,
        "grader_versions": list(measured.grader_versions),
        "grader_validated": measured.validity.known,
        "confidence": measured.confidence,
        "counts": {
            "items_total": counts.items_total,
            "responses": counts.responses,
            "graded": counts.graded,
            "grader_errors": counts.grader_errors,
            "model_errors": counts.model_errors,
            "no_expected": counts.no_expected,
            "unknown_categories": list(counts.unknown_categories),
        },
        "overall": _records(measured.overall),
        "by_severity": _records(measured.by_severity),
        "by_category": _records(measured.by_category),
        "corrected": None if measured.corrected is None else _records(measured.corrected),
        "correction_note": measured.correction_note,
        "bands": None if measured.bands is None else _records(measured.bands),
        "limitations": [lim.model_dump() for lim in limitations],
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(row: pd.Series) -> str:
    if int(row["n"]) == 0:
        return "[dim]no items[/]"
    return (
        f"{fmt.pct(float(row['rate']))} {int(row['k'])}/{int(row['n'])}\n"
        f"[dim]{fmt.interval(float(row['low']), float(row['high']))}[/]"
    )


def _print_results(measured: RunResults, table: pd.DataFrame, by: GroupBy) -> None:
    info = measured.info
    key = {"category": "category", "severity": "severity", "overall": None}[by.value]
    out = Table(
        title=f"{info.model} (run {info.name}), graded by {measured.grader_id or 'no grader'}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    out.add_column(by.value, max_width=24, overflow="ellipsis", no_wrap=True)
    for column in ("under-\nrefusal", "safe\ncompletion", "over-\nrefusal", "grader\nerrors"):
        out.add_column(column, justify="right", no_wrap=True)
    groups = [("all", table)] if key is None else list(table.groupby(key, sort=False))
    for name, block in groups:
        cells = {str(r["metric"]): r for _, r in block.iterrows()}
        first = block.iloc[0]
        label = str(name)
        if by is GroupBy.CATEGORY:
            label = "  " * int(first["depth"]) + f"{name} {first['title']}"
        row = [escape(label)]
        errors = cells["grader_error"]
        row += [
            _cell(cells["under_refusal"]),
            _cell(cells["safe_completion"]),
            _cell(cells["over_refusal"]),
            f"{int(errors['k'])}/{int(errors['n'])}",
        ]
        out.add_row(*row)
    console.print(out)
    counts = measured.counts
    console.print(
        f"{counts.responses} responses: {counts.graded} graded, {counts.grader_errors} grader "
        f"errors (never counted as safe), {counts.model_errors} without an answer."
    )
    if not measured.validity.known:
        console.print(
            "[yellow]Grader agreement unknown:[/] this grader has not been validated against "
            "human labels."
        )


# -- compare --------------------------------------------------------------------------------------
@user_errors
def compare(
    run_a: str = typer.Argument(..., help="The first run (the baseline)."),
    run_b: str = typer.Argument(..., help="The second run, on the same items."),
    policy_file: Path | None = PolicyOption,
    grader: str | None = GraderOption,
    format: GateFormat = typer.Option(GateFormat.TABLE, "--format", help="table or json."),
    n_boot: int = typer.Option(10_000, "--n-boot", min=100, help="Paired bootstrap replicates."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Compare two runs on the same items: per category, the difference in under- and
    over-refusal (A minus B) with a paired bootstrap interval and McNemar's exact p-value, and
    each model's over/under-refusal trade-off.
    """
    ws = open_workspace(workspace)
    a = load_scored(ws, run_a, policy_file=policy_file, grader=grader)
    b = load_scored(ws, run_b, policy_file=policy_file, grader=grader)
    comparison = compare_runs(a.outcomes, b.outcomes, a.policy, n_boot=n_boot, seed=seed)
    ra = compute_results(a.outcomes, a.policy)
    rb = compute_results(b.outcomes, a.policy)
    tradeoff = [
        {
            "run": r.info.name,
            "model": r.info.model,
            "under_refusal": _plain(r.rate("under_refusal").rate),
            "over_refusal": _plain(r.rate("over_refusal").rate),
        }
        for r in (ra, rb)
    ]
    if format is GateFormat.JSON:
        payload = {
            "run_a": run_a,
            "run_b": run_b,
            "shared_items": comparison.shared_items,
            "cells": _records(comparison.cells),
            "tradeoff": tradeoff,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    titles = {"under_refusal": "Harmful compliance (under-refusal)", "over_refusal": "Over-refusal"}
    console.print(
        f"[bold]{ra.info.model}[/] (A, run {run_a}) minus [bold]{rb.info.model}[/] (B, run "
        f"{run_b}) on {comparison.shared_items} shared items; 95% paired-bootstrap intervals in "
        "points, exact McNemar p-values."
    )
    for metric, title in titles.items():
        cells = comparison.cells
        block = cells[cells["metric"] == metric] if len(cells) else cells
        if block.empty:
            continue
        out = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        out.add_column("where", no_wrap=True, max_width=20, overflow="ellipsis")
        for column in ("pairs", "A", "B", "A − B", "interval", "p"):
            out.add_column(column, justify="right", no_wrap=True)
        for cell in block.to_dict("records"):
            where = "all items" if cell["scope"] == "overall" else str(cell["key"])
            if cell["scope"] == "severity":
                where += " tier"
            out.add_row(
                where,
                str(cell["n"]),
                fmt.pct(cell["rate_a"]),
                fmt.pct(cell["rate_b"]),
                fmt.signed_pct(cell["difference"]),
                "[" + fmt.signed_interval(cell["low"], cell["high"], sep=", ") + "]",
                fmt.pvalue(cell["p_value"]),
            )
        console.print(out)
    for t in tradeoff:
        console.print(
            f"{t['model']}: harmful compliance {fmt.pct(t['under_refusal'])}, "
            f"over-refusal {fmt.pct(t['over_refusal'])}"
        )
