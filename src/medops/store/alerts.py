"""Alert history (``alerts``): written by ``medops monitor check`` when a rule fires, read back for
its cooldown (the last alert with the same key) and by ``medops monitor alerts``."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from medops.store.database import exclusive_transaction
from medops.store.repository import Store
from medops.store.schema import Alert, utcnow

ALERTS = Alert.__table__
# pg_advisory_xact_lock key for firing: the same for every medops process
_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"medops alerts").digest()[:8], "big", signed=True)


def fire_alert(
    store: Store,
    *,
    rule: str,
    key: str,
    message: str,
    quiet_after: datetime,
    severity: str = "warning",
    details: dict[str, Any] | None = None,
    created_at: datetime | None = None,
) -> tuple[int, bool]:
    """Store an alert unless one with the same key was created after ``quiet_after`` (its
    cooldown): ``(new id, True)``, or ``(that alert's id, False)``. Reading the last alert and
    inserting are one transaction under a store-wide lock, so two ``monitor check`` runs at once
    fire a key once."""
    with exclusive_transaction(store.engine, _PG_LOCK_KEY) as connection:
        last = connection.execute(
            select(ALERTS.c.id, ALERTS.c.created_at)
            .where(ALERTS.c.key == key)
            .order_by(ALERTS.c.created_at.desc(), ALERTS.c.id.desc())
            .limit(1)
        ).first()
        if last is not None and last.created_at > quiet_after:  # both aware (UtcDateTime)
            return int(last.id), False
        row = {
            "created_at": created_at or utcnow(),
            "rule": rule,
            "key": key,
            "severity": severity,
            "message": message,
            "details": details,
            "deliveries": [],
        }
        return int(connection.execute(insert(ALERTS).values(**row)).inserted_primary_key[0]), True


def set_deliveries(store: Store, alert_id: int, deliveries: list[dict[str, Any]]) -> None:
    """Record what was sent where (``[{"webhook": name, "ok": ..., "status": ..., "error": ...}]``)."""
    with store.engine.begin() as connection:
        connection.execute(update(ALERTS).where(ALERTS.c.id == alert_id).values(deliveries=deliveries))


def last_alert(store: Store, key: str) -> Alert | None:
    """The most recent alert with this de-duplication key, detached (None: it never fired)."""
    query = select(Alert).where(Alert.key == key).order_by(Alert.created_at.desc(), Alert.id.desc()).limit(1)
    with store.session() as s:
        return s.scalars(query).first()


def alerts(store: Store, *, since: datetime | None = None, limit: int | None = None) -> list[Alert]:
    """Alerts created at or after ``since``, newest first, detached."""
    query = select(Alert)
    if since is not None:
        query = query.where(Alert.created_at >= since)
    query = query.order_by(Alert.created_at.desc(), Alert.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with store.session() as s:
        return list(s.scalars(query))


def acknowledge(store: Store, alert_id: int, *, by: str) -> bool:
    """Mark an alert acknowledged (the first acknowledgement stands); False when there is no such alert."""
    with store.session() as s:
        found = s.get(Alert, alert_id)
        if found is None:
            return False
        if found.acknowledged_at is None:
            found.acknowledged_at, found.acknowledged_by = utcnow(), by
        return True
