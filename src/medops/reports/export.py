"""Flatten a run into one row per criterion."""

from __future__ import annotations

from typing import Any

from medops.evaluation.results import recorded_rubric_set
from medops.store import queries
from medops.store.repository import Store


def criterion_rows(store: Store, run_ref: str) -> list[dict[str, Any]]:
    run = store.find_run(run_ref)
    recorded = store.dataset(run.dataset_id)
    dataset = recorded_rubric_set(run, recorded)
    responses = queries.responses(store, run.id)
    grades = {(repeat, index, c): g for (index, repeat, c), g in queries.grades(store, run.id).items()}
    # A failed model call has no grades: its criteria are listed as ungraded, with the call's error,
    # so the export shows every failure the run's status counts.
    failed = {
        (repeat, index, c): f"model call failed: {r.error or 'no answer'}"
        for (index, repeat), r in responses.items()
        if r.error is not None or r.text is None
        for c in range(len(dataset.examples[index].rubrics))
    }
    rows = []
    for key in sorted(grades.keys() | failed.keys()):
        repeat, index, criterion = key
        example, g, response = dataset.examples[index], grades.get(key), responses.get((index, repeat))
        item = example.rubrics[criterion]
        rows.append(
            {
                "example_index": index,
                "repeat": repeat,
                "prompt_id": example.prompt_id,
                "criterion_index": criterion,
                "criterion": item.criterion,
                "points": item.points,
                "tags": list(item.tags),
                "criteria_met": g.criteria_met if g else None,
                "explanation": g.explanation if g else None,
                "ungraded_reason": g.ungraded_reason if g else failed[key],
                "response": response.text if response else None,
            }
        )
    return rows
