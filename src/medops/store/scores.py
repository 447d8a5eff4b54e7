"""Monitored score series (``monitor_scores``): written by online grading (source ``online``, one
row per window, tag and metric) and canaries (source ``canary``, one row per compared metric);
read by ``monitor compare``, drift, alerts and the dashboard."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select

from medops.store.repository import Store
from medops.store.schema import MonitorScore, utcnow

SCORES = MonitorScore.__table__


def add_scores(store: Store, rows: Iterable[dict[str, Any]]) -> int:
    """Store score points in one transaction (column names as in ``MonitorScore``); returns how many."""
    batch = [{"created_at": utcnow(), "tag": "all", "n": 0, **row} for row in rows]
    if batch:
        with store.engine.begin() as connection:
            connection.execute(insert(SCORES), batch)
    return len(batch)


def scores(
    store: Store,
    *,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tag: str | None = None,
    metric: str | None = None,
    run_id: int | None = None,
) -> list[MonitorScore]:
    """Score points whose window starts in ``[since, until)``, oldest window first, detached."""
    query = select(MonitorScore)
    if source is not None:
        query = query.where(MonitorScore.source == source)
    if since is not None:
        query = query.where(MonitorScore.window_start >= since)
    if until is not None:
        query = query.where(MonitorScore.window_start < until)
    if tag is not None:
        query = query.where(MonitorScore.tag == tag)
    if metric is not None:
        query = query.where(MonitorScore.metric == metric)
    if run_id is not None:
        query = query.where(MonitorScore.run_id == run_id)
    query = query.order_by(MonitorScore.window_start, MonitorScore.id)
    with store.session() as s:
        return list(s.scalars(query))


def latest_scores(store: Store, *, source: str | None = None) -> list[MonitorScore]:
    """The points of the most recently written window (of ``source``), every tag and metric."""
    newest = select(func.max(MonitorScore.id))
    if source is not None:
        newest = newest.where(MonitorScore.source == source)
    with store.session() as s:
        last_id = s.scalar(newest)
        if last_id is None:
            return []
        last = s.get(MonitorScore, last_id)
        assert last is not None
        query = select(MonitorScore).where(
            MonitorScore.source == last.source,
            MonitorScore.window_start == last.window_start,
            MonitorScore.window_end == last.window_end,
        )
        query = query.where(MonitorScore.run_id == last.run_id) if last.run_id is not None else query
        return list(s.scalars(query.order_by(MonitorScore.id)))
