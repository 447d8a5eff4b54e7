"""A finished run's prepared views (store/prepared.py): built from its rows once, when the run ends
(``PrepareViews``, an event subscriber of every run), else on first use (the dashboard, for runs
recorded before or a store written without the subscriber), then read a page at a time.

Below ``api`` and ``reports`` so that the run's close, the dashboard and ``medops report`` build and
read the same thing: what one prepares, the others read, and it equals what the rows give.
"""

from __future__ import annotations

import logging
from typing import Any

from medops.errors import UserError
from medops.evaluation.records import Assessment, Histogram, Message, SampleRecord, Samples
from medops.evaluation.results import presentation, sample_records
from medops.events import RunEnded
from medops.store import prepared as stored
from medops.store.repository import INTERRUPTED, Store
from medops.store.schema import Run

log = logging.getLogger("medops.prepared")


def run_key(run: Run) -> str | None:
    """What a prepared view is valid for: the run's status and end time (None while it runs; a
    resume sets a new end time, so an old view is never read)."""
    return f"{run.status}|{run.finished_at.isoformat()}" if run.finished_at is not None else None


def samples_view(run: Run) -> Samples | None:
    """The run's declared sample list (the first): the one that is prepared."""
    return next((v for v in presentation(run).views if isinstance(v, Samples)), None)


def record_of(data: dict[str, Any]) -> SampleRecord:
    """A record back from its plain data (``SampleRecord.as_dict``)."""
    return SampleRecord(
        index=data["index"],
        repeat=data["repeat"],
        item_id=data["item_id"],
        input=tuple(Message(m["role"], m["content"]) for m in data["prompt"]),
        output=data["response"],
        error=data["error"],
        finish_reason=data["finish_reason"],
        choices=data["choices"],
        target=data["target"],
        scores=data["scores"],
        assessments=tuple(Assessment(**{**a, "tags": tuple(a["tags"])}) for a in data["assessments"]),
        tags=tuple(data["tags"]),
        metadata=data["metadata"],
        flags=frozenset(data["flags"]),
        variant=data.get("variant"),
    )


def prepare(store: Store, run: Run) -> dict[str, Any]:
    """Build the run's views from its rows and keep them in the store: the summary (``histograms``:
    each declared Histogram's values, in order; ``counts``: samples per filter, ``all`` included;
    ``keys``: [index, repeat] of the listed samples, in order) and each listed sample's plain data.
    Returns the summary; refused (UserError) when the store cannot be written."""
    key = run_key(run)
    if key is None:
        raise UserError(f"run '{run.name or run.id}' has not ended: its views cannot be prepared")
    records = sample_records(store, run)
    views = presentation(run).views
    view = next((v for v in views if isinstance(v, Samples)), None)
    chosen = view.chosen(records) if view else []
    flags = [f.key for f in view.flags] if view else []
    summary = {
        "histograms": [v.values(records) for v in views if isinstance(v, Histogram)],
        "counts": {"all": len(chosen), **{f: sum(f in r.flags for r in chosen) for f in flags}},
        "keys": [[r.index, r.repeat] for r in chosen],
    }
    if not stored.save(store, run.id, key, summary, [(sorted(r.flags), r.as_dict()) for r in chosen]):
        raise UserError(f"run '{run.name or run.id}': its view cannot be prepared, the store is not writable")
    return summary


def prepared_summary(store: Store, run: Run) -> dict[str, Any] | None:
    """The run's prepared summary if it is in the store and current; None otherwise (not prepared,
    stale, or the run has not ended). Never prepares."""
    key = run_key(run)
    return stored.summary(store, run.id, key) if key is not None else None


def prepared_records(store: Store, run: Run) -> tuple[dict[str, Any], list[SampleRecord]] | None:
    """(summary, every listed sample in order) of a run prepared and current in the store; None
    otherwise (the caller reads the rows). Never prepares."""
    found = prepared_summary(store, run)
    if found is None:
        return None
    return found, [record_of(data) for data in stored.records(store, run.id)]


class PrepareViews:
    """Prepares a run's views as it ends, so its first view (and ``medops report``) reads them
    instead of every row. Not for an interrupted run (its user waits for the prompt and will likely
    resume it; its first view prepares it). A failure here never fails the run, whose results are
    stored: it is counted (``failures``) and logged in one line, and the first view prepares it."""

    def __init__(self, store: Store):
        self.store = store
        self.failures = 0

    def on_run_ended(self, event: RunEnded) -> None:
        if event.status == INTERRUPTED:
            return
        try:
            prepare(self.store, self.store.find_run(str(event.run_id)))
        except Exception as exc:  # the run is stored: its first view prepares it
            self.failures += 1
            log.warning(
                "medops: run %s: its views were not prepared at close (%s: %s); its first view prepares them",
                event.run_id,
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
