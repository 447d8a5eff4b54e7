"""Review sets (``medops review``): physicians label a sample of a rubric run; what the CLI calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medops.api.runs import StoreRef, open_store
from medops.audit import record
from medops.reports.export import render_rows
from medops.review import sets
from medops.review.bias import set_bias
from medops.store import reviews


def create_review_set(
    run_ref: str,
    name: str,
    *,
    sample: int = 20,
    reviewers: int = 2,
    strategy: str = "stratified",
    seed: int = 0,
    db: StoreRef = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Sample ``sample`` examples of a recorded rubric run into a new review set (audited)."""
    store = open_store(db, create=False)
    return sets.create(
        store, run_ref, name, sample=sample, reviewers=reviewers, strategy=strategy, seed=seed, actor=actor
    )


def review_sets(db: StoreRef = None) -> list[dict[str, Any]]:
    """Every review set, oldest first, with its number of labels."""
    return [sets.summary(s, n) for s, n in reviews.list_sets(open_store(db, create=False))]


def review_status(name: str, *, db: StoreRef = None) -> dict[str, Any]:
    """A set's size, labels, progress per reviewer, agreement and ``bias`` (where the grader departs
    from the physicians; None before any label)."""
    store = open_store(db, create=False)
    document = sets.status(store, name)
    review_set = reviews.find_set(store, name)
    document["bias"] = set_bias(sets.items(store, review_set), sets.labels(store, review_set), seed=review_set.seed)
    return document


def export_review(
    name: str, *, db: StoreRef = None, destination: str | Path | None = None, actor: str | None = None
) -> str:
    """The set's labels as HealthBench meta-evaluation JSONL (audited; the file by name only)."""
    store = open_store(db, create=False)
    rows = sets.export_rows(store, reviews.find_set(store, name))
    details = {"rows": len(rows), "file": Path(destination).name if destination is not None else None}
    record(store, "review.export", f"review:{name}", details, actor=actor)
    return render_rows(rows, "jsonl")


def import_review_labels(
    name: str, path: str | Path, *, reviewer: str, db: StoreRef = None, actor: str | None = None
) -> dict[str, Any]:
    """A reviewer's labels from a JSONL or CSV file (``example_index``, ``criterion_index``, ``met``):
    every row checked first, nothing stored on a bad one (UserError naming file, line, field)."""
    return sets.import_labels(open_store(db, create=False), name, str(path), reviewer, actor=actor)
