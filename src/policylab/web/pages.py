"""The HTML pages: sign-in, campaigns, labelling, adjudication, dashboard and user admin.

Pages render on the server with Jinja2 (templates in `policylab/templates/web/`); HTMX swaps the
labelling page's work area after each label, so labelling never reloads the page. The same
operations as the JSON API run underneath (`policylab.web.actions`), with the same role checks
and CSRF check.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.responses import Response

from policylab.campaigns.schema import BEHAVIOR_KEYS, LabelInput
from policylab.core import Behavior
from policylab.data.images import thumbnail
from policylab.errors import PolicylabError
from policylab.store.adjudication import adjudication_queue, ambiguities, item_labels
from policylab.store.campaign_stats import dashboard
from policylab.store.campaigns import annotator_counts, list_campaigns, schema_of
from policylab.store.labelling import NoWork, Work, run_write
from policylab.store.models import Campaign, User
from policylab.store.users import (
    Role,
    authenticate,
    create_user,
    has_role,
    list_users,
    set_active,
    set_password,
    set_roles,
)
from policylab.web import actions
from policylab.web.deps import (
    Adjudicator,
    Admin,
    Annotator,
    Reviewer,
    SessionDep,
    StateDep,
    UserDep,
    csrf_protect,
    optional_user,
)
from policylab.web.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    csrf_token_for,
    set_cookie,
)

router = APIRouter(dependencies=[Depends(csrf_protect)], include_in_schema=False)

_env = Environment(
    loader=PackageLoader("policylab", "templates/web"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
# Image parts show as small inline thumbnails (data URLs: the page fetches nothing else).
_env.filters["thumbnail"] = thumbnail


def render(
    request: Request, template: str, *, status: int = 200, user: User | None = None, **context: Any
) -> HTMLResponse:
    """Render a page; sets the CSRF cookie when the browser has none yet."""
    signer = request.app.state.policylab.signer
    token, new = csrf_token_for(request, signer)
    html = _env.get_template(template).render(
        request=request,
        user=user,
        csrf_token=token,
        has_role=lambda r: user is not None and has_role(user, r),
        Role=Role,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if new:
        set_cookie(request, response, CSRF_COOKIE, token)
    return response


def error_page(request: Request, message: str, *, status: int) -> HTMLResponse:
    if request.headers.get("HX-Request"):
        html = _env.get_template("_error.html.j2").render(message=message)
        return HTMLResponse(html, status_code=200)
    return render(request, "error.html.j2", status=status, message=message)


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect would let a phishing link reuse our sign-in page.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


# -- signing in ---------------------------------------------------------------------------------
@router.get("/login")
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return render(request, "login.html.j2", next=_safe_next(next))


@router.post("/login")
def login(
    request: Request,
    app: StateDep,
    name: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    def work(session: Session) -> tuple[int, int] | None:
        user = authenticate(session, name, password)
        return (user.id, user.session_epoch) if user else None

    found = run_write(app.engine, work)
    if found is None:
        return render(
            request,
            "login.html.j2",
            status=401,
            next=_safe_next(next),
            name=name,
            error="Wrong name or password.",
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(request, response, SESSION_COOKIE, app.signer.session_value(*found))
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(request, response, SESSION_COOKIE)
    return response


# -- campaigns ---------------------------------------------------------------------------------
@router.get("/")
def home(
    request: Request, session: SessionDep, user: Annotated[User | None, Depends(optional_user)]
) -> Response:
    if user is None:
        return RedirectResponse("/login", status_code=303)
    rows = []
    for c in list_campaigns(session):
        mine = annotator_counts(session, c, user.id) if has_role(user, Role.ANNOTATOR) else None
        queue = len(adjudication_queue(session, c)) if has_role(user, Role.ADJUDICATOR) else None
        rows.append({"campaign": c, "mine": mine, "queue": queue})
    return render(request, "campaigns.html.j2", user=user, rows=rows)


def _campaign(session: Session, name: str) -> Campaign:
    return actions.campaign_or_404(session, name)


@router.get("/campaigns/{name}/label")
def label_page(name: str, request: Request, session: SessionDep, user: Annotator) -> Response:
    campaign = _campaign(session, name)
    return render(
        request,
        "label.html.j2",
        user=user,
        campaign=campaign,
        schema=schema_of(campaign),
        keys=BEHAVIOR_KEYS,
    )


def _work_fragment(
    request: Request,
    app: Any,
    session: Session,
    campaign: Campaign,
    user: User,
    work: Work | NoWork,
    *,
    error: str | None = None,
) -> HTMLResponse:
    if isinstance(work, NoWork):
        return render(request, "_nowork.html.j2", user=user, campaign=campaign, nowork=work)
    schema = schema_of(campaign)
    mine = annotator_counts(session, campaign, user.id)
    policy = app.policy(session, campaign.policy_version_id)
    category = next((c for c in work.categories if policy.category(c)), None)
    guide_url = f"/campaigns/{quote(campaign.name)}/guide"
    if category:
        guide_url += f"?category={quote(category)}#cat-{quote(category)}"
    return render(
        request,
        "_work.html.j2",
        user=user,
        campaign=campaign,
        schema=schema,
        work=work,
        mine=mine,
        guide_url=guide_url,
        category=category,
        keys=BEHAVIOR_KEYS,
        error=error,
    )


@router.post("/campaigns/{name}/label/next")
def label_next(
    name: str, request: Request, app: StateDep, session: SessionDep, user: Annotator
) -> HTMLResponse:
    work = actions.fetch_next(app, name, user)
    return _work_fragment(request, app, session, _campaign(session, name), user, work)


class LabelForm(BaseModel):
    """The labelling (and adjudication) form; empty fields mean "not given"."""

    behavior: str | None = None
    violation: str | None = None
    category: str | None = None
    rule_ids: list[str] = Field(default_factory=list)
    rationale: str | None = Field(default=None, max_length=5000)
    confidence: str | None = None
    duration_ms: str | None = None
    policy_ambiguous: str | None = None
    ambiguous_rule_ids: list[str] = Field(default_factory=list)
    note: str | None = Field(default=None, max_length=5000)

    def label(self) -> LabelInput:
        def text(value: str | None) -> str | None:
            return value.strip() if value and value.strip() else None

        behavior, violation = text(self.behavior), text(self.violation)
        confidence, duration = text(self.confidence), text(self.duration_ms)
        return LabelInput(
            behavior=Behavior(behavior) if behavior in set(Behavior) else None,
            violation=None if violation is None else violation == "yes",
            category=text(self.category),
            rule_ids=[r for r in self.rule_ids if r],
            rationale=text(self.rationale),
            confidence=int(confidence) if confidence and confidence.isdigit() else None,
            duration_ms=int(duration) if duration and duration.isdigit() else None,
        )


LabelFormDep = Annotated[LabelForm, Form()]


@router.post("/campaigns/{name}/label/{assignment_id}")
def label_submit(
    name: str,
    assignment_id: int,
    form: LabelFormDep,
    request: Request,
    app: StateDep,
    session: SessionDep,
    user: Annotator,
) -> HTMLResponse:
    campaign = _campaign(session, name)
    error = None
    try:
        actions.submit(app, name, user, assignment_id, form.label())
    except PolicylabError as exc:
        if getattr(exc, "status", 422) not in (409, 422):
            raise
        error = exc.message + (f" ({exc.hint})" if exc.hint else "")
    work = actions.fetch_next(app, name, user)
    return _work_fragment(request, app, session, campaign, user, work, error=error)


@router.post("/campaigns/{name}/label/{assignment_id}/skip")
def label_skip(
    name: str,
    assignment_id: int,
    request: Request,
    app: StateDep,
    session: SessionDep,
    user: Annotator,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    campaign = _campaign(session, name)
    actions.skip(app, name, user, assignment_id, reason)
    work = actions.fetch_next(app, name, user)
    return _work_fragment(request, app, session, campaign, user, work)


@router.get("/campaigns/{name}/guide")
def guide(
    name: str, app: StateDep, session: SessionDep, user: UserDep, category: str | None = None
) -> HTMLResponse:
    """The compiled labelling guide for a category (and its sub-categories), or all of it."""
    campaign = _campaign(session, name)
    policy = app.policy(session, campaign.policy_version_id)
    return HTMLResponse(app.guide(campaign.policy_version_id, policy, category))


# -- dashboard and adjudication ---------------------------------------------------------------------
@router.get("/campaigns/{name}")
def dashboard_page(name: str, request: Request, session: SessionDep, user: Reviewer) -> Response:
    campaign = _campaign(session, name)
    board = dashboard(session, campaign)
    return render(
        request,
        "dashboard.html.j2",
        user=user,
        campaign=campaign,
        board=board,
        ambiguities=ambiguities(session, campaign),
        queue=adjudication_queue(session, campaign),
    )


@router.get("/campaigns/{name}/adjudicate")
def adjudication_list(
    name: str, request: Request, session: SessionDep, user: Adjudicator
) -> Response:
    campaign = _campaign(session, name)
    return render(
        request,
        "adjudicate_list.html.j2",
        user=user,
        campaign=campaign,
        queue=adjudication_queue(session, campaign),
    )


@router.get("/campaigns/{name}/adjudicate/{campaign_item_id}")
def adjudication_page(
    name: str, campaign_item_id: int, request: Request, session: SessionDep, user: Adjudicator
) -> Response:
    campaign = _campaign(session, name)
    review = item_labels(session, campaign, campaign_item_id)
    return render(
        request,
        "adjudicate_item.html.j2",
        user=user,
        campaign=campaign,
        schema=schema_of(campaign),
        review=review,
        keys=BEHAVIOR_KEYS,
    )


@router.post("/campaigns/{name}/adjudicate/{campaign_item_id}")
def adjudication_submit(
    name: str,
    campaign_item_id: int,
    form: LabelFormDep,
    request: Request,
    app: StateDep,
    session: SessionDep,
    user: Adjudicator,
) -> Response:
    try:
        actions.adjudicate(
            app,
            name,
            user,
            campaign_item_id,
            form.label(),
            rationale=form.rationale or "",
            policy_ambiguous=form.policy_ambiguous == "yes",
            ambiguous_rule_ids=[r for r in form.ambiguous_rule_ids if r],
            note=form.note,
        )
    except PolicylabError as exc:
        if getattr(exc, "status", 422) != 422:
            raise
        campaign = _campaign(session, name)
        review = item_labels(session, campaign, campaign_item_id)
        return render(
            request,
            "adjudicate_item.html.j2",
            status=422,
            user=user,
            campaign=campaign,
            schema=schema_of(campaign),
            review=review,
            keys=BEHAVIOR_KEYS,
            error=exc.render(),
        )
    return RedirectResponse(f"/campaigns/{quote(name)}/adjudicate", status_code=303)


# -- users ----------------------------------------------------------------------------------------
@router.get("/admin/users")
def users_page(request: Request, session: SessionDep, user: Admin) -> Response:
    return render(request, "users.html.j2", user=user, users=list_users(session), roles=list(Role))


@router.post("/admin/users")
def users_add(
    request: Request,
    app: StateDep,
    session: SessionDep,
    user: Admin,
    name: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    roles: Annotated[list[str], Form()],
) -> Response:
    try:
        run_write(app.engine, lambda s: create_user(s, name, password, roles))
    except PolicylabError as exc:
        return render(
            request,
            "users.html.j2",
            status=422,
            user=user,
            users=list_users(session),
            roles=list(Role),
            error=exc.render(),
        )
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_name}")
def users_change(
    user_name: str,
    request: Request,
    app: StateDep,
    session: SessionDep,
    user: Admin,
    roles: Annotated[list[str] | None, Form()] = None,
    active: Annotated[str | None, Form()] = None,
    password: Annotated[str | None, Form(max_length=1000)] = None,
) -> Response:
    def work(s: Session) -> None:
        if roles is not None:
            set_roles(s, user_name, roles)
        if active is not None:
            set_active(s, user_name, active=active == "yes")
        if password:
            set_password(s, user_name, password)

    try:
        run_write(app.engine, work)
    except PolicylabError as exc:
        return render(
            request,
            "users.html.j2",
            status=422,
            user=user,
            users=list_users(session),
            roles=list(Role),
            error=exc.render(),
        )
    return RedirectResponse("/admin/users", status_code=303)
