"""Retention (``medops store prune``, and the ``retention`` block of a monitor policy that
``monitor check`` applies each round): production exchanges, monitor score rows and the runs
canary rounds and online grading made, each older than its own limit, are deleted and the
counts recorded in the audit trail (``store.prune``).

A run a gate decision names (as the run or its baseline, in the trail's ``gate.decision``
events) or a review set was sampled from is never deleted: it is counted as kept. Runs go
before score rows, because a run is known to be a canary's or online grading's by the score
rows that name it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from medops.audit import trail
from medops.monitor.windows import format_duration
from medops.store import retention as rows
from medops.store.repository import Store
from medops.store.schema import ReviewSet


@dataclass(frozen=True)
class Retention:
    """How long each kind of record is kept (None: kept for ever)."""

    exchanges: timedelta | None = None
    scores: timedelta | None = None
    canary_runs: timedelta | None = None
    online_runs: timedelta | None = None

    def limits(self) -> dict[str, str]:
        return {k: format_duration(v) for k, v in asdict(self).items() if v is not None}


def protected_runs(store: Store) -> set[int]:
    """Runs a gate decision or a review set refers to."""
    protected: set[int] = set()
    for event in trail.events(store):
        if event["action"] == "gate.decision":
            for key in ("run_id", "baseline_run_id"):
                if isinstance(event["details"].get(key), int):
                    protected.add(event["details"][key])
    with store.session() as s:
        protected.update(s.scalars(select(ReviewSet.run_id)))
    return protected


def prune(
    store: Store, retention: Retention, *, dry_run: bool = False, now: datetime | None = None, actor: str | None = None
) -> dict[str, Any]:
    """Delete (or with ``dry_run`` only count) what ``retention`` no longer keeps; returns the
    counts by kind, the runs kept because something refers to them, and the cut-offs. A real
    prune is one ``store.prune`` audit event with the same counts."""
    now = now or datetime.now(timezone.utc)
    cutoff = {k: now - v for k, v in asdict(retention).items() if v is not None}
    counts: dict[str, int] = {}
    kept: list[int] = []
    protected = protected_runs(store)
    for kind, source in (("canary_runs", "canary"), ("online_runs", "online")):
        if kind in cutoff:
            old = rows.scored_runs_before(store, source, cutoff[kind])
            kept += [i for i in old if i in protected]
            doomed = [i for i in old if i not in protected]
            counts[kind] = len(doomed) if dry_run else rows.delete_runs(store, doomed)
    if "scores" in cutoff:
        before = cutoff["scores"]
        counts["scores"] = (
            rows.count_scores_before(store, before) if dry_run else rows.delete_scores_before(store, before)
        )
    if "exchanges" in cutoff:
        before = cutoff["exchanges"]
        counts["exchanges"] = (
            rows.count_exchanges_before(store, before) if dry_run else rows.delete_exchanges_before(store, before)
        )
    result = {
        "dry_run": dry_run,
        "older_than": retention.limits(),
        "before": {k: v.isoformat() for k, v in cutoff.items()},
        "deleted" if not dry_run else "would_delete": counts,
        "kept_referenced_runs": sorted(set(kept)),
    }
    if not dry_run:
        details = {"older_than": retention.limits(), "deleted": counts, "kept_referenced_runs": len(set(kept))}
        trail.record(store, "store.prune", "store", details, actor=actor)
    return result
