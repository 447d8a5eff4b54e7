"""Reading the monitored score series (``monitor_scores``) for the gateway's ``/metrics`` gauge.
The rows are written by online grading and canaries; this module only reads them."""

from __future__ import annotations

from sqlalchemy import func, select

from medops.store.repository import Store
from medops.store.schema import MonitorScore


def latest_scores(store: Store, *, source: str = "online") -> list[tuple[str, str, float]]:
    """The newest value of every (tag, metric) series of ``source``: ``[(tag, metric, value)]``."""
    newest = (
        select(MonitorScore.tag, MonitorScore.metric, func.max(MonitorScore.id).label("id"))
        .where(MonitorScore.source == source, MonitorScore.value.is_not(None))
        .group_by(MonitorScore.tag, MonitorScore.metric)
        .subquery()
    )
    query = select(MonitorScore.tag, MonitorScore.metric, MonitorScore.value).join(
        newest, MonitorScore.id == newest.c.id
    )
    with store.session() as s:
        return [(tag, metric, float(value)) for tag, metric, value in s.execute(query)]
