"""Review sets: create one from a recorded rubric run, list them, their status, the HealthBench
meta-evaluation export, and labels imported from a file."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any

from medops.audit import record
from medops.errors import UserError
from medops.evaluation.records import SampleRecord
from medops.evaluation.results import sample_records
from medops.review.agreement import agreement
from medops.review.items import Criterion, Finals, Labels, ReviewItem
from medops.review.labels_file import read_labels
from medops.review.sampling import Candidate, choose
from medops.store import queries, reviews
from medops.store.repository import Store
from medops.store.schema import ReviewSet, Run


def _is_rubric(records: list[SampleRecord]) -> bool:
    return bool(records) and all(a.points is not None for r in records for a in r.assessments)


def _juror_names(run: Run) -> list[str]:
    """The run's judges by name (one judge for runs recorded before judges were stored)."""
    return [j["name"] for j in (run.judges or {}).get("judges") or []] or [run.grader or "grader"]


def create(
    store: Store,
    run_ref: str,
    name: str,
    *,
    sample: int = 20,
    reviewers: int = 2,
    strategy: str = "stratified",
    seed: int = 0,
    actor: str | None = None,
) -> dict[str, Any]:
    """Sample ``sample`` answered examples of a rubric run (every criterion of each) into a new set."""
    if not name.strip() or len(name) > 200:
        raise UserError("--name must be 1 to 200 characters")
    if reviewers < 1:
        raise UserError("--reviewers must be at least 1")
    run = store.find_run(run_ref)
    records = [r for r in sample_records(store, run) if r.output is not None and r.error is None]
    if not _is_rubric(records):
        raise UserError(f"run {run.id} has no answered rubric examples to review (review sets sample rubric runs)")
    names = _juror_names(run)
    by_judge = queries.judge_grades(store, run.id)
    jurors: dict[tuple[int, int], list[dict[str, bool | None]]] = {}
    for r in records:
        jurors[(r.index, r.repeat)] = [
            {
                judge: (g.criteria_met if (g := by_judge.get((r.index, r.repeat, c), {}).get(judge)) else None)
                for judge in names
            }
            for c in range(len(r.assessments))
        ]
    by_key = {(r.index, r.repeat): r for r in records}
    candidates = [
        Candidate(
            key,
            (r.metadata.get("theme", ""), r.metadata.get("language", "")),
            tuple(tuple(v.values()) for v in jurors[key]),
            tuple(a.p for a in r.assessments),
        )
        for key, r in by_key.items()
    ]
    chosen = choose(candidates, sample, strategy, seed)
    examples = []
    for position, c in enumerate(chosen):
        r = by_key[c.key]
        criteria = [
            {
                "criterion": a.name,
                "points": a.points,
                "tags": list(a.tags),
                "grader": a.value,
                "p_met": a.p,
                "jurors": jurors[c.key][i],
            }
            for i, a in enumerate(r.assessments)
        ]
        examples.append(
            {
                "position": position,
                "example_index": r.index,
                "repeat": r.repeat,
                "prompt_id": r.item_id,
                "content": {
                    "conversation": [{"role": m.role, "content": m.content} for m in r.input],
                    "response": r.output,
                    "criteria": criteria,
                    "metadata": dict(r.metadata),
                },
            }
        )
    n_criteria = sum(len(e["content"]["criteria"]) for e in examples)
    fields = {
        "name": name,
        "run_id": run.id,
        "strategy": strategy,
        "seed": seed,
        "reviewers": reviewers,
        "n_examples": len(examples),
        "n_criteria": n_criteria,
    }
    reviews.create_set(store, fields, examples)
    record(store, "review.create", f"review:{name}", fields, actor=actor)
    return summary(reviews.find_set(store, name), 0)


def summary(review_set: ReviewSet, n_labels: int) -> dict[str, Any]:
    return {
        "name": review_set.name,
        "run_id": review_set.run_id,
        "strategy": review_set.strategy,
        "seed": review_set.seed,
        "reviewers": review_set.reviewers,
        "n_examples": review_set.n_examples,
        "n_criteria": review_set.n_criteria,
        "n_labels": n_labels,
        "blinded": review_set.blinded,
        "created_at": review_set.created_at.isoformat(),
    }


