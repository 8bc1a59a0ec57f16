"""`policylab redteam ...`: import red-team findings, triage them, turn failures into regressions."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from policylab.cli._common import WorkspaceOption, console, open_workspace, user_errors
from policylab.errors import PolicylabError
from policylab.monitor.redteam import TOOLS, read_findings
from policylab.policy.loader import load_policy
from policylab.store import monitor as store

app = typer.Typer(
    help="Red-team findings: import (promptfoo, garak, PyRIT, JSONL/CSV), de-duplicate, triage.",
    no_args_is_help=True,
)


@app.command("import")
@user_errors
def import_(
    file: Path = typer.Argument(..., help="The tool's output file."),
    tool: str = typer.Option(..., "--tool", help=f"One of: {', '.join(TOOLS)}."),
    include_passes: bool = typer.Option(
        False, "--all", help="Also import attempts the tool scored as failed attacks."
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Import findings into the triage queue; duplicates of earlier attacks are marked as such."""
    findings = read_findings(file, tool, only_failures=not include_passes)
    ws = open_workspace(workspace)
    with ws.session() as session:
        report = store.import_findings(session, findings, source_file=str(file))
    console.print(
        f"Read {report.read:,} findings from {escape(str(file))} ({tool}): "
        f"[bold]{report.new:,} new[/], {report.duplicates:,} duplicates of earlier ones, "
        f"{report.already_imported:,} already imported"
    )


@app.command("list")
@user_errors
def list_(
    status: str | None = typer.Option(
        "new", "--status", help="new, duplicate, confirmed, rejected, or all."
    ),
    limit: int = typer.Option(50, "--limit"),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """The triage queue (new findings by default)."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        rows = store.list_findings(session, status=None if status == "all" else status, limit=limit)
        table = Table(title=f"Red-team findings ({status})")
        for col in ("id", "tool", "plugin", "status", "rule", "attack", "response"):
            table.add_column(col)
        for f in rows:
            attack = " ".join(
                str(m.get("content") or "") for m in f.messages if m.get("role") == "user"
            )
            status_text = f.status + (f" of {f.duplicate_of}" if f.duplicate_of else "")
            table.add_row(
                str(f.id),
                f.tool,
                f.plugin or "–",
                status_text,
                f.rule_id or "–",
                " ".join(attack.split())[:70],
                " ".join((f.response or "").split())[:50],
            )
    console.print(table)


@app.command("triage")
@user_errors
def triage(
    finding_id: int = typer.Argument(..., help="The finding's id (from `policylab redteam list`)."),
    confirm: bool = typer.Option(
        False, "--confirm", help="A real failure: make it a regression item."
    ),
    reject: bool = typer.Option(False, "--reject", help="Not a failure."),
    rule: str | None = typer.Option(None, "--rule", help="The rule it broke, e.g. CYB.2.a."),
    policy_file: Path | None = typer.Option(
        None, "--policy", help="Check the rule against this policy."
    ),
    note: str | None = typer.Option(None, "--note", help="Why."),
    by: str | None = typer.Option(None, "--by", help="Who triaged it."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Confirm a finding against a rule (it becomes an item of the eval set `regressions`) or
    reject it."""
    if confirm == reject:
        raise PolicylabError("give exactly one of --confirm or --reject")
    policy = load_policy(policy_file).policy if policy_file else None
    ws = open_workspace(workspace)
    with ws.session() as session:
        finding = store.triage_finding(
            session, finding_id, confirm=confirm, rule_id=rule, policy=policy, note=note, by=by
        )
        status, item_id = finding.status, finding.item_id
    if status == "confirmed":
        console.print(
            f"Finding {finding_id} confirmed against [bold]{escape(rule or '')}[/]: regression item "
            f"redteam-{finding_id} (#{item_id}) in eval set [bold]{store.REGRESSION_SET}[/]"
        )
    else:
        console.print(f"Finding {finding_id} rejected")
