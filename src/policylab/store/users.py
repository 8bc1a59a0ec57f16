"""People and roles: adding users, changing roles and passwords, checking a password.

Passwords are hashed with argon2id (argon2-cffi's defaults). Checking a password for a name that
does not exist still runs one argon2 verification, so the time taken does not tell whether the
name exists. At most as many hashes run at once as there are CPUs: each takes tens of megabytes,
and fifty people signing in together must not exhaust the memory.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
from collections.abc import Iterable
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from policylab.errors import PolicylabError
from policylab.store.models import User


class Role(StrEnum):
    ADMIN = "admin"
    POLICY_AUTHOR = "policy_author"
    ANNOTATOR = "annotator"
    ADJUDICATOR = "adjudicator"


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
MIN_PASSWORD = 8

_HASHING = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))
_DEFAULT_HASHER = PasswordHasher()
_DUMMY_HASH = _DEFAULT_HASHER.hash("policylab: no such user")


def has_role(user: User, role: Role | str) -> bool:
    """Whether `user` may act as `role`; an admin may act as anyone."""
    return user.active and (Role(role).value in user.roles or Role.ADMIN.value in user.roles)


def parse_roles(roles: Iterable[str]) -> list[str]:
    out: list[str] = []
    for raw in roles:
        value = raw.strip().lower().replace("-", "_").replace(" ", "_")
        try:
            role = Role(value)
        except ValueError:
            raise PolicylabError(
                f"unknown role {raw!r}", hint=f"roles: {', '.join(r.value for r in Role)}"
            ) from None
        if role.value not in out:
            out.append(role.value)
    if not out:
        raise PolicylabError("give at least one role", hint=", ".join(r.value for r in Role))
    return out


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise PolicylabError(
            f"the password is too short ({len(password)} characters)",
            hint=f"use at least {MIN_PASSWORD} characters",
        )


def hash_password(password: str, *, hasher: PasswordHasher | None = None) -> str:
    _check_password(password)
    with _HASHING:
        return (hasher or _DEFAULT_HASHER).hash(password)


def find_user(session: Session, name: str) -> User | None:
    return session.scalars(select(User).where(User.name == name)).first()


def get_user(session: Session, name: str) -> User:
    user = find_user(session, name)
    if user is None:
        raise PolicylabError(f"no user {name!r}", hint="list users with `policylab user list`")
    return user


def create_user(
    session: Session,
    name: str,
    password: str,
    roles: Iterable[str],
    *,
    hasher: PasswordHasher | None = None,
) -> User:
    """Add a user. `hasher` overrides argon2's default cost (tests use a cheap one)."""
    if not NAME.match(name):
        raise PolicylabError(
            f"user name {name!r} is not allowed",
            hint="use 1 to 100 letters, digits, `_`, `.`, `@` or `-`, starting with a letter or digit",
        )
    if find_user(session, name) is not None:
        raise PolicylabError(f"user {name!r} already exists", hint="pick another name")
    user = User(
        name=name,
        password_hash=hash_password(password, hasher=hasher),
        roles=parse_roles(roles),
        active=True,
        session_epoch=0,
    )
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def set_roles(session: Session, name: str, roles: Iterable[str]) -> User:
    """Replace a user's roles; signs them out everywhere."""
    user = get_user(session, name)
    user.roles = parse_roles(roles)
    user.session_epoch += 1
    return user


def set_password(
    session: Session, name: str, password: str, *, hasher: PasswordHasher | None = None
) -> User:
    """Change a user's password; signs them out everywhere."""
    user = get_user(session, name)
    user.password_hash = hash_password(password, hasher=hasher)
    user.session_epoch += 1
    return user


def set_active(session: Session, name: str, *, active: bool) -> User:
    """Deactivate (or reactivate) a user; deactivation signs them out everywhere."""
    user = get_user(session, name)
    user.active = active
    user.session_epoch += 1
    return user


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The active user with this name and password, or None (whichever part was wrong)."""
    user = find_user(session, name)
    stored = user.password_hash if user is not None else _DUMMY_HASH
    try:
        with _HASHING:
            _DEFAULT_HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    user.last_login_at = dt.datetime.now(dt.UTC)
    return user