def items(store: Store, review_set: ReviewSet) -> list[ReviewItem]:
    return [
        ReviewItem(
            e.position,
            e.example_index,
            e.repeat,
            e.prompt_id,
            e.content["conversation"],
            e.content["response"],
            tuple(
                Criterion(c["criterion"], c["points"], tuple(c["tags"]), c["grader"], c["p_met"], c["jurors"])
                for c in e.content["criteria"]
            ),
            e.content["metadata"],
        )
        for e in reviews.examples(store, review_set.id)
    ]


def labels(store: Store, review_set: ReviewSet) -> Labels:
    """Every met / not-met label; an ``unsure`` label (stored as met NULL) is left out, so that
    agreement, progress and the export treat it as missing."""
    found: Labels = defaultdict(dict)
    for label in reviews.labels(store, review_set.id):
        if label.met is not None:
            found[(label.position, label.criterion_index)][label.reviewer] = label.met
    return dict(found)


def finals(store: Store, review_set: ReviewSet) -> Finals:
    """The operators' adjudicated labels, kept beside the reviewers' own."""
    return {(a.position, a.criterion_index): a.met for a in reviews.adjudications(store, review_set.id)}


UNSURE = "unsure"
CHOICES = {"met": True, "not_met": False, UNSURE: None}


def reviewer_labels(store: Store, review_set: ReviewSet, reviewer: str) -> dict[tuple[int, int], dict[str, Any]]:
    """One reviewer's labels, unsure ones included: (position, criterion) -> {choice, comment}."""
    return {
        (label.position, label.criterion_index): {
            "choice": UNSURE if label.met is None else ("met" if label.met else "not_met"),
            "comment": label.comment,
        }
        for label in reviews.labels(store, review_set.id)
        if label.reviewer == reviewer
    }


def label_example(
    store: Store,
    name: str,
    position: int,
    reviewer: str,
    choices: dict[int, str],
    comments: dict[int, str] | None = None,
    *,
    actor: str | None = None,
) -> dict[str, Any]:
    """One reviewer's labels of one example (criterion index -> met | not_met | unsure), stored in
    one transaction and audited as ``review.label`` (who, which item; never a text or comment)."""
    review_set = reviews.find_set(store, name)
    examples = {e.position: e for e in items(store, review_set)}
    if position not in examples:
        raise UserError(f"review set '{name}' has no example {position}")
    n = len(examples[position].criteria)
    for criterion, choice in choices.items():
        if not 0 <= criterion < n:
            raise UserError(f"example {position} of '{name}' has no criterion {criterion}")
        if choice not in CHOICES:
            raise UserError(f"criterion {criterion}: choose one of {', '.join(CHOICES)}, not {choice!r}")
    rows = [(position, c, CHOICES[choice]) for c, choice in sorted(choices.items())]
    reviews.save_labels(store, review_set.id, reviewer, rows, "dashboard", comments)
    details = {"reviewer": reviewer, "position": position, "n_labels": len(rows), "source": "dashboard"}
    record(store, "review.label", f"review:{name}", details, actor=actor)
    return {"name": name, **details}


def next_position(store: Store, review_set: ReviewSet, reviewer: str, after: int = -1) -> int | None:
    """The first example after ``after`` (then from the start) this reviewer has not labelled fully."""
    given = reviewer_labels(store, review_set, reviewer)
    todo = [
        e.position
        for e in items(store, review_set)
        if not all((e.position, c) in given for c in range(len(e.criteria)))
    ]
    return next((p for p in todo if p > after), todo[0] if todo else None)


def disagreements(store: Store, review_set: ReviewSet) -> list[dict[str, Any]]:
    """Criteria where the reviewers' met / not-met labels differ, each reviewer's label, the final
    label if an operator set one."""
    given = labels(store, review_set)
    final = {(a.position, a.criterion_index): a for a in reviews.adjudications(store, review_set.id)}
    rows = []
    for e in items(store, review_set):
        for c, criterion in enumerate(e.criteria):
            by = given.get((e.position, c), {})
            if len(set(by.values())) < 2:
                continue
            decided = final.get((e.position, c))
            rows.append(
                {
                    "position": e.position,
                    "criterion_index": c,
                    "criterion": criterion.criterion,
                    "points": criterion.points,
                    "labels": dict(sorted(by.items())),
                    "final": None if decided is None else {"met": decided.met, "by": decided.actor},
                }
            )
    return rows


