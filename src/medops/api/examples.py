"""A run's samples for the dashboard: the sample list its benchmark declares, a page at a time or one
by one, PHI-redacted unless asked (an unredacted view is audited)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import asdict
from typing import Any

from medops.api.runs import StoreRef, open_store
from medops.audit import record
from medops.errors import NotFound, UserError
from medops.evaluation.records import SampleRecord, Samples, text_of
from medops.evaluation.results import presentation, sample_records
from medops.store.repository import Store
from medops.store.schema import Run

__all__ = ["run_example", "run_examples", "run_records", "text_of"]


class _Hidden:
    """Stands in for a Redactor when PHI detection cannot run: nothing is shown (fail closed)."""

    def redact(self, text: str) -> str:
        return "[hidden: PHI redaction is not available on this server]"


def _redactor() -> Any:
    from medops.privacy import PhiUnavailable, Redactor, missing_components

    try:
        return _Hidden() if missing_components() else Redactor()
    except PhiUnavailable:
        return _Hidden()


# A finished run's records never change (a resume sets finished_at anew), so the pages of a large
# run are built from its rows once, not on every click: a few runs per server process.
_RECORDS_CACHE: OrderedDict[tuple, list[SampleRecord]] = OrderedDict()
_RECORDS_CACHE_RUNS = 4
_RECORDS_LOCK = threading.Lock()


def run_records(store: Store, run: Run) -> list[SampleRecord]:
    """A run's sample records, kept for finished runs (keyed by store, run, status and end time)."""
    if run.finished_at is None:  # running (or being resumed): always read afresh
        return sample_records(store, run)
    key = (str(store.engine.url), run.id, run.status, run.finished_at)
    with _RECORDS_LOCK:
        if key in _RECORDS_CACHE:
            _RECORDS_CACHE.move_to_end(key)
            return _RECORDS_CACHE[key]
    records = sample_records(store, run)
    with _RECORDS_LOCK:
        _RECORDS_CACHE[key] = records
        while len(_RECORDS_CACHE) > _RECORDS_CACHE_RUNS:
            _RECORDS_CACHE.popitem(last=False)
    return records


def _samples(store: Store, run_ref: str) -> tuple[Samples | None, list[SampleRecord]]:
    """The run's declared sample list (the first) and the records it shows."""
    run = store.find_run(run_ref)
    view = next((v for v in presentation(run).views if isinstance(v, Samples)), None)
    return view, (view.chosen(run_records(store, run)) if view else [])


def _shown(record: SampleRecord, view: Samples | None, redact: bool) -> dict[str, Any]:
    """A record as plain data, its texts with PHI replaced by consistent placeholders (one Redactor
    per record) when ``redact``."""
    if redact:
        record = record.map_text(_redactor().redact, _withheld)
    return {**record.as_dict(f.key for f in (view.flags if view else ())), "redacted": redact}


def _withheld(part: dict[str, Any]) -> dict[str, Any]:
    """An image cannot be redacted: below admin it is not shown at all."""
    return {"type": part.get("type"), "withheld": True}


def _view_data(view: Samples | None) -> dict[str, Any] | None:
    return asdict(view) if view else None


def run_examples(
    run_ref: str,
    *,
    db: StoreRef = None,
    redact: bool = True,
    flag: str = "all",
    offset: int = 0,
    limit: int = 50,
    actor: str | None = None,
) -> dict[str, Any]:
    """A page of the samples the run's benchmark lists (``view``: its title, filters and score):
    every example with its conversation, response and each criterion's verdict (rubric runs), or
    the wrong answers with the rule that read them (exam runs). ``flag``: ``all`` or one of the
    view's filters (rubric: failed, negative_met, ungraded). With ``redact`` (every role but admin)
    PHI in every text is replaced by placeholders; an unredacted page is recorded in the audit
    trail (``examples.viewed``, by ``actor``)."""
    store = open_store(db)
    view, records = _samples(store, run_ref)
    flags = ("all", *(f.key for f in (view.flags if view else ())))
    if flag not in flags:
        raise UserError(f"unknown filter '{flag}': expected one of {', '.join(flags)}")
    counts = {f: sum(f == "all" or f in r.flags for r in records) for f in flags}
    chosen = [r for r in records if flag == "all" or flag in r.flags]
    page = chosen[max(offset, 0) : max(offset, 0) + max(limit, 0)]
    if not redact and page:
        _viewed(store, run_ref, [(r.index, r.repeat) for r in page], actor)
    return {
        "view": _view_data(view),
        "flag": flag,
        "total": len(chosen),
        "counts": counts,
        "offset": offset,
        "limit": limit,
        "redacted": redact,
        "examples": [_shown(r, view, redact) for r in page],
    }


def run_example(
    run_ref: str, index: int, *, repeat: int = 0, db: StoreRef = None, redact: bool = True, actor: str | None = None
) -> dict[str, Any]:
    """One sample of a run (as in ``run_examples``), by its position in the data and repeat, with
    ``previous`` and ``next`` (``{"index", "repeat"}`` of its neighbours, or None) for paging."""
    store = open_store(db)
    view, records = _samples(store, run_ref)
    keys = [(r.index, r.repeat) for r in records]
    if (index, repeat) not in keys:
        raise NotFound(f"run '{run_ref}' has no example {index} (repeat {repeat})")
    at = keys.index((index, repeat))
    if not redact:
        _viewed(store, run_ref, [(index, repeat)], actor)
    shown = _shown(records[at], view, redact)

    def neighbour(i: int) -> dict[str, int] | None:
        return {"index": keys[i][0], "repeat": keys[i][1]} if 0 <= i < len(keys) else None

    return {
        **shown,
        "view": _view_data(view),
        "previous": neighbour(at - 1),
        "next": neighbour(at + 1),
        "position": at + 1,
        "of": len(keys),
    }


def _viewed(store: Store, run_ref: str, keys: list[tuple[int, int]], actor: str | None) -> None:
    run_id = store.find_run(run_ref).id
    details = {"run_id": run_id, "examples": [list(k) for k in keys][:100], "count": len(keys)}
    record(store, "examples.viewed", f"run:{run_id}", details, actor=actor)
