"""The web app: `create_app(workspace)` returns a FastAPI application serving the JSON API under
`/api` and the server-rendered pages (Jinja2 + HTMX, no assets from elsewhere)."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

import anyio.to_thread
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from policylab import __version__
from policylab.errors import PolicylabError
from policylab.store.db import make_engine
from policylab.store.labelling import QueueError
from policylab.store.workspace import Workspace
from policylab.web import api, pages
from policylab.web.deps import AppState, NotSignedIn
from policylab.web.routes import dashboard
from policylab.web.security import SECURITY_HEADERS, Signer, load_secret

DEFAULT_THREADS = 16
"""Worker threads running the synchronous routes (and so the database work) in each process."""
THREADS_ENV = "POLICYLAB_SERVE_THREADS"
"""Overrides `DEFAULT_THREADS` for the worker processes of `policylab serve --workers N`."""


class SecurityHeaders:
    """Adds the security headers to every response, and `Cache-Control: no-store` under `/api/`.

    A plain ASGI middleware: Starlette's `@app.middleware("http")` runs every request through an
    extra task and a memory stream, which costs more than the labelling routes themselves."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self.headers if k not in present]
                if api and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(
    workspace: Workspace, *, secret: str | None = None, threads: int = DEFAULT_THREADS
) -> FastAPI:
    """The app for `workspace`. `secret` signs cookies (default: the workspace's secret).

    `threads` bounds the routes running at once in this process; the database pool matches it,
    with as many again for the short sessions of the sign-in check and of requests finishing."""
    engine = make_engine(workspace.db_url, pool_size=threads, max_overflow=threads)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        # The ~250,000 objects alive once everything is imported move out of the collector's
        # reach: a full collection over them takes ~90 ms, during which every request this
        # process holds waits (the tail of the latency). Freed by reference counting as before.
        gc.collect()
        gc.freeze()
        yield
        engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="policylab",
        version=__version__,
        description="Human labelling campaigns: labelling, adjudication, dashboards.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.policylab = AppState(
        workspace=workspace, engine=engine, signer=Signer(secret or load_secret(workspace.path))
    )
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(dashboard.router)
    static = resources.files("policylab.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    app.add_middleware(SecurityHeaders)

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(QueueError)
    async def queue_error(request: Request, exc: QueueError) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": exc.render()}, status_code=exc.status)
        return pages.error_page(request, exc.render(), status=exc.status)

    @app.exception_handler(PolicylabError)
    async def bad_input(request: Request, exc: PolicylabError) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": exc.render()}, status_code=422)
        return pages.error_page(request, exc.render(), status=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if wants_json(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        if isinstance(exc, NotSignedIn) or exc.status_code == 401:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return pages.error_page(request, str(exc.detail), status=exc.status_code)

    return app


def app_from_environment() -> FastAPI:
    """The app for the workspace named by `POLICYLAB_WORKSPACE`: the factory each worker process
    of `policylab serve --workers N` calls."""
    return create_app(Workspace.open(), threads=int(os.environ.get(THREADS_ENV, DEFAULT_THREADS)))
