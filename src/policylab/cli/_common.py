"""What every command shares: the console, the workspace option, and turning errors into messages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from policylab.errors import PolicylabError
from policylab.store.workspace import Workspace

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

WorkspaceOption = typer.Option(
    None,
    "--workspace",
    "-w",
    envvar="POLICYLAB_WORKSPACE",
    help="Workspace folder (default: ./.policylab, searched upwards).",
)


def open_workspace(path: Path | None) -> Workspace:
    return Workspace.open(path)


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Show a `PolicylabError` as a clear message and exit 1, instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except PolicylabError as exc:
            # Escaped: field paths such as `examples[cyb-01]` would otherwise be read as Rich tags.
            err_console.print(f"[bold red]error:[/] {escape(exc.render())}", highlight=False)
            raise typer.Exit(1) from exc

    return wrapper
