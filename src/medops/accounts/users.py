"""Dashboard users: Argon2 password hashes (pwdlib), sign-in with rate limiting, disabling, and
sign-in through single sign-on (the role mapped from the identity provider's claims)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from pwdlib import PasswordHash

from medops.accounts.roles import AuthError, Principal, check_name, check_role
from medops.audit import record
from medops.errors import UserError
from medops.store import accounts as rows
from medops.store.repository import Store
from medops.store.schema import User, utcnow

MIN_PASSWORD_LENGTH = 10
# Sign-in rate limits, counted in the store so that every server process shares them.
LOCK_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_CLIENT = 20

_hasher = PasswordHash.recommended()  # Argon2id with the library's recommended cost
# Verified against when the name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("medops: no such user")
REFUSED = "wrong user name or password"


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _row(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "role": user.role,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
        "created_by": user.created_by,
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


def users(store: Store) -> list[dict[str, Any]]:
    """Every account by name: role, disabled, created (when, by whom), last sign-in."""
    return [_row(user) for user in rows.users(store)]


def _existing(store: Store, name: str) -> User:
    found = rows.user(store, name)
    if found is None:
        raise UserError(f"no user named {name!r} (medops users list shows them)")
    return found


def add_user(store: Store, name: str, role: str, password: str, *, actor: str) -> dict[str, Any]:
    """Create an account; audited as ``user.created`` (name and role, never the password)."""
    check_name(name, "user")
    check_role(role)
    now = utcnow()
    rows.insert_user(
        store,
        name=name,
        role=role,
        password_hash=_hasher.hash(_check_password(password)),
        disabled=False,
        created_at=now,
        created_by=actor,
        password_changed_at=now,
    )
    record(store, "user.created", f"user:{name}", {"role": role}, actor=actor)
    return _row(_existing(store, name))


def disable_user(store: Store, name: str, *, actor: str) -> None:
    """Disable an account and end its sessions (it can no longer sign in); audited."""
    user = _existing(store, name)
    rows.update_user(store, user.id, disabled=True)
    rows.end_user_sessions(store, user.id)
    record(store, "user.disabled", f"user:{name}", {}, actor=actor)


def set_password(store: Store, name: str, password: str, *, actor: str) -> None:
    """Replace a password and end the account's sessions; audited (without the password)."""
    user = _existing(store, name)
    new_hash = _hasher.hash(_check_password(password))
    rows.update_user(store, user.id, password_hash=new_hash, password_changed_at=utcnow())
    rows.end_user_sessions(store, user.id)
    record(store, "user.password_changed", f"user:{name}", {}, actor=actor)


def _failed(store: Store, name: str, client: str, reason: str) -> None:
    details = {"client": client, "reason": reason}
    record(store, "user.login_failed", f"user:{name}", details, actor=f"client:{client}")


def login(store: Store, name: str, password: str, *, client: str) -> Principal:
    """Check a name and password. Refused (AuthError 401, the same message whatever was wrong)
    for an unknown name, a wrong password or a disabled account; 429 after too many failures
    for this name or from this client in the last 15 minutes. Each attempt is audited."""
    name = name[:100]
    since = utcnow() - LOCK_WINDOW
    # Counted as a failure before the (slow) password check and counted with the others after it:
    # of attempts sent at once, only the first few by insertion are checked, however many arrive.
    attempt = rows.add_attempt(store, name=name, client=client, succeeded=False)
    if (
        rows.failures_since(store, since, name=name) > MAX_FAILURES_PER_NAME
        or rows.failures_since(store, since, client=client) > MAX_FAILURES_PER_CLIENT
    ):
        _failed(store, name, client, "rate limited")
        raise AuthError("too many failed sign-ins: try again in 15 minutes", status=429)
    user = rows.user(store, name)
    matched = _hasher.verify(password, user.password_hash if user is not None else _DUMMY_HASH)
    if user is None or not matched or user.disabled:
        reason = "unknown user" if user is None else ("wrong password" if not matched else "account disabled")
        _failed(store, name, client, reason)
        raise AuthError(REFUSED)
    rows.attempt_succeeded(store, attempt)
    rows.update_user(store, user.id, last_login_at=utcnow())
    principal = Principal("user", user.id, user.name, user.role)
    record(store, "user.login", f"user:{name}", {"client": client}, actor=principal.actor)
    return principal


def sso_failed(store: Store, name: str | None, reason: str, *, issuer: str, client: str) -> None:
    """Audit a refused single sign-on (``user.login_failed`` with via oidc, the issuer and why).
    Not counted toward the password rate limits: the identity provider holds the credentials."""
    details = {"client": client, "reason": reason, "via": "oidc", "issuer": issuer}
    target = f"user:{name[:100]}" if name else f"oidc:{issuer}"
    record(store, "user.login_failed", target, details, actor=f"client:{client}")


def sso_login(store: Store, name: str, role: str, *, issuer: str, client: str) -> Principal:
    """A sign-in through single sign-on: the identity provider ``issuer`` authenticated ``name``
    and its roles map to ``role``. The account is created at the first sign-in (``user.created``;
    its password is a random one nobody knows, so only single sign-on opens it) and takes the
    mapped role at each sign-in (``user.role_changed`` when it differs). A disabled account is
    refused (AuthError 403, audited). Audited as ``user.login`` via oidc."""
    check_name(name, "user")
    check_role(role)
    user = rows.user(store, name)
    actor = f"user:{name}"
    if user is None:
        now = utcnow()
        rows.insert_user(
            store,
            name=name,
            role=role,
            password_hash=_hasher.hash(secrets.token_urlsafe(32)),
            disabled=False,
            created_at=now,
            created_by=f"oidc:{issuer}",
            password_changed_at=now,
        )
        record(store, "user.created", actor, {"role": role, "via": "oidc", "issuer": issuer}, actor=actor)
        user = _existing(store, name)
    elif user.disabled:
        sso_failed(store, name, "account disabled", issuer=issuer, client=client)
        raise AuthError("this account is disabled in medops: ask an administrator", status=403)
    elif user.role != role:
        rows.update_user(store, user.id, role=role)
        details = {"from": user.role, "to": role, "via": "oidc", "issuer": issuer}
        record(store, "user.role_changed", actor, details, actor=actor)
    rows.update_user(store, user.id, last_login_at=utcnow())
    principal = Principal("user", user.id, user.name, role)
    record(store, "user.login", actor, {"client": client, "via": "oidc", "issuer": issuer}, actor=actor)
    return principal
