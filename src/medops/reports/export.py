"""Flatten a run into one row per criterion."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from medops.evaluation.results import recorded_rubric_set
from medops.store.repository import Store
from medops.store.schema import Grade, Response


def criterion_rows(store: Store, run_ref: str) -> list[dict[str, Any]]:
    run = store.find_run(run_ref)
    recorded = store.dataset(run.dataset_id)
    dataset = recorded_rubric_set(run, recorded)
    with store.session() as s:
        responses = {
            (r.example_index, r.repeat): r.text for r in s.scalars(select(Response).where(Response.run_id == run.id))
        }
        grades = s.scalars(
            select(Grade)
            .where(Grade.run_id == run.id)
            .order_by(Grade.repeat, Grade.example_index, Grade.criterion_index)
        ).all()
    rows = []
    for g in grades:
        example = dataset.examples[g.example_index]
        item = example.rubrics[g.criterion_index]
        rows.append(
            {
                "example_index": g.example_index,
                "repeat": g.repeat,
                "prompt_id": example.prompt_id,
                "criterion_index": g.criterion_index,
                "criterion": item.criterion,
                "points": item.points,
                "tags": list(item.tags),
                "criteria_met": g.criteria_met,
                "explanation": g.explanation,
                "ungraded_reason": g.ungraded_reason,
                "response": responses.get((g.example_index, g.repeat)),
            }
        )
    return rows
