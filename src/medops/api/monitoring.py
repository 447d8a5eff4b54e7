"""Production at a glance for the dashboard: score series, drift, and alerts (acknowledged, audited)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from medops.api.formatting import iso, moment
from medops.api.runs import StoreRef, open_store
from medops.audit import record
from medops.errors import NotFound
from medops.monitor.drift import drift_table
from medops.monitor.windows import parse_duration
from medops.reports.plots import time_series
from medops.store.alerts import acknowledge
from medops.store.alerts import alerts as alert_history
from medops.store.scores import scores as monitor_scores


def alerts(
    *, db: StoreRef = None, since: str | datetime | None = None, limit: int | None = 200
) -> list[dict[str, Any]]:
    """Fired monitor alerts, newest first, with who acknowledged them and when."""
    return [
        {
            "id": a.id,
            "created_at": iso(a.created_at),
            "rule": a.rule,
            "key": a.key,
            "severity": a.severity,
            "message": a.message,
            "details": a.details or {},
            "deliveries": a.deliveries or [],
            "acknowledged_at": iso(a.acknowledged_at),
            "acknowledged_by": a.acknowledged_by,
        }
        for a in alert_history(open_store(db), since=moment(since), limit=limit)
    ]


def acknowledge_alert(db: StoreRef, alert_id: int, *, actor: str) -> None:
    """Mark an alert seen by ``actor`` (the first acknowledgement stands); audited as ``alert.acknowledged``."""
    store = open_store(db)
    if not acknowledge(store, alert_id, by=actor):
        raise NotFound(f"no alert {alert_id} (medops monitor alerts lists them)")
    record(store, "alert.acknowledged", f"alert:{alert_id}", {"alert_id": alert_id}, actor=actor)


def monitoring(
    *, db: StoreRef = None, since: str | datetime | None = None, window: str = "1d", reference: str = "7d"
) -> dict[str, Any]:
    """Production at a glance: every online / canary score series (points oldest first, each
    marked ``drop`` when a canary round was significantly worse than its baseline), the alerts,
    the drift table of the last ``window`` against the ``reference`` before it, and a chart (SVG)
    of each headline series (overall score, accuracy) with the alerts marked."""
    store = open_store(db)
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for point in monitor_scores(store, since=moment(since)):
        if point.source not in ("online", "canary"):
            continue
        details = point.details or {}
        series.setdefault((point.source, point.tag, point.metric), []).append(
            {
                "window_start": iso(point.window_start),
                "window_end": iso(point.window_end),
                "value": point.value,
                "n": point.n,
                "run_id": point.run_id,
                "baseline_run_id": details.get("baseline_run_id"),
                "difference": details.get("difference"),
                "p_holm": details.get("p_holm"),
                "drop": bool(details.get("significant")) and (details.get("difference") or 0) < 0,
            }
        )
    drift = drift_table(store, window=parse_duration(window), reference=parse_duration(reference), min_samples=20)
    fired = alerts(db=store)
    alert_times = [a["created_at"] for a in fired if a["created_at"]]
    charts = [  # the headline series, with the alerts as markers
        time_series(f"{source} · {metric} · {tag}", points, alert_times)
        for (source, tag, metric), points in sorted(series.items())
        if metric in ("overall_score", "accuracy")
    ]
    return {
        "series": [
            {"source": source, "tag": tag, "metric": metric, "points": points}
            for (source, tag, metric), points in sorted(series.items())
        ],
        "alerts": fired,
        "drift": drift,
        "charts": [c for c in charts if c],
    }
