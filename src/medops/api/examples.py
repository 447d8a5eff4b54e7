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
from medops.evaluation.prepared_views import prepare, record_of, run_key, samples_view
from medops.evaluation.records import SampleRecord, Samples, text_of
from medops.evaluation.results import sample_records
from medops.store import prepared
from medops.store.repository import Store
from medops.store.schema import Run

__all__ = ["run_example", "run_examples", "run_summary", "text_of"]


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


# A finished run's records never change (a resume sets finished_at anew): they are prepared once in
# the store as the run ends (evaluation/prepared_views.py; else on its first view), and views in any
# process read a page of them. The summary is kept here per (store, run, key); redacted views per
# (store, run, key, sample), below admin only (an unredacted view is never cached, so none is ever
# served to a role that must not see it).
_SUMMARIES: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
_SUMMARIES_KEPT = 16
_REDACTED: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
_REDACTED_KEPT = 5000
_LOCK = threading.Lock()


def _kept(cache: OrderedDict, key: tuple, limit: int, value: Any = None) -> Any:
    with _LOCK:
        if value is None:
            found = cache.get(key)
            if found is not None:
                cache.move_to_end(key)
            return found
        cache[key] = value
        while len(cache) > limit:
            cache.popitem(last=False)
        return value


def run_summary(store: Store, run: Run) -> dict[str, Any] | None:
    """A finished run's prepared summary: ``histograms`` (each declared Histogram's values, in
    order), ``counts`` (samples per filter, ``all`` included) and ``keys`` ([index, repeat] of the
    listed samples, in order); prepared as the run ended (``PrepareViews``), else here on its first
    view, then kept. None while the run is unfinished."""
    key = run_key(run)
    if key is None:
        return None
    cache_key = (str(store.engine.url), run.id, key)
    found = _kept(_SUMMARIES, cache_key, _SUMMARIES_KEPT)
    if found is None:
        found = prepared.summary(store, run.id, key)
        if found is None:
            found = prepare(store, run)
        _kept(_SUMMARIES, cache_key, _SUMMARIES_KEPT, found)
    return found


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
    run = store.find_run(run_ref)
    view = _view(run)
    flags = ("all", *(f.key for f in (view.flags if view else ())))
    if flag not in flags:
        raise UserError(f"unknown filter '{flag}': expected one of {', '.join(flags)}")
    summary = run_summary(store, run)
    if summary is not None:  # finished: a page of the prepared samples
        counts = summary["counts"]
        rows = prepared.page(store, run.id, None if flag == "all" else flag, offset, limit) if view else []
        page = [(position, record_of(data)) for position, data in rows]
    else:  # running: read afresh
        records = view.chosen(sample_records(store, run)) if view else []
        counts = {f: sum(f == "all" or f in r.flags for r in records) for f in flags}
        chosen = [r for r in records if flag == "all" or flag in r.flags]
        page = [(None, r) for r in chosen[max(offset, 0) : max(offset, 0) + max(limit, 0)]]
    if not redact and page:
        _viewed(store, run_ref, [(r.index, r.repeat) for _, r in page], actor)
    return {
        "view": _view_data(view),
        "flag": flag,
        "total": counts[flag],
        "counts": counts,
        "offset": offset,
        "limit": limit,
        "redacted": redact,
        "examples": [_shown_cached(store, run, position, r, view, redact) for position, r in page],
    }


def _view(run: Run) -> Samples | None:
    """The run's declared sample list (the first)."""
    return samples_view(run)


def _shown_cached(
    store: Store, run: Run, position: int | None, record: SampleRecord, view: Samples | None, redact: bool
) -> dict[str, Any]:
    """``_shown``, kept per (store, run, key, sample) when redacted (every role below admin)."""
    if not redact or position is None:
        return _shown(record, view, redact)
    key = (str(store.engine.url), run.id, run_key(run), position)
    found = _kept(_REDACTED, key, _REDACTED_KEPT)
    return found if found is not None else _kept(_REDACTED, key, _REDACTED_KEPT, _shown(record, view, True))


def run_example(
    run_ref: str, index: int, *, repeat: int = 0, db: StoreRef = None, redact: bool = True, actor: str | None = None
) -> dict[str, Any]:
    """One sample of a run (as in ``run_examples``), by its position in the data and repeat, with
    ``previous`` and ``next`` (``{"index", "repeat"}`` of its neighbours, or None) for paging."""
    store = open_store(db)
    run = store.find_run(run_ref)
    view = _view(run)
    summary = run_summary(store, run)
    if summary is not None:
        keys = [(i, r) for i, r in summary["keys"]]
        records = None
    else:
        records = view.chosen(sample_records(store, run)) if view else []
        keys = [(r.index, r.repeat) for r in records]
    if (index, repeat) not in keys:
        raise NotFound(f"run '{run_ref}' has no example {index} (repeat {repeat})")
    at = keys.index((index, repeat))
    if not redact:
        _viewed(store, run_ref, [(index, repeat)], actor)
    if records is None:
        shown = _shown_cached(store, run, at, record_of(prepared.sample(store, run.id, at) or {}), view, redact)
    else:
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
