"""Sessions, CSRF tokens and security headers.

- The session is a signed cookie (itsdangerous, HMAC-SHA1 over a timestamped payload) holding the
  user's id and `session_epoch`: raising the epoch in the database signs the user out everywhere.
  It is HttpOnly, SameSite=Lax, and Secure when the app is served over https.
- CSRF: the signed double-submit pattern. A random token lives in a signed, HttpOnly cookie; every
  state-changing request must repeat it in the `X-CSRF-Token` header or a `csrf_token` form field.
  A page from another site can neither read the cookie nor forge a signed one.
- The secret comes from `POLICYLAB_SECRET_KEY`, else from `secret_key` in the workspace folder
  (created on first use, readable by its owner only), so every server process of a workspace
  accepts the same cookies.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "policylab_session"
CSRF_COOKIE = "policylab_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SESSION_MAX_AGE = 12 * 3600
SECRET_ENV = "POLICYLAB_SECRET_KEY"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
}


def load_secret(folder: Path) -> str:
    """The signing secret: the environment's, or the workspace's (made on first use)."""
    env = os.environ.get(SECRET_ENV)
    if env:
        return env
    path = folder / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip()


class Signer:
    def __init__(self, secret: str):
        self._session = URLSafeTimedSerializer(secret, salt="policylab-session")
        self._csrf = URLSafeTimedSerializer(secret, salt="policylab-csrf")

    # -- sessions ----------------------------------------------------------------------------------
    def session_value(self, user_id: int, epoch: int) -> str:
        return self._session.dumps({"u": user_id, "e": epoch})

    def read_session(self, value: str | None) -> tuple[int, int] | None:
        if not value:
            return None
        try:
            data: Any = self._session.loads(value, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), int):
            return None
        return int(data["u"]), int(data.get("e", -1))

    # -- CSRF --------------------------------------------------------------------------------------
    def new_csrf(self) -> str:
        return self._csrf.dumps(secrets.token_urlsafe(24))

    def valid_csrf(self, value: str | None) -> bool:
        if not value:
            return False
        try:
            self._csrf.loads(value)
        except BadSignature:
            return False
        return True


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        path="/",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=is_https(request))


def csrf_token_for(request: Request, signer: Signer) -> tuple[str, bool]:
    """The request's CSRF token, and whether it is new (and must be set as a cookie)."""
    current = request.cookies.get(CSRF_COOKIE)
    if current and signer.valid_csrf(current):
        return current, False
    return signer.new_csrf(), True


def csrf_matches(cookie: str | None, presented: str | None, signer: Signer) -> bool:
    if not cookie or not presented or not signer.valid_csrf(cookie):
        return False
    return hmac.compare_digest(cookie.encode(), presented.encode())
