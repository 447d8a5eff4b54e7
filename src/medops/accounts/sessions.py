"""Browser sessions: a random id in an HttpOnly cookie, its sha256 in the store, a CSRF token
derived from it, and an idle and an absolute time limit."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from medops.accounts.roles import Principal
from medops.audit import record
from medops.store import accounts as rows
from medops.store.repository import Store
from medops.store.schema import utcnow

IDLE_LIMIT = timedelta(minutes=30)  # a workstation left signed in
ABSOLUTE_LIMIT = timedelta(hours=12)  # one shift
_TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often


@dataclass(frozen=True)
class WebSession:
    id: str  # the cookie's value
    csrf: str  # the token every form of this session carries


def _sha256(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _csrf(session_id: str) -> str:
    """Bound to the session: a page from another origin can neither read nor compute it."""
    return hmac.new(session_id.encode(), b"medops csrf", hashlib.sha256).hexdigest()


def open_session(store: Store, principal: Principal) -> WebSession:
    """A new session for a signed-in user (``login`` has audited the sign-in)."""
    session_id = secrets.token_urlsafe(32)
    rows.insert_session(store, session_sha256=_sha256(session_id), user_id=principal.id)
    return WebSession(session_id, _csrf(session_id))


def session_principal(store: Store, session_id: str) -> tuple[Principal, str] | None:
    """The user and CSRF token of a live session; None when the id is unknown, signed out, idle
    or old past its limits, or its user was disabled since."""
    found = rows.session_by_sha256(store, _sha256(session_id))
    if found is None or found.ended_at is not None:
        return None
    now = utcnow()
    if now - found.last_seen_at > IDLE_LIMIT or now - found.created_at > ABSOLUTE_LIMIT:
        rows.update_session(store, found.id, ended_at=now)
        return None
    user = rows.user_by_id(store, found.user_id)
    if user is None or user.disabled:
        return None
    if now - found.last_seen_at > _TOUCH_EVERY:
        rows.update_session(store, found.id, last_seen_at=now)
    return Principal("user", user.id, user.name, user.role), _csrf(session_id)


def close_session(store: Store, session_id: str) -> None:
    """Sign out: the session ends now; audited as ``user.logout``."""
    found = rows.session_by_sha256(store, _sha256(session_id))
    if found is None or found.ended_at is not None:
        return
    rows.update_session(store, found.id, ended_at=utcnow())
    user = rows.user_by_id(store, found.user_id)
    if user is not None:
        record(store, "user.logout", f"user:{user.name}", {}, actor=f"user:{user.name}")
