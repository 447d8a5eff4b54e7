"""API tokens: random bearer secrets shown once, stored as sha256, each use audited.

Every token belongs to someone: a *user* token acts for one account (its role never above that
account's), a *service* token is owned by an admin; a token made from the shell without either
is owned by the site. Disabling, removing or changing the password of an account revokes every
token it owns (``revoke_owned``)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from medops.accounts.roles import ROLES, AuthError, Principal, check_name, check_role, rank
from medops.audit import record, refused
from medops.errors import UserError
from medops.store import accounts as rows
from medops.store.repository import Store
from medops.store.schema import ApiToken, User, utcnow

PREFIX = "medops_"  # recognisable in a leaked log or a secret scanner


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row(token: ApiToken, owners: dict[int, str]) -> dict[str, Any]:
    def when(value):
        return value.isoformat() if value else None

    return {
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "kind": token.kind,
        "owner": owners.get(token.owner_id) if token.owner_id is not None else None,
        "created_at": when(token.created_at),
        "created_by": token.created_by,
        "last_used_at": when(token.last_used_at),
        "revoked_at": when(token.revoked_at),
    }


def _owners(store: Store) -> dict[int, str]:
    return {user.id: user.name for user in rows.users(store)}


def tokens(store: Store) -> list[dict[str, Any]]:
    """Every token ever issued (never the secret): id, name, role, kind, owner, created, last
    used, revoked."""
    owners = _owners(store)
    return [_row(token, owners) for token in rows.tokens(store)]


def _account(store: Store, name: str, what: str) -> User:
    found = rows.user(store, name)
    if found is None:
        raise UserError(f"{what} {name!r}: no such user (medops users list shows them)")
    if found.disabled:
        raise UserError(f"{what} {name!r}: the account is disabled")
    return found


def create_token(
    store: Store, name: str, role: str, *, actor: str, user: str | None = None, owner: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Issue a token; returns the secret (shown once, then only its sha256 is kept) and its row.
    ``user``: the token acts for that account (role at most the account's); ``owner``: a service
    token owned by that admin; neither: a site token (made from the shell)."""
    check_name(name, "token")
    check_role(role)
    if user is not None and owner is not None:
        raise UserError("a token acts for a user or is a service token owned by an admin, not both")
    kind, account = "service", None
    if user is not None:
        kind, account = "user", _account(store, user, "--user")
        if rank(role) > rank(account.role):
            raise UserError(f"a token for {user} cannot have the {role} role: {user} is {account.role}")
    elif owner is not None:
        account = _account(store, owner, "--owner")
        if account.role != ROLES[-1]:
            raise UserError(f"--owner {owner!r}: a service token is owned by an admin; {owner} is {account.role}")
    secret = PREFIX + secrets.token_urlsafe(32)
    token_id = rows.insert_token(
        store,
        name=name,
        role=role,
        token_sha256=_sha256(secret),
        created_at=utcnow(),
        created_by=actor,
        owner_id=account.id if account else None,
        kind=kind,
    )
    details = {"name": name, "role": role, "kind": kind, "owner": account.name if account else None}
    record(store, "token.created", f"token:{token_id}", details, actor=actor)
    return secret, _row(rows.token(store, name), _owners(store))


def revoke_token(store: Store, name: str, *, actor: str) -> None:
    """Revoke a token by name: it is refused from the next request on; audited."""
    found = rows.token(store, name)
    if found is None:
        raise UserError(f"no token named {name!r} (medops tokens list shows them)")
    if found.revoked_at is None:
        rows.update_token(store, found.id, revoked_at=utcnow(), revoked_by=actor)
    record(store, "token.revoked", f"token:{found.id}", {"name": name}, actor=actor)


def revoke_owned(store: Store, user: User, why: str, *, actor: str) -> int:
    """Revoke every live token the account owns (``why``: its owner was disabled, removed, or
    changed password), each audited as ``token.revoked``; returns how many."""
    owned = rows.live_tokens_of(store, user.id)
    for token in owned:
        rows.update_token(store, token.id, revoked_at=utcnow(), revoked_by=actor)
        details = {"name": token.name, "reason": f"{why}: {user.name}"}
        record(store, "token.revoked", f"token:{token.id}", details, actor=actor)
    return len(owned)


def _refuse(store: Store, found: ApiToken | None, reason: str, *, route: str, client: str) -> AuthError:
    target = f"token:{found.id}" if found is not None else "token:unknown"
    details = {"route": route, "client": client, "reason": reason}
    refused(store, "token.refused", target, details, actor=f"client:{client}", reason=reason)
    return AuthError("invalid or revoked API token")


def token_principal(store: Store, token: str, *, route: str, client: str = "unknown") -> Principal:
    """The caller a bearer token stands for (AuthError 401 when unknown, revoked, or its owner
    is gone or disabled); each use is audited as ``token.used`` with the route, refusals as
    ``token.refused`` (the route, the client and why; never the token), at most two events per
    client, token, reason and minute with a count (``medops.audit.refused``)."""
    found = rows.token_by_sha256(store, _sha256(token)) if token.startswith(PREFIX) else None
    if found is None or found.revoked_at is not None:
        raise _refuse(store, found, "unknown" if found is None else "revoked", route=route, client=client)
    role, owner = found.role, None
    if found.owner_id is not None:
        account = rows.user_by_id(store, found.owner_id)
        if account is None or account.disabled:
            raise _refuse(store, found, "owner disabled or removed", route=route, client=client)
        owner = account.name
        if found.kind == "user" and rank(account.role) < rank(role):
            role = account.role  # never more than the account it acts for
    rows.update_token(store, found.id, last_used_at=utcnow())
    principal = Principal("token", found.id, found.name, role, owner)
    record(store, "token.used", f"token:{found.id}", {"route": route}, actor=principal.actor)
    return principal