def adjudicate(store: Store, name: str, position: int, criterion: int, met: bool, *, actor: str) -> dict[str, Any]:
    """An operator's final label of a criterion, stored beside the reviewers' labels (audited)."""
    review_set = reviews.find_set(store, name)
    examples = {e.position: e for e in items(store, review_set)}
    if position not in examples or not 0 <= criterion < len(examples[position].criteria):
        raise UserError(f"review set '{name}' has no criterion {criterion} in example {position}")
    reviews.save_adjudication(store, review_set.id, position, criterion, met, actor)
    details = {"position": position, "criterion_index": criterion}
    record(store, "review.adjudicate", f"review:{name}", details, actor=actor)
    return {"name": name, **details, "met": met}


def set_blinded(store: Store, name: str, blinded: bool, *, actor: str | None = None) -> None:
    review_set = reviews.find_set(store, name)
    reviews.set_blinded(store, review_set.id, blinded)
    record(store, "review.blinding", f"review:{name}", {"blinded": blinded}, actor=actor)


def progress(review_set: ReviewSet, examples: list[ReviewItem], given: Labels) -> dict[str, Any]:
    """Per reviewer: criteria labelled, examples fully labelled, share of the set."""
    per: dict[str, dict[str, Any]] = {}
    reviewers = sorted({r for by in given.values() for r in by})
    for reviewer in reviewers:
        done = [k for k, by in given.items() if reviewer in by]
        complete = sum(
            all(reviewer in given.get((e.position, c), {}) for c in range(len(e.criteria))) for e in examples
        )
        per[reviewer] = {
            "n_labels": len(done),
            "n_examples_done": complete,
            "share": len(done) / review_set.n_criteria if review_set.n_criteria else 0.0,
        }
    full = sum(
        sum(all(r in given.get((e.position, c), {}) for c in range(len(e.criteria))) for r in reviewers)
        >= review_set.reviewers
        for e in examples
    )
    return {"reviewers": per, "n_examples_complete": full}


def physician_id(reviewer: str) -> str:
    """A reviewer's id in an export: stable, and not the name."""
    return "physician-" + hashlib.sha256(reviewer.encode()).hexdigest()[:12]


def export_rows(store: Store, review_set: ReviewSet) -> list[dict[str, Any]]:
    """One HealthBench meta-evaluation row per labelled criterion (``medops meta-eval --data`` reads them)."""
    given = labels(store, review_set)
    rows = []
    for e in items(store, review_set):
        for c, criterion in enumerate(e.criteria):
            by = given.get((e.position, c))
            if not by:
                continue
            reviewers = sorted(by)
            rows.append(
                {
                    "prompt": e.conversation,
                    "completion": e.response,
                    "rubric": criterion.criterion,
                    "binary_labels": [by[r] for r in reviewers],
                    "anonymized_physician_ids": [physician_id(r) for r in reviewers],
                    "category": f"theme:{e.theme}" if e.theme else "uncategorized",
                    "prompt_id": e.prompt_id,
                    "completion_id": f"{review_set.name}:{e.position}",
                }
            )
    return rows


def import_labels(
    store: Store, name: str, path: str, reviewer: str, *, source: str = "import", actor: str | None = None
) -> dict[str, Any]:
    """A reviewer's labels from a file: all stored, or (on any bad row) none."""
    reviewer = reviewer.strip()
    if not reviewer or len(reviewer) > 200:
        raise UserError("--reviewer must be 1 to 200 characters")
    review_set = reviews.find_set(store, name)
    shape = [len(e.criteria) for e in items(store, review_set)]
    rows = read_labels(path, shape)
    reviews.save_labels(store, review_set.id, reviewer, rows, source)
    details = {"reviewer": reviewer, "n_labels": len(rows), "file": Path(path).name, "source": source}
    record(store, "review.labels", f"review:{name}", details, actor=actor)
    return {"name": name, **details}


def status(store: Store, name: str) -> dict[str, Any]:
    """What ``medops review status --json`` prints."""
    review_set = reviews.find_set(store, name)
    examples = items(store, review_set)
    given = labels(store, review_set)
    n_labels = sum(len(by) for by in given.values())
    return {
        **summary(review_set, n_labels),
        "progress": progress(review_set, examples, given),
        "agreement": agreement(examples, given, finals(store, review_set), seed=review_set.seed),
    }
