"""`policylab serve`: the web app for labelling, adjudication and dashboards."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import typer

from policylab.cli._common import WorkspaceOption, console, open_workspace, user_errors


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
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn's log level."),
) -> None:
    """Serve the web app: sign-in, labelling, adjudication, dashboards and the JSON API.

    Listens on 127.0.0.1 by default. To serve a team, put it behind an https reverse proxy:
    session cookies are marked Secure when the request arrives over https.
    """
    import uvicorn

    from policylab.web.app import create_app

    ws = open_workspace(workspace)
    app = create_app(ws)
    if not _loopback(host):
        console.print(
            f"[yellow]warning:[/] listening on {host}: serve it behind https so that passwords "
            "and session cookies are never sent in clear"
        )
    console.print(
        f"policylab on http://{host}:{port}  (API docs at /api/docs)  workspace {ws.path}"
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )
