"""The web app: `create_app(workspace)` returns a FastAPI application serving the JSON API under
`/api` and the server-rendered pages (Jinja2 + HTMX, no assets from elsewhere)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

from policylab import __version__
from policylab.errors import PolicylabError
from policylab.store.db import make_engine
from policylab.store.labelling import QueueError
from policylab.store.workspace import Workspace
from policylab.web import api, pages
from policylab.web.deps import AppState, NotSignedIn
from policylab.web.routes import dashboard
from policylab.web.security import SECURITY_HEADERS, Signer, load_secret

DEFAULT_POOL = 40  # the size of the thread pool that runs the (synchronous) routes


def create_app(
    workspace: Workspace, *, secret: str | None = None, pool_size: int = DEFAULT_POOL
) -> FastAPI:
    """The app for `workspace`. `secret` signs cookies (default: the workspace's secret)."""
    engine = make_engine(workspace.db_url, pool_size=pool_size, max_overflow=pool_size)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
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
    static = resources.files("policylab.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(dashboard.router)

    @app.middleware("http")
    async def headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

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
