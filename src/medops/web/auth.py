"""Who is asking: an API token (``Authorization: Bearer``) or a session cookie; what they may do.

Without credentials the API answers 401 and pages redirect to ``/login``; with too low a role,
403. A request that changes something and is authenticated by the session cookie must carry the
session's CSRF token (the ``csrf`` form field, or the ``X-CSRF-Token`` header for the API);
token-authenticated API calls carry no cookie, so they cannot be forged cross-site."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from medops import api

SESSION_COOKIE = "medops_session"
LOGIN_CSRF_COOKIE = "medops_login_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Caller:
    principal: Any  # medops.accounts.Principal
    csrf: str | None  # the session's CSRF token; None for an API token
    via: str  # "token" | "session"


class NotSignedIn(Exception):
    """No (valid) credentials: 401 for the API, a redirect to /login for a page."""

    def __init__(self, message: str = "sign in first"):
        super().__init__(message)
        self.message = message


class Forbidden(Exception):
    """Signed in, but the role does not allow it (or the CSRF token is missing): 403."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def store_of(request: Request) -> Any:
    return request.app.state.store


def caller(request: Request) -> Caller | None:
    """The request's caller (resolved once per request; a token use is audited once)."""
    if hasattr(request.state, "caller"):
        return request.state.caller
    found: Caller | None = None
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        try:
            client = request.client.host if request.client else "unknown"
            principal = api.token_principal(
                store_of(request), header[7:].strip(), route=request.url.path, client=client
            )
        except api.AuthError as exc:
            request.state.caller = None
            raise NotSignedIn(str(exc)) from None
        found = Caller(principal, None, "token")
    else:
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            session = api.session_principal(store_of(request), session_id)
            if session is not None:
                found = Caller(session[0], session[1], "session")
    request.state.caller = found
    return found


def require(request: Request, role: str) -> Caller:
    """The caller, when signed in with at least ``role``; else NotSignedIn / Forbidden."""
    found = caller(request)
    if found is None:
        raise NotSignedIn()
    if not found.principal.can(role):
        raise Forbidden(f"this needs the {role} role; you are signed in as {found.principal.role}")
    return found


def check_csrf(found: Caller, given: str | None) -> None:
    """A state change by a session must carry its CSRF token (API tokens need none)."""
    if found.via == "token":
        return
    if not given or not found.csrf or not hmac.compare_digest(given.encode(), found.csrf.encode()):
        raise Forbidden("the form expired or did not come from this dashboard: reload the page and try again")


def viewer(request: Request) -> Caller:
    return require(request, "viewer")


def reviewer(request: Request) -> Caller:
    return require(request, "reviewer")


def operator(request: Request) -> Caller:
    return require(request, "operator")


def admin(request: Request) -> Caller:
    return require(request, "admin")


def api_write(role: str):
    """A dependency for an API route that changes something: the role, and for a session the
    ``X-CSRF-Token`` header."""

    def dependency(request: Request) -> Caller:
        found = require(request, role)
        check_csrf(found, request.headers.get("x-csrf-token"))
        return found

    return dependency
