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

from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError

from medops.errors import UserError
from medops.store.database import describe, exclusive_transaction
from medops.store.repository import Store
from medops.store.schema import AuditEvent

GENESIS = "0" * 64  # the prev_hash of the first event
HASHED_FIELDS = ("seq", "time", "actor", "action", "target", "details_sha256", "prev_hash", "key_id")
# pg_advisory_xact_lock key for appends: the same for every medops process
_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"medops audit trail").digest()[:8], "big", signed=True)
_TABLE = AuditEvent.__table__


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


def append(
    store: Store, *, actor: str, action: str, target: str, details: dict[str, Any], key: bytes | None = None
) -> dict[str, Any]:
    """Append one event to the chain and return it as stored (the export form)."""
    details = clean_details(details)
    try:
        with exclusive_transaction(store.engine, _PG_LOCK_KEY) as connection:
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
    except OperationalError as exc:
        raise UserError(f"cannot write the audit trail in {describe(str(store.engine.url))}: {exc.orig}") from None
    return event


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


def events(store: Store, *, last: int | None = None) -> Iterator[dict[str, Any]]:
    """The stored events in sequence order (the newest ``last`` only, when given), each in the
    export form: seq, time, actor, action, target, details, details_sha256, prev_hash, key_id, hash."""
    query = select(_TABLE).order_by(_TABLE.c.id)
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
