"""What every route shares: the app's state, the signed-in user, role checks and the CSRF check."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from policylab.policy.compile.guide import compile_guide
from policylab.policy.schema import Policy
from policylab.store.models import PolicyVersion, User
from policylab.store.policies import policy_of
from policylab.store.users import Role, has_role
from policylab.store.workspace import Workspace
from policylab.web.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Signer,
    csrf_matches,
)

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class AppState:
    workspace: Workspace
    engine: Engine
    signer: Signer
    guides: dict[tuple[int, str | None], str] = field(default_factory=dict)
    policies: dict[int, Policy] = field(default_factory=dict)

    def policy(self, session: Session, policy_version_id: int) -> Policy:
        """A stored policy version, parsed once per process (versions never change)."""
        if policy_version_id not in self.policies:
            row = session.get(PolicyVersion, policy_version_id)
            if row is None:
                raise HTTPException(status_code=404, detail="policy version not found")
            self.policies[policy_version_id] = policy_of(row)
        return self.policies[policy_version_id]

    def guide(self, policy_version_id: int, policy: Policy, category: str | None) -> str:
        """The compiled HTML guide for a category (its section and descendants), cached."""
        key = (policy_version_id, category)
        if key not in self.guides:
            scope = category if category and policy.category(category) else None
            self.guides[key] = compile_guide(policy, fmt="html", category=scope)
        return self.guides[key]


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in the
# thread pool, and each hop there costs more than the dependency itself.
async def state(request: Request) -> AppState:
    found: AppState = request.app.state.policylab
    return found


StateDep = Annotated[AppState, Depends(state)]


def read_session(app: StateDep) -> Iterator[Session]:
    with Session(app.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(read_session)]


class NotSignedIn(HTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=401, detail="sign in first")


@dataclass(frozen=True)
class SessionClaim:
    """Whom a validly signed session cookie names. Not yet a signed-in user: the user's row must
    still be active with the same `session_epoch` (see `signed_in`)."""

    user_id: int
    epoch: int


def read_claim(request: Request, app: AppState) -> SessionClaim | None:
    found = app.signer.read_session(request.cookies.get(SESSION_COOKIE))
    return SessionClaim(*found) if found is not None else None


async def session_claim(request: Request) -> SessionClaim:
    """The session cookie's claim, checked for its signature only (no database access): for the
    routes that check the user inside their own transaction with `signed_in`."""
    claim = read_claim(request, request.app.state.policylab)
    if claim is None:
        raise NotSignedIn()
    return claim


ClaimDep = Annotated[SessionClaim, Depends(session_claim)]


def is_signed_in(user: User | None, claim: SessionClaim) -> bool:
    """Whether `user` (the row `claim` names, or None) is still signed in: active, and not signed
    out everywhere since (a password or role change, or deactivation, raises the epoch)."""
    return user is not None and user.active and user.session_epoch == claim.epoch


def check_roles(user: User, roles: tuple[Role, ...]) -> User:
    """`user` if they hold any of `roles` (admins hold all); 403 otherwise."""
    if not any(has_role(user, r) for r in roles):
        wanted = " or ".join(r.value for r in roles)
        raise HTTPException(status_code=403, detail=f"this needs the {wanted} role")
    return user


def signed_in(user: User | None, claim: SessionClaim, *roles: Role) -> User:
    """The user `claim` names, read in the caller's transaction: 401 unless still signed in, 403
    unless holding one of `roles`."""
    if user is None or not is_signed_in(user, claim):
        raise NotSignedIn()
    return check_roles(user, roles)


def optional_user(request: Request, app: StateDep) -> User | None:
    claim = read_claim(request, app)
    if claim is None:
        return None
    # A short session of its own: holding a pooled connection for the whole request would starve
    # the pool when many requests wait for a worker thread.
    with Session(app.engine, expire_on_commit=False) as session:
        user = session.get(User, claim.user_id)
    return user if is_signed_in(user, claim) else None


async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise NotSignedIn()
    return user


UserDep = Annotated[User, Depends(current_user)]


def require(*roles: Role) -> object:
    """A dependency that lets through users holding any of `roles` (admins always)."""

    async def check(user: UserDep) -> User:
        return check_roles(user, roles)

    return Depends(check)


# The role checks the routes use, by who may pass (admins always may).
Admin = Annotated[User, require(Role.ADMIN)]
Annotator = Annotated[User, require(Role.ANNOTATOR)]
Adjudicator = Annotated[User, require(Role.ADJUDICATOR)]
Reviewer = Annotated[User, require(Role.ADJUDICATOR, Role.POLICY_AUTHOR)]


async def csrf_protect(request: Request, app: StateDep) -> None:
    """Refuse a state-changing request whose CSRF token is missing or does not match."""
    if request.method not in UNSAFE_METHODS:
        return
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            presented = value if isinstance(value, str) else None
    if not csrf_matches(request.cookies.get(CSRF_COOKIE), presented, app.signer):
        raise HTTPException(
            status_code=403,
            detail="missing or wrong CSRF token: reload the page and try again",
        )
