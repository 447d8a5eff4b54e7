"""Score a run from what the store holds, so a resumed run scores every session's work."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from medops.datasets.healthbench import RubricDataset
from medops.evaluation.config import HealthBenchConfig
from medops.evaluation.healthbench import Job
from medops.scoring.healthbench import (
    LENGTH_ADJUSTED,
    OVERALL,
    aggregate,
    example_metrics,
    length_adjusted,
)
from medops.store.repository import Store
from medops.store.schema import Grade, Response


def usage_totals(store: Store, run_id: int) -> dict[str, dict[str, int]]:
    """Network calls and tokens by role. Cached answers cost nothing and count no call."""
    with store.session() as s:
        model = s.execute(
            select(
                func.coalesce(func.sum(Response.calls), 0),
                func.coalesce(func.sum(Response.prompt_tokens), 0),
                func.coalesce(func.sum(Response.completion_tokens), 0),
            ).where(Response.run_id == run_id, Response.source == "model", Response.cached.is_(False))
        ).one()
        grader = s.execute(
            select(
                func.coalesce(func.sum(Grade.calls), 0),
                func.coalesce(func.sum(Grade.prompt_tokens), 0),
                func.coalesce(func.sum(Grade.completion_tokens), 0),
            ).where(Grade.run_id == run_id, Grade.cached.is_(False))
        ).one()
    return {
        role: {"calls": int(r[0]), "prompt_tokens": int(r[1]), "completion_tokens": int(r[2])}
        for role, r in (("model", model), ("grader", grader))
    }


def score_run(
    store: Store, run_id: int, dataset: RubricDataset, config: HealthBenchConfig, jobs: list[Job]
) -> dict[str, Any]:
    """Metrics over every fully graded job; a job with any ungraded criterion is excluded."""
    with store.session() as s:
        responses = {
            (r.example_index, r.repeat): r.text for r in s.scalars(select(Response).where(Response.run_id == run_id))
        }
        verdicts: dict[tuple[int, int], dict[int, bool | None]] = defaultdict(dict)
        for index, repeat, criterion, met in s.execute(
            select(Grade.example_index, Grade.repeat, Grade.criterion_index, Grade.criteria_met).where(
                Grade.run_id == run_id
            )
        ):
            verdicts[(index, repeat)][criterion] = met
    per_example: list[dict[str, float]] = []
    excluded = ungraded = 0
    for job in jobs:
        example = dataset.examples[job[0]]
        text, grades = responses.get(job), verdicts.get(job, {})
        met = [grades.get(c) for c in range(len(example.rubrics))]
        ungraded += sum(m is None for m in met) if text is not None else 0
        if text is None or any(m is None for m in met):
            excluded += 1
            continue
        metrics = example_metrics(example.example_tags, example.rubrics, met)  # type: ignore[arg-type]
        if config.length_penalty is not None:
            center = config.length_center or 0.0
            metrics[LENGTH_ADJUSTED] = length_adjusted(metrics[OVERALL], len(text), config.length_penalty, center)
        per_example.append(metrics)
    summaries = aggregate(per_example, config.seed)
    overall = summaries.get(OVERALL)
    return {
        "score": overall.mean if overall else None,
        "bootstrap_std": overall.bootstrap_std if overall else None,
        "n_examples": len(per_example),
        "n_excluded_examples": excluded,
        "n_ungraded_criteria": ungraded,
        "metrics": {name: summary.to_dict() for name, summary in summaries.items()},
        "usage": usage_totals(store, run_id),
    }
