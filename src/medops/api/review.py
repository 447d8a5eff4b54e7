"""Review sets (``medops review``): physicians label a sample of a rubric run; what the CLI calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medops.api.examples import _redactor
from medops.api.runs import StoreRef, open_store
from medops.audit import record
from medops.content import text_of
from medops.errors import NotFound
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
    document["bias"] = set_bias(
        sets.items(store, review_set),
        sets.labels(store, review_set),
        sets.finals(store, review_set),
        seed=review_set.seed,
    )
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


def review_queue_item(
    name: str, reviewer: str, *, position: int | None = None, db: StoreRef = None, redact: bool = True
) -> dict[str, Any]:
    """What the queue page shows a reviewer: one example (the next one not fully labelled unless
    ``position``), its criteria with the reviewer's own labels, and, only when the set is not
    blinded, the grader's verdicts and the other reviewers' labels. Texts with PHI replaced by
    placeholders when ``redact`` (as on a run's examples)."""
    store = open_store(db, create=False)
    review_set = reviews.find_set(store, name)
    examples = {e.position: e for e in sets.items(store, review_set)}
    chosen = sets.next_position(store, review_set, reviewer) if position is None else position
    doc: dict[str, Any] = {"set": sets.summary(review_set, 0), "n_examples": len(examples), "item": None}
    if chosen is None:
        return doc
    if chosen not in examples:
        raise NotFound(f"review set '{name}' has no example {chosen}")
    e = examples[chosen]
    mine = sets.reviewer_labels(store, review_set, reviewer)
    others = sets.labels(store, review_set)
    redactor = _redactor() if redact else None

    def shown(text: Any) -> str:
        plain = text_of(text)
        return redactor.redact(plain) if redactor is not None else plain

    doc["item"] = {
        "position": e.position,
        "prompt_id": e.prompt_id,
        "conversation": [{"role": m["role"], "text": shown(m["content"])} for m in e.conversation],
        "response": shown(e.response),
        "redacted": redact,
        "criteria": [
            {
                "index": i,
                "criterion": c.criterion,
                "points": c.points,
                **(mine.get((e.position, i)) or {"choice": None, "comment": None}),
                **(
                    {}
                    if review_set.blinded
                    else {
                        "grader": c.grader,
                        "others": {r: met for r, met in others.get((e.position, i), {}).items() if r != reviewer},
                    }
                ),
            }
            for i, c in enumerate(e.criteria)
        ],
    }
    return doc


def label_review_example(
    name: str,
    position: int,
    reviewer: str,
    choices: dict[int, str],
    comments: dict[int, str] | None = None,
    *,
    db: StoreRef = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """One reviewer's labels of one example: criterion index -> ``met`` | ``not_met`` | ``unsure``
    (unsure is stored, and agreement treats it as missing); audited as ``review.label``."""
    return sets.label_example(open_store(db, create=False), name, position, reviewer, choices, comments, actor=actor)


def next_review_position(name: str, reviewer: str, *, after: int = -1, db: StoreRef = None) -> int | None:
    store = open_store(db, create=False)
    return sets.next_position(store, reviews.find_set(store, name), reviewer, after)


def review_disagreements(name: str, *, db: StoreRef = None) -> list[dict[str, Any]]:
    """The criteria where reviewers disagree, each reviewer's label and the final label if set."""
    store = open_store(db, create=False)
    return sets.disagreements(store, reviews.find_set(store, name))


def adjudicate_review(
    name: str, position: int, criterion: int, met: bool, *, actor: str, db: StoreRef = None
) -> dict[str, Any]:
    """An operator's final label, kept beside the reviewers' labels (audited as ``review.adjudicate``)."""
    return sets.adjudicate(open_store(db, create=False), name, position, criterion, met, actor=actor)


def set_review_blinding(name: str, blinded: bool, *, db: StoreRef = None, actor: str | None = None) -> None:
    """Whether reviewers of the set see the grader's verdicts and each other's labels (audited)."""
    sets.set_blinded(open_store(db, create=False), name, blinded, actor=actor)
