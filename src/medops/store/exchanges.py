"""Production exchanges (``exchanges``): written in batches by the gateway's recorder and by
``monitor ingest``, read by ``monitor traffic``, online grading, drift and the dashboard."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from medops.store.repository import Store
from medops.store.schema import Exchange, utcnow

EXCHANGES = Exchange.__table__


def insert_exchanges(store: Store, rows: Iterable[dict[str, Any]]) -> int:
    """Store exchanges in one transaction (column names as in ``Exchange``); returns how many.
    Rows may name different columns: what a row leaves out is NULL (or the column's default)."""
    batch = [{"created_at": utcnow(), "arm": "primary", "stream": False, **row} for row in rows]
    columns = set().union(*batch) if batch else set()
    if any(len(row) != len(columns) for row in batch):  # one executemany needs the same keys in every row
        batch = [dict.fromkeys(columns) | row for row in batch]
    if batch:
        with store.engine.begin() as connection:
            connection.execute(_insert(store.engine.dialect.name, "record_id" in columns), batch)
    return len(batch)


def _insert(dialect: str, keyed: bool) -> Any:
    """The INSERT: rows with a ``record_id`` already stored are skipped (a write retried after
    an outage whose first attempt had in fact committed), on SQLite and PostgreSQL."""
    if keyed and dialect in ("sqlite", "postgresql"):
        dialects = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}
        return dialects[dialect](EXCHANGES).on_conflict_do_nothing(index_elements=["record_id"])
    return insert(EXCHANGES)


def exchanges(
    store: Store,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    arm: str | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[Exchange]:
    """Exchanges in ``[since, until)``, oldest first (or newest first), detached from the session."""
    query = select(Exchange)
    if since is not None:
        query = query.where(Exchange.created_at >= since)
    if until is not None:
        query = query.where(Exchange.created_at < until)
    if arm is not None:
        query = query.where(Exchange.arm == arm)
    order = Exchange.created_at.desc() if newest_first else Exchange.created_at
    query = query.order_by(order, Exchange.id.desc() if newest_first else Exchange.id)
    if limit is not None:
        query = query.limit(limit)
    with store.session() as s:
        return list(s.scalars(query))


def count_exchanges(store: Store, *, since: datetime | None = None, until: datetime | None = None) -> int:
    query = select(func.count()).select_from(Exchange)
    if since is not None:
        query = query.where(Exchange.created_at >= since)
    if until is not None:
        query = query.where(Exchange.created_at < until)
    with store.session() as s:
        return int(s.scalar(query) or 0)


def count_by_arm(store: Store, *, since: datetime | None = None) -> dict[str, int]:
    """Exchanges since ``since`` per arm (primary, candidate, shadow), the arms present only."""
    query = select(Exchange.arm, func.count()).group_by(Exchange.arm).order_by(Exchange.arm)
    if since is not None:
        query = query.where(Exchange.created_at >= since)
    with store.session() as s:
        return {arm: int(n) for arm, n in s.execute(query)}
