"""API tokens: random bearer secrets shown once, stored as sha256, each use audited."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from medops.accounts.roles import AuthError, Principal, check_name, check_role
from medops.audit import record
from medops.errors import UserError
from medops.store import accounts as rows
from medops.store.repository import Store
from medops.store.schema import ApiToken, utcnow

PREFIX = "medops_"  # recognisable in a leaked log or a secret scanner


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row(token: ApiToken) -> dict[str, Any]:
    def when(value):
        return value.isoformat() if value else None

    return {
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "created_at": when(token.created_at),
        "created_by": token.created_by,
        "last_used_at": when(token.last_used_at),
        "revoked_at": when(token.revoked_at),
    }


def tokens(store: Store) -> list[dict[str, Any]]:
    """Every token ever issued (never the secret): id, name, role, created, last used, revoked."""
    return [_row(token) for token in rows.tokens(store)]


def create_token(store: Store, name: str, role: str, *, actor: str) -> tuple[str, dict[str, Any]]:
    """Issue a token; returns the secret (shown once, then only its sha256 is kept) and its row."""
    check_name(name, "token")
    check_role(role)
    secret = PREFIX + secrets.token_urlsafe(32)
    token_id = rows.insert_token(
        store, name=name, role=role, token_sha256=_sha256(secret), created_at=utcnow(), created_by=actor
    )
    record(store, "token.created", f"token:{token_id}", {"name": name, "role": role}, actor=actor)
    return secret, _row(rows.token(store, name))


def revoke_token(store: Store, name: str, *, actor: str) -> None:
    """Revoke a token by name: it is refused from the next request on; audited."""
    found = rows.token(store, name)
    if found is None:
        raise UserError(f"no token named {name!r} (medops tokens list shows them)")
    if found.revoked_at is None:
        rows.update_token(store, found.id, revoked_at=utcnow(), revoked_by=actor)
    record(store, "token.revoked", f"token:{found.id}", {"name": name}, actor=actor)


def token_principal(store: Store, token: str, *, route: str, client: str = "unknown") -> Principal:
    """The caller a bearer token stands for (AuthError 401 when unknown or revoked); each use is
    audited as ``token.used`` with the route, each refusal as ``token.refused`` (the route, the
    client and why; never the token)."""
    found = rows.token_by_sha256(store, _sha256(token)) if token.startswith(PREFIX) else None
    if found is None or found.revoked_at is not None:
        target = f"token:{found.id}" if found is not None else "token:unknown"
        details = {"route": route, "client": client, "reason": "unknown" if found is None else "revoked"}
        record(store, "token.refused", target, details, actor=f"client:{client}")
        raise AuthError("invalid or revoked API token")
    rows.update_token(store, found.id, last_used_at=utcnow())
    principal = Principal("token", found.id, found.name, found.role)
    record(store, "token.used", f"token:{found.id}", {"route": route}, actor=principal.actor)
    return principal
