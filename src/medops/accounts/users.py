"""Dashboard users: Argon2 password hashes (pwdlib), sign-in with rate limiting, disabling and
removing, and sign-in through single sign-on (the role mapped from the identity provider's claims).

Sign-in limits are counted in the store (every server process shares them) per account *and*
client address, with backoff, so that guessing from one address never locks the account out at
another: 5 failures of an account from one address, then each further try from that address
waits 1, 2, 4, 8, then 15 minutes after the last failure. An address the account has not signed
in from in the last 30 days is also refused while the account has more than 5 failures in 15
minutes from anywhere (guessing from many addresses); an address it has signed in from is not.
Any address is refused after 20 failures in 15 minutes, whatever the names.

A failed sign-in never records what was typed as the name unless it names an account: the
trail gets that account (``user:<name>``, ``user_id``), or ``user:unknown`` with a keyed hash of
what was typed (``name_hmac``: HMAC-SHA256 under ``MEDOPS_AUDIT_KEY``, else under a random
secret kept in the store), so a password typed into the name field or a patient's name never
stays in the append-only trail."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from functools import cache
from typing import Any

from pwdlib import PasswordHash

from medops.accounts.roles import AuthError, Principal, check_name, check_role
from medops.accounts.tokens import revoke_owned
from medops.audit import audit_key, record, refused
from medops.errors import UserError
from medops.store import accounts as rows
from medops.store.repository import Store
from medops.store.schema import User, utcnow

MIN_PASSWORD_LENGTH = 10
# Sign-in rate limits, counted in the store so that every server process shares them.
LOCK_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ADDRESS = 5  # of one account from one client address, before the backoff
FIRST_BACKOFF = timedelta(minutes=1)  # doubled at each further failure, at most LOCK_WINDOW
MAX_FAILURES_PER_NAME = 5  # of one account from anywhere, for addresses it has not signed in from
TRUSTED_FOR = timedelta(days=30)  # an address the account signed in from stays exempt from that limit
MAX_FAILURES_PER_CLIENT = 20  # from one address, whatever the names
UNKNOWN = "unknown"  # the name kept for a sign-in whose name is no account

_hasher = PasswordHash.recommended()  # Argon2id with the library's recommended cost
REFUSED = "wrong user name or password"


@cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so a wrong name takes as long as a wrong password;
    made on first use (an Argon2 hash costs ~0.1 s, at the start of every command otherwise)."""
    return _hasher.hash("medops: no such user")


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
    revoked = revoke_owned(store, user, "owner disabled", actor=actor)
    record(store, "user.disabled", f"user:{name}", {"tokens_revoked": revoked}, actor=actor)


def remove_user(store: Store, name: str, *, actor: str) -> None:
    """Remove an account: its tokens are revoked, its sessions end and the account is deleted;
    audited as ``user.removed``. What it did stays in the audit trail (by ``user:<name>``)."""
    user = _existing(store, name)
    revoked = revoke_owned(store, user, "owner removed", actor=actor)
    rows.delete_user(store, user.id)
    record(store, "user.removed", f"user:{name}", {"role": user.role, "tokens_revoked": revoked}, actor=actor)


def set_password(store: Store, name: str, password: str, *, actor: str) -> None:
    """Replace a password and end the account's sessions; audited (without the password)."""
    user = _existing(store, name)
    new_hash = _hasher.hash(_check_password(password))
    rows.update_user(store, user.id, password_hash=new_hash, password_changed_at=utcnow())
    rows.end_user_sessions(store, user.id)
    revoked = revoke_owned(store, user, "owner's password changed", actor=actor)
    record(store, "user.password_changed", f"user:{name}", {"tokens_revoked": revoked}, actor=actor)


def name_hmac(store: Store, typed: str) -> str:
    """A keyed hash of a typed name that is no account: the same typo reads the same, and
    nobody without the key can test guesses against it."""
    key = audit_key() or rows.site_secret(store, "sign-in names")
    return hmac.new(key, b"medops sign-in name\0" + typed.encode(), hashlib.sha256).hexdigest()


def _failed(store: Store, user: User | None, typed: str, client: str, reason: str) -> None:
    details: dict[str, Any] = {"client": client, "reason": reason}
    if user is not None:
        details["user_id"] = user.id
        target = f"user:{user.name}"
    else:
        details["name_hmac"] = name_hmac(store, typed)
        target = f"user:{UNKNOWN}"
    refused(store, "user.login_failed", target, details, actor=f"client:{client}", reason=reason)


def _locked_for(store: Store, user: User | None, client: str) -> timedelta | None:
    """How long this client must wait before trying this account again (None: it may try now).
    The attempt being made is already counted as a failure (and dropped again when refused
    here); a successful sign-in from the client clears its count for the account."""
    now = utcnow()
    since = now - LOCK_WINDOW
    if rows.failures_since(store, since, client=client) > MAX_FAILURES_PER_CLIENT:
        return LOCK_WINDOW
    name = user.name if user is not None else UNKNOWN
    succeeded = rows.last_success(store, name=name, client=client) if user is not None else None
    times = rows.failure_times(store, max(since, succeeded) if succeeded else since, name=name, client=client)
    if len(times) > MAX_FAILURES_PER_ADDRESS:
        backoff = min(FIRST_BACKOFF * 2 ** (len(times) - MAX_FAILURES_PER_ADDRESS - 1), LOCK_WINDOW)
        wait = times[1] + backoff - now  # times[0] is this attempt
        if wait > timedelta(0):
            return wait
    trusted = succeeded is not None and succeeded >= now - TRUSTED_FOR
    if user is not None and not trusted and rows.failures_since(store, since, name=name) > MAX_FAILURES_PER_NAME:
        return LOCK_WINDOW
    return None


def _minutes(wait: timedelta) -> str:
    minutes = max(1, -(-int(wait.total_seconds()) // 60))
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


def login(store: Store, name: str, password: str, *, client: str) -> Principal:
    """Check a name and password. Refused (AuthError 401, the same message whatever was wrong)
    for an unknown name, a wrong password or a disabled account; 429 while this client is locked
    out of this account (see the module's docstring). Each refusal is audited, aggregated per
    client and minute (``medops.audit.refused``); never with what was typed as the name."""
    name = name[:100]
    user = rows.user(store, name)
    # Counted as a failure before the (slow) password check and counted with the others after it:
    # of attempts sent at once, only the first few by insertion are checked, however many arrive.
    attempt = rows.add_attempt(store, name=user.name if user else UNKNOWN, client=client, succeeded=False)
    wait = _locked_for(store, user, client)
    if wait is not None:
        rows.delete_attempt(store, attempt)  # no password was checked: waiting it out is enough
        _failed(store, user, name, client, "rate limited")
        raise AuthError(f"too many failed sign-ins: try again in {_minutes(wait)}", status=429)
    matched = _hasher.verify(password, user.password_hash if user is not None else _dummy_hash())
    if user is None or not matched or user.disabled:
        reason = "unknown user" if user is None else ("wrong password" if not matched else "account disabled")
        _failed(store, user, name, client, reason)
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
