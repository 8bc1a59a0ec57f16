"""`policylab serve`: the web app for labelling, adjudication and dashboards."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import typer

from policylab.cli._common import WorkspaceOption, console, open_workspace, user_errors
from policylab.store.workspace import ENV_VAR as WORKSPACE_ENV


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@user_errors
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    workspace: Path | None = WorkspaceOption,
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        help="Server processes (PostgreSQL: 2 on a 2-core machine; SQLite: 1, as it takes one "
        "writer at a time).",
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        help="Requests each process works on at once (its database pool matches). Default: 16.",
    ),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn's log level."),
) -> None:
    """Serve the web app: sign-in, labelling, adjudication, dashboards and the JSON API.

    Listens on 127.0.0.1 by default. To serve a team, put it behind an https reverse proxy:
    session cookies are marked Secure when the request arrives over https.
    """
    import uvicorn
    from fastapi import FastAPI

    from policylab.web.app import DEFAULT_THREADS, THREADS_ENV, create_app

    ws = open_workspace(workspace)
    threads = threads or DEFAULT_THREADS
    if workers > 1 and ws.db_url.startswith("sqlite"):
        # Still correct (every write transaction takes SQLite's lock with BEGIN IMMEDIATE), but
        # writers in other processes wait for it by sleeping instead of queueing.
        console.print(
            f"[yellow]warning:[/] {workers} workers on SQLite: it takes one writer at a time, and "
            "writers in other processes wait for it by sleeping, so one worker is no slower "
            "(docs/benchmarks.md); a larger team wants PostgreSQL"
        )
    if not _loopback(host):
        console.print(
            f"[yellow]warning:[/] listening on {host}: serve it behind https so that passwords "
            "and session cookies are never sent in clear"
        )
    console.print(
        f"policylab on http://{host}:{port}  (API docs at /api/docs)  workspace {ws.path}"
    )
    if workers == 1:
        app: FastAPI | str = create_app(ws, threads=threads)
    else:
        # Each worker process builds its own app (and database pool) from the environment.
        os.environ[WORKSPACE_ENV] = str(ws.path.resolve())
        os.environ[THREADS_ENV] = str(threads)
        ws.close()
        app = "policylab.web.app:app_from_environment"
    uvicorn.run(
        app,
        factory=workers > 1,
        workers=workers,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )
