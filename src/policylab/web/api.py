"""The JSON API under `/api` (documented at `/api/docs`, schema at `/api/openapi.json`).

Rules every route follows:
- an annotator reads and writes only their own assignments (someone else's answers 404, exactly
  like one that does not exist);
- no route shows a label to anyone before the item has all its labels (blind labelling);
- admin actions need the admin role; every POST, PATCH or DELETE needs the CSRF token.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from policylab.campaigns.schema import LabelInput
from policylab.store.adjudication import adjudication_queue, ambiguities, item_labels
from policylab.store.campaign_stats import dashboard
from policylab.store.campaigns import (
    annotator_counts,
    list_campaigns,
    progress,
    reset_qualification,
    schema_of,
    set_campaign_status,
)
from policylab.store.labelling import (
    NoWork,
    QueueCampaign,
    StoredLabel,
    Work,
    queue_context,
    reserve_next,
    run_write,
    take_label,
    take_skip,
)
from policylab.store.models import User
from policylab.store.users import (
    Role,
    authenticate,
    create_user,
    get_user,
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
    ClaimDep,
    Reviewer,
    SessionClaim,
    SessionDep,
    StateDep,
    UserDep,
    csrf_protect,
    signed_in,
)
from policylab.web.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    clear_cookie,
    csrf_token_for,
    set_cookie,
)

router = APIRouter(prefix="/api", dependencies=[Depends(csrf_protect)])


class UserOut(BaseModel):
    name: str
    roles: list[str]
    active: bool

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(name=user.name, roles=list(user.roles), active=user.active)


class LoginIn(BaseModel):
    name: str = Field(max_length=100)
    password: str = Field(max_length=1000)


class WorkOut(BaseModel):
    assignment_id: int
    campaign: str
    phase: str
    item_id: str
    messages: list[dict[str, Any]]
    response: str | None
    categories: list[str]
    expires_at: dt.datetime
    done: int
    total: int | None

    @classmethod
    def of(cls, work: Work) -> WorkOut:
        return cls(
            assignment_id=work.assignment_id,
            campaign=work.campaign,
            phase=work.phase,
            item_id=work.item_id,
            messages=work.messages,
            response=work.response,
            categories=work.categories,
            expires_at=work.expires_at,
            done=work.done,
            total=work.total,
        )


class NoWorkOut(BaseModel):
    reason: str
    message: str


class LabelOut(BaseModel):
    id: int
    assignment_id: int
    behavior: str | None
    violation: bool | None
    category: str | None
    rule_ids: list[str]
    rationale: str | None
    confidence: int | None

    @classmethod
    def of(cls, label: StoredLabel) -> LabelOut:
        return cls(
            id=label.id,
            assignment_id=label.assignment_id,
            behavior=label.behavior,
            violation=label.violation,
            category=label.category,
            rule_ids=list(label.rule_ids),
            rationale=label.rationale,
            confidence=label.confidence,
        )


class SubmitOut(BaseModel):
    label: LabelOut
    created: bool
    qualification: str | None = None


class SkipIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class AdjudicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: LabelInput
    rationale: str = Field(min_length=1, max_length=5000)
    policy_ambiguous: bool = False
    ambiguous_rule_ids: list[str] = Field(default_factory=list)
    note: str | None = Field(default=None, max_length=5000)


class UserIn(BaseModel):
    name: str
    password: str
    roles: list[str]


class UserPatch(BaseModel):
    roles: list[str] | None = None
    password: str | None = None
    active: bool | None = None


class StatusIn(BaseModel):
    status: str


# -- labelling (first: routes are matched in order, and these are the busiest) ---------------
# The three requests annotators make all day run as plain `def` routes, each one write transaction
# in a worker thread (the database calls block). The session cookie is checked for its signature
# before, and the user's row (active, session epoch, roles) inside that transaction, together
# with the campaign: one statement instead of a session of its own.
def _queue(session: Session, name: str, claim: SessionClaim) -> QueueCampaign:
    found = queue_context(session, name, claim.user_id)
    signed_in(found.user, claim, Role.ANNOTATOR)
    if found.campaign is None:
        raise HTTPException(status_code=404, detail=f"no campaign {name!r}")
    return found.campaign


@router.post("/campaigns/{name}/next", responses={204: {"description": "nothing to label"}})
def next_item(name: str, app: StateDep, claim: ClaimDep) -> WorkOut | NoWorkOut:
    """Your current item, or a new reservation. `reason` says why there is none."""
    work = run_write(app.engine, lambda s: reserve_next(s, _queue(s, name, claim), claim.user_id))
    if isinstance(work, NoWork):
        return NoWorkOut(reason=work.reason, message=work.message)
    return WorkOut.of(work)


@router.post("/campaigns/{name}/assignments/{assignment_id}/label", status_code=201)
def submit(
    name: str,
    assignment_id: int,
    body: LabelInput,
    response: Response,
    app: StateDep,
    claim: ClaimDep,
) -> SubmitOut:
    """Submit your label. Sent again with the same label, it answers 200 with the stored one."""
    done = run_write(
        app.engine,
        lambda s: take_label(s, _queue(s, name, claim), claim.user_id, assignment_id, body),
    )
    if not done.created:
        response.status_code = 200
    q = done.qualification
    return SubmitOut(
        label=LabelOut.of(done.label),
        created=done.created,
        qualification=q.status if q is not None else None,
    )


@router.post("/campaigns/{name}/assignments/{assignment_id}/skip")
def skip(
    name: str, assignment_id: int, body: SkipIn, app: StateDep, claim: ClaimDep
) -> dict[str, Any]:
    status = run_write(
        app.engine,
        lambda s: take_skip(s, _queue(s, name, claim), claim.user_id, assignment_id, body.reason),
    )
    return {"assignment_id": assignment_id, "status": status}


# -- session -------------------------------------------------------------------------------------
@router.get("/csrf")
def csrf(request: Request, response: Response, app: StateDep) -> dict[str, str]:
    """A CSRF token (also set as a cookie): send it back in the `X-CSRF-Token` header."""
    token, new = csrf_token_for(request, app.signer)
    if new:
        set_cookie(request, response, CSRF_COOKIE, token)
    return {"csrf_token": token}


@router.post("/session")
def sign_in(body: LoginIn, request: Request, response: Response, app: StateDep) -> UserOut:
    """Sign in. A wrong name and a wrong password get the same answer."""

    def work(session: Any) -> tuple[UserOut, int, int] | None:
        user = authenticate(session, body.name, body.password)
        return (UserOut.of(user), user.id, user.session_epoch) if user else None

    found = run_write(app.engine, work)
    if found is None:
        raise HTTPException(status_code=401, detail="wrong name or password")
    out, user_id, epoch = found
    set_cookie(request, response, SESSION_COOKIE, app.signer.session_value(user_id, epoch))
    return out


@router.delete("/session", status_code=204)
def sign_out(request: Request, response: Response) -> None:
    clear_cookie(request, response, SESSION_COOKIE)


@router.get("/me")
def me(user: UserDep) -> UserOut:
    return UserOut.of(user)


# -- campaigns -----------------------------------------------------------------------------------
@router.get("/campaigns")
def campaigns(user: UserDep, session: SessionDep) -> list[dict[str, Any]]:
    out = []
    for c in list_campaigns(session):
        row: dict[str, Any] = {"name": c.name, "status": c.status, "mode": c.mode, "k": c.k}
        if has_role(user, Role.ANNOTATOR):
            row["mine"] = annotator_counts(session, c, user.id)
        if has_role(user, Role.ADJUDICATOR) or has_role(user, Role.POLICY_AUTHOR):
            p = progress(session, c)
            row["progress"] = {"items": p.items, "labels": p.labels, "needed": p.labels_needed}
        out.append(row)
    return out


@router.get("/campaigns/{name}/schema")
def label_schema(name: str, user: UserDep, session: SessionDep) -> dict[str, Any]:
    """What to answer, and the allowed values."""
    return schema_of(actions.campaign_or_404(session, name)).model_dump(mode="json")


@router.get("/campaigns/{name}/stats")
def stats(name: str, session: SessionDep, user: Reviewer) -> dict[str, Any]:
    """Progress, agreement and each annotator's record (aggregates only, never a label)."""
    return dashboard(session, actions.campaign_or_404(session, name)).summary()


@router.get("/campaigns/{name}/adjudication")
def queue(name: str, session: SessionDep, user: Adjudicator) -> list[dict[str, Any]]:
    return [e.__dict__ for e in adjudication_queue(session, actions.campaign_or_404(session, name))]


@router.get("/campaigns/{name}/items/{campaign_item_id}/labels")
def labels(
    name: str, campaign_item_id: int, session: SessionDep, user: Adjudicator
) -> dict[str, Any]:
    """Every label on an item, once it has all of them (403 before: labelling is blind)."""
    review = item_labels(session, actions.campaign_or_404(session, name), campaign_item_id)
    return {
        "campaign_item_id": review.campaign_item_id,
        "item_id": review.item_id,
        "status": review.status,
        "labels": [lb.__dict__ for lb in review.labels],
        "skips": [{"annotator": a, "reason": r} for a, r in review.skips],
    }


@router.post("/campaigns/{name}/items/{campaign_item_id}/adjudication", status_code=201)
def adjudicate(
    name: str, campaign_item_id: int, body: AdjudicationIn, app: StateDep, user: Adjudicator
) -> dict[str, Any]:
    adj = actions.adjudicate(
        app,
        name,
        user,
        campaign_item_id,
        body.label,
        rationale=body.rationale,
        policy_ambiguous=body.policy_ambiguous,
        ambiguous_rule_ids=body.ambiguous_rule_ids,
        note=body.note,
    )
    return {"id": adj.id, "campaign_item_id": adj.campaign_item_id}


@router.get("/campaigns/{name}/ambiguities")
def campaign_ambiguities(name: str, session: SessionDep, user: Reviewer) -> list[dict[str, Any]]:
    return [a.__dict__ for a in ambiguities(session, actions.campaign_or_404(session, name))]


@router.post("/campaigns/{name}/status")
def campaign_status(name: str, body: StatusIn, app: StateDep, user: Admin) -> dict[str, str]:
    def work(session: Any) -> str:
        actions.campaign_or_404(session, name)
        return set_campaign_status(session, name, body.status).status

    return {"status": run_write(app.engine, work)}


@router.post("/campaigns/{name}/qualification/{user_name}/reset")
def qualification_reset(name: str, user_name: str, app: StateDep, user: Admin) -> dict[str, int]:
    def work(session: Any) -> int:
        campaign = actions.campaign_or_404(session, name)
        return reset_qualification(session, campaign, get_user(session, user_name))

    return {"removed": run_write(app.engine, work)}


# -- users (admin) ---------------------------------------------------------------------------------
@router.get("/users")
def users(session: SessionDep, user: Admin) -> list[UserOut]:
    return [UserOut.of(u) for u in list_users(session)]


@router.post("/users", status_code=201)
def add_user(body: UserIn, app: StateDep, user: Admin) -> UserOut:
    def work(session: Any) -> UserOut:
        return UserOut.of(create_user(session, body.name, body.password, body.roles))

    return run_write(app.engine, work)


@router.patch("/users/{user_name}")
def change_user(user_name: str, body: UserPatch, app: StateDep, user: Admin) -> UserOut:
    def work(session: Any) -> UserOut:
        target = get_user(session, user_name)
        if body.roles is not None:
            target = set_roles(session, user_name, body.roles)
        if body.password is not None:
            target = set_password(session, user_name, body.password)
        if body.active is not None:
            target = set_active(session, user_name, active=body.active)
        return UserOut.of(target)

    return run_write(app.engine, work)
