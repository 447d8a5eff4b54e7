"""The audit trail's rows: appending one event to the hash chain, and reading the chain back.

An event's ``hash`` covers its sequence number, time, actor, action, target, the sha256 of its
details and the previous event's hash (see :func:`event_hash`), so editing, deleting or
reordering any stored event breaks the chain from that event on. Appends are serialised across
processes: on SQLite the append runs under ``BEGIN IMMEDIATE`` (the database's write lock), on
PostgreSQL under a transaction-scoped advisory lock; the last event is read and the new one
inserted inside that one transaction, so two processes never link to the same predecessor.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import OperationalError

from medops.errors import UserError
from medops.store.database import describe, exclusive_transaction
from medops.store.repository import Store
from medops.store.schema import AuditEvent, AuditTally

GENESIS = "0" * 64  # the prev_hash of the first event
HASHED_FIELDS = ("seq", "time", "actor", "action", "target", "details_sha256", "prev_hash", "key_id")
# pg_advisory_xact_lock key for appends: the same for every medops process
_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"medops audit trail").digest()[:8], "big", signed=True)
_TABLE = AuditEvent.__table__
_TALLIES = AuditTally.__table__


def canonical_json(value: Any) -> bytes:
    """The one serialisation every hash is taken over: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def details_sha256(details: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(details)).hexdigest()


def key_id(key: bytes) -> str:
    """A short public name for an HMAC key (it reveals nothing usable about the key)."""
    return hmac.new(key, b"medops audit key id", hashlib.sha256).hexdigest()[:16]


