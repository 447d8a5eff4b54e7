"""Rows of the dashboard's accounts (migration 0009): users, API tokens, web sessions and sign-in
attempts. Policy (hashing, roles, rate limits, auditing) lives in ``medops.accounts``."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from medops.errors import UserError
from medops.store.repository import Store
from medops.store.schema import ApiToken, LoginAttempt, SiteSecret, User, WebSession, utcnow


def _insert(store: Store, model: type, values: dict[str, Any], what: str) -> int:
    try:
        with store.session() as s:
            return s.execute(insert(model).values(**values).returning(model.id)).scalar_one()
    except IntegrityError:
        raise UserError(f"{what} {values['name']!r} already exists") from None


def insert_user(store: Store, **values: Any) -> int:
    return _insert(store, User, values, "a user named")


def user(store: Store, name: str) -> User | None:
    with store.session() as s:
        return s.scalars(select(User).where(User.name == name)).one_or_none()


def user_by_id(store: Store, user_id: int) -> User | None:
    with store.session() as s:
        return s.get(User, user_id)


def users(store: Store) -> list[User]:
    with store.session() as s:
        return list(s.scalars(select(User).order_by(User.name)))


def update_user(store: Store, user_id: int, **values: Any) -> None:
    with store.session() as s:
        s.execute(update(User).where(User.id == user_id).values(**values))


def delete_user(store: Store, user_id: int) -> None:
    """Delete an account row (its sessions go with it)."""
    with store.session() as s:
        s.execute(delete(WebSession).where(WebSession.user_id == user_id))
        s.execute(delete(User).where(User.id == user_id))


def insert_token(store: Store, **values: Any) -> int:
    return _insert(store, ApiToken, values, "a token named")


def token(store: Store, name: str) -> ApiToken | None:
    with store.session() as s:
        return s.scalars(select(ApiToken).where(ApiToken.name == name)).one_or_none()


def token_by_sha256(store: Store, sha256: str) -> ApiToken | None:
    with store.session() as s:
        return s.scalars(select(ApiToken).where(ApiToken.token_sha256 == sha256)).one_or_none()


def tokens(store: Store) -> list[ApiToken]:
    with store.session() as s:
        return list(s.scalars(select(ApiToken).order_by(ApiToken.id)))


def update_token(store: Store, token_id: int, **values: Any) -> None:
    with store.session() as s:
        s.execute(update(ApiToken).where(ApiToken.id == token_id).values(**values))


def live_tokens_of(store: Store, owner_id: int) -> list[ApiToken]:
    """The tokens an account owns that are not revoked."""
    with store.session() as s:
        query = select(ApiToken).where(ApiToken.owner_id == owner_id, ApiToken.revoked_at.is_(None))
        return list(s.scalars(query.order_by(ApiToken.id)))


def insert_session(store: Store, *, session_sha256: str, user_id: int) -> int:
    now = utcnow()
    with store.session() as s:
        values = {"session_sha256": session_sha256, "user_id": user_id, "created_at": now, "last_seen_at": now}
        return s.execute(insert(WebSession).values(**values).returning(WebSession.id)).scalar_one()


def session_by_sha256(store: Store, sha256: str) -> WebSession | None:
    with store.session() as s:
        return s.scalars(select(WebSession).where(WebSession.session_sha256 == sha256)).one_or_none()


def update_session(store: Store, session_id: int, **values: Any) -> None:
    with store.session() as s:
        s.execute(update(WebSession).where(WebSession.id == session_id).values(**values))


def end_user_sessions(store: Store, user_id: int) -> None:
    with store.session() as s:
        s.execute(
            update(WebSession)
            .where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
            .values(ended_at=utcnow())
        )


def add_attempt(store: Store, *, name: str, client: str, succeeded: bool) -> int:
    with store.session() as s:
        values = {"at": utcnow(), "name": name, "client": client, "succeeded": succeeded}
        return s.execute(insert(LoginAttempt).values(**values).returning(LoginAttempt.id)).scalar_one()


def delete_attempt(store: Store, attempt_id: int) -> None:
    with store.session() as s:
        s.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt_id))


def attempt_succeeded(store: Store, attempt_id: int) -> None:
    with store.session() as s:
        s.execute(update(LoginAttempt).where(LoginAttempt.id == attempt_id).values(succeeded=True))


def failures_since(store: Store, since: datetime, *, name: str | None = None, client: str | None = None) -> int:
    """Failed sign-ins since ``since`` for one account name, from one client, or both."""
    query = select(func.count()).select_from(LoginAttempt).where(LoginAttempt.at >= since, ~LoginAttempt.succeeded)
    if name is not None:
        query = query.where(LoginAttempt.name == name)
    if client is not None:
        query = query.where(LoginAttempt.client == client)
    with store.session() as s:
        return s.execute(query).scalar_one()


def failure_times(store: Store, since: datetime, *, name: str, client: str) -> list[datetime]:
    """When the sign-ins of one account from one client failed after ``since``, newest first."""
    query = select(LoginAttempt.at).where(
        LoginAttempt.at > since, ~LoginAttempt.succeeded, LoginAttempt.name == name, LoginAttempt.client == client
    )
    with store.session() as s:
        return list(s.scalars(query.order_by(LoginAttempt.id.desc())))


def last_success(store: Store, *, name: str, client: str) -> datetime | None:
    """When the account last signed in successfully from this client (None: never)."""
    query = select(func.max(LoginAttempt.at)).where(
        LoginAttempt.succeeded, LoginAttempt.name == name, LoginAttempt.client == client
    )
    with store.session() as s:
        found = s.execute(query).scalar_one()
    return found if found is None or found.tzinfo else found.replace(tzinfo=utcnow().tzinfo)


def site_secret(store: Store, name: str) -> bytes:
    """A random secret made once per store under ``name`` (read back by every process)."""
    with store.session() as s:
        found = s.get(SiteSecret, name)
        if found is not None:
            return bytes.fromhex(found.value)
    try:
        with store.session() as s:
            s.execute(insert(SiteSecret).values(name=name, value=secrets.token_hex(32)))
    except IntegrityError:  # another process made it first
        pass
    with store.session() as s:
        return bytes.fromhex(s.get(SiteSecret, name).value)
