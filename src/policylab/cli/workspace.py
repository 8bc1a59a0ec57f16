"""`policylab init`."""

from __future__ import annotations

from pathlib import Path

import typer

from policylab.cli._common import console, user_errors
from policylab.store.workspace import DEFAULT_DIR, Workspace


@user_errors
def init(
    path: Path = typer.Argument(Path(DEFAULT_DIR), help="Folder of the new workspace."),
    db: str | None = typer.Option(
        None,
        "--db",
        help="Database URL; default SQLite inside the folder. A team server: postgresql+psycopg://user@host/db",
    ),
) -> None:
    """Create a workspace (SQLite by default) and bring its database to the latest schema."""
    ws = Workspace.init(path, db_url=db)
    console.print(f"Workspace ready at [bold]{ws.path}[/] on {ws.redacted_url}")
    console.print("Next: [bold]policylab policy add POLICY.yaml[/] to store a policy version.")