def event_hash(event: dict[str, Any], key: bytes | None) -> str:
    """sha256 (or HMAC-SHA256 with ``key``) of the canonical JSON of the event's hashed fields."""
    message = canonical_json({field: event[field] for field in HASHED_FIELDS})
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def clean_details(value: Any) -> Any:
    """Details as plain JSON (what the database gives back): tuples as lists, keys as text,
    non-finite floats and anything else as text."""
    if isinstance(value, dict):
        return {str(k): clean_details(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_details(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _append(connection: Any, *, actor: str, action: str, target: str, details: dict[str, Any], key: bytes | None):
    """Link one event to the last one and insert it (the caller holds the append lock)."""
    last = connection.execute(select(_TABLE.c.id, _TABLE.c.hash).order_by(_TABLE.c.id.desc()).limit(1)).first()
    event = {
        "seq": (last[0] + 1) if last else 1,
        "time": _now(),
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
        "details_sha256": details_sha256(details),
        "prev_hash": last[1] if last else GENESIS,
        "key_id": key_id(key) if key is not None else None,
    }
    event["hash"] = event_hash(event, key)
    connection.execute(insert(_TABLE), [_row(event)])
    return event


def _minute(time: str) -> str:
    return time[:16] + "Z"  # 2025-05-07T06:14:12.123456Z -> 2025-05-07T06:14Z


def _flush(connection: Any, key: bytes | None, before: str | None) -> int:
    """Append one event for each tally of a minute before ``before`` (every tally when None) that
    counted refusals after its first, with that count, and drop the tallies: in the append
    transaction, so a count is never written twice."""
    query = select(_TALLIES).order_by(_TALLIES.c.id)
    if before is not None:
        query = query.where(_TALLIES.c.minute < before)
    found = connection.execute(query).mappings().all()
    appended = 0
    for tally in found:
        if not tally["count"]:
            continue
        first = tally["details"] if isinstance(tally["details"], dict) else json.loads(tally["details"])
        extra = {
            "count": tally["count"],
            "minute": tally["minute"],
            "first": tally["first_at"],
            "last": tally["last_at"],
        }
        details = clean_details({**first, **extra})
        _append(
            connection, actor=tally["actor"], action=tally["action"], target=tally["target"], details=details, key=key
        )
        appended += 1
    if found:
        connection.execute(delete(_TALLIES).where(_TALLIES.c.id.in_([t["id"] for t in found])))
    return appended


def _locked(store: Store) -> Any:
    return exclusive_transaction(store.engine, _PG_LOCK_KEY)


def _write_error(store: Store, exc: OperationalError) -> UserError:
    return UserError(f"cannot write the audit trail in {describe(str(store.engine.url))}: {exc.orig}")


def append(
    store: Store, *, actor: str, action: str, target: str, details: dict[str, Any], key: bytes | None = None
) -> dict[str, Any]:
    """Append one event to the chain and return it as stored (the export form). Tallies of
    refusals from minutes that have passed are appended first, each as one event."""
    details = clean_details(details)
    try:
        with _locked(store) as connection:
            _flush(connection, key, _minute(_now()))
            return _append(connection, actor=actor, action=action, target=target, details=details, key=key)
    except OperationalError as exc:
        raise _write_error(store, exc) from None


def tally(
    store: Store,
    *,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any],
    bucket: tuple[str, ...],
    key: bytes | None = None,
) -> dict[str, Any] | None:
    """One refusal of (action, actor, target, ``bucket``): the first in a minute is appended at
    once (``count`` 1) and returned; the next ones in that minute are only counted, and become
    one event with their count once the minute has passed (:func:`flush`)."""
    details = clean_details({**details, "count": 1})
    now = _now()
    minute = _minute(now)
    name = json.dumps([action, actor, target, *bucket, minute], ensure_ascii=False)
    try:
        with _locked(store) as connection:
            _flush(connection, key, minute)
            found = connection.execute(select(_TALLIES.c.id).where(_TALLIES.c.bucket == name)).first()
            if found is not None:
                change = {"count": _TALLIES.c.count + 1, "first_at": func.coalesce(_TALLIES.c.first_at, now)}
                connection.execute(update(_TALLIES).where(_TALLIES.c.id == found[0]).values(**change, last_at=now))
                return None
            values = {"bucket": name, "minute": minute, "action": action, "actor": actor, "target": target}
            connection.execute(insert(_TALLIES), [{**values, "details": details, "count": 0, "first_at": None}])
            return _append(connection, actor=actor, action=action, target=target, details=details, key=key)
    except OperationalError as exc:
        raise _write_error(store, exc) from None


def flush(store: Store, *, key: bytes | None = None, everything: bool = False) -> int:
    """Append the tallies of the minutes that have passed (``everything``: this minute's too),
    one event each; returns how many were appended."""
    try:
        with _locked(store) as connection:
            return _flush(connection, key, None if everything else _minute(_now()))
    except OperationalError as exc:
        raise _write_error(store, exc) from None


def pending(store: Store) -> int:
    """Refusals counted in tallies not yet appended to the chain."""
    with store.engine.connect() as connection:
        return connection.execute(select(func.coalesce(func.sum(_TALLIES.c.count), 0))).scalar_one()


def _row(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": event["seq"],
        "created_at": event["time"],
        "actor": event["actor"],
        "action": event["action"],
        "target": event["target"],
        "details": event["details"],
        "details_sha256": event["details_sha256"],
        "prev_hash": event["prev_hash"],
        "hash": event["hash"],
        "key_id": event["key_id"],
    }


def events(store: Store, *, last: int | None = None, action: str | None = None) -> Iterator[dict[str, Any]]:
    """The stored events in sequence order (the newest ``last`` only, or those of one ``action``,
    when given), each in the export form: seq, time, actor, action, target, details,
    details_sha256, prev_hash, key_id, hash."""
    query = select(_TABLE).order_by(_TABLE.c.id)
    if action is not None:
        query = query.where(_TABLE.c.action == action)
    if last is not None:
        newest = select(_TABLE.c.id).order_by(_TABLE.c.id.desc()).limit(last).subquery()
        query = query.where(_TABLE.c.id.in_(select(newest.c.id)))
    with store.engine.connect() as connection:
        for row in connection.execute(query).mappings():
            details = row["details"]
            if isinstance(details, str):  # a driver that hands JSON back as text
                details = json.loads(details)
            yield {
                "seq": row["id"],
                "time": row["created_at"],
                "actor": row["actor"],
                "action": row["action"],
                "target": row["target"],
                "details": details,
                "details_sha256": row["details_sha256"],
                "prev_hash": row["prev_hash"],
                "key_id": row["key_id"],
                "hash": row["hash"],
            }
