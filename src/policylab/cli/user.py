"""`policylab user ...`: people and their roles (admin, policy_author, annotator, adjudicator)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.table import Table

from policylab.cli._common import WorkspaceOption, console, open_workspace, user_errors
from policylab.store.users import (
    Role,
    create_user,
    list_users,
    set_active,
    set_password,
    set_roles,
)

app = typer.Typer(help="Users of the web app and their roles.", no_args_is_help=True)

RolesOption = typer.Option(
    ...,
    "--role",
    "-r",
    help=f"A role (repeat for several): {', '.join(r.value for r in Role)}.",
)


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@app.command("add")
@user_errors
def add(
    name: str = typer.Argument(..., help="The sign-in name."),
    role: list[str] = RolesOption,
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Add a user (asks for the password unless --password-stdin)."""
    password = _password(password_stdin)
    ws = open_workspace(workspace)
    with ws.session() as session:
        user = create_user(session, name, password, role)
        console.print(f"Added [bold]{user.name}[/] ({', '.join(user.roles)})")


@app.command("list")
@user_errors
def list_(workspace: Path | None = WorkspaceOption) -> None:
    """List users, their roles and last sign-in."""
    ws = open_workspace(workspace)
    table = Table("name", "roles", "active", "last sign-in")
    with ws.session() as session:
        for u in list_users(session):
            seen = u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never"
            table.add_row(u.name, ", ".join(u.roles), "yes" if u.active else "no", seen)
    console.print(table)


@app.command("role")
@user_errors
def role(
    name: str = typer.Argument(..., help="The user."),
    role: list[str] = RolesOption,
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Replace a user's roles (signs them out everywhere)."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        user = set_roles(session, name, role)
        console.print(f"{user.name}: {', '.join(user.roles)}")


@app.command("password")
@user_errors
def password(
    name: str = typer.Argument(..., help="The user."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read it from stdin."),
    workspace: Path | None = WorkspaceOption,
) -> None:
    """Set a new password (signs the user out everywhere)."""
    value = _password(password_stdin)
    ws = open_workspace(workspace)
    with ws.session() as session:
        set_password(session, name, value)
    console.print(f"Password of {name} changed.")


@app.command("deactivate")
@user_errors
def deactivate(
    name: str = typer.Argument(..., help="The user."),
    workspace: Path | None = WorkspaceOption,
    undo: bool = typer.Option(False, "--undo", help="Reactivate instead."),
) -> None:
    """Stop a user from signing in (their labels stay)."""
    ws = open_workspace(workspace)
    with ws.session() as session:
        set_active(session, name, active=undo)
    console.print(f"{name} {'reactivated' if undo else 'deactivated'}.")
