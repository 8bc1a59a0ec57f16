"""`policylab policy ...`: write, check, compile and version policies."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from policylab.cli._common import WorkspaceOption, console, open_workspace, user_errors
from policylab.policy.loader import load_policy
from policylab.store.policies import add_policy_version, list_policy_versions

app = typer.Typer(help="Write, check, compile and version policies.", no_args_is_help=True)


@app.command("add")
@user_errors
def add(
    file: Path = typer.Argument(..., help="The policy file (its includes are stored with it)."),
    message: str | None = typer.Option(None, "--message", "-m", help="A note for the log."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Store a policy version in the workspace, with its content hash."""
    loaded = load_policy(file)
    ws = open_workspace(workspace)
    with ws.session() as session:
        row, created = add_policy_version(session, loaded, message=message)
        verb = "Added" if created else "Already stored:"
        console.print(
            f"{verb} [bold]{row.policy_id}[/] {row.version}  {row.content_hash[:19]}…  "
            f"({len(loaded.policy.categories)} categories, {len(loaded.policy.rules)} rules, "
            f"{len(loaded.policy.examples)} examples)"
        )


@app.command("log")
@user_errors
def log(
    policy_id: str | None = typer.Argument(None, help="Only this policy."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """List the stored policy versions, newest first."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        rows = list_policy_versions(session, policy_id)
        table = Table(title="Policy versions", show_lines=False)
        for col in ("policy", "version", "hash", "added", "title", "note"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r.policy_id,
                r.version,
                r.content_hash[7:19],
                f"{r.added_at:%Y-%m-%d %H:%M}",
                r.title,
                r.message or "",
            )
    if not rows:
        console.print("No policy versions stored yet: [bold]policylab policy add FILE[/]")
        return
    console.print(table)
