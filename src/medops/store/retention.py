"""Retention: counting and deleting what is older than a cut-off (``medops store prune``; the
rules, the protection of referenced runs and the audit event are in ``medops.ops.retention``).

Exchanges go by ``created_at`` (when the request arrived), score rows by ``window_end`` (the
time they describe), runs by ``created_at``. A run is deleted with its responses, grades and
answers; the score rows that named it keep their numbers, with ``run_id`` NULL.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, func, select, update

from medops.store.repository import Store
from medops.store.schema import Answer, Exchange, Grade, MonitorScore, Response, Run


def count_exchanges_before(store: Store, before: datetime) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(Exchange).where(Exchange.created_at < before)) or 0)


def delete_exchanges_before(store: Store, before: datetime) -> int:
    with store.session() as s:
        return int(s.execute(delete(Exchange).where(Exchange.created_at < before)).rowcount or 0)


def count_scores_before(store: Store, before: datetime) -> int:
    with store.session() as s:
        query = select(func.count()).select_from(MonitorScore).where(MonitorScore.window_end < before)
        return int(s.scalar(query) or 0)


def delete_scores_before(store: Store, before: datetime) -> int:
    with store.session() as s:
        return int(s.execute(delete(MonitorScore).where(MonitorScore.window_end < before)).rowcount or 0)


def scored_runs_before(store: Store, source: str, before: datetime) -> list[int]:
    """Runs created before ``before`` that a ``source`` score row names (canary rounds, online grading)."""
    named = select(MonitorScore.run_id).where(MonitorScore.source == source, MonitorScore.run_id.is_not(None))
    with store.session() as s:
        return sorted(s.scalars(select(Run.id).where(Run.id.in_(named), Run.created_at < before)))


def delete_runs(store: Store, run_ids: Collection[int]) -> int:
    """Delete runs with their rows, in one transaction (explicitly, not by the foreign keys' cascade)."""
    ids = sorted(run_ids)
    if not ids:
        return 0
    with store.session() as s:
        for table in (Answer, Grade, Response):
            s.execute(delete(table).where(table.run_id.in_(ids)))
        s.execute(update(MonitorScore).where(MonitorScore.run_id.in_(ids)).values(run_id=None))
        return int(s.execute(delete(Run).where(Run.id.in_(ids))).rowcount or 0)
