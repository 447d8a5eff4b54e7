"""Score a run from what the store holds, so a resumed run scores every session's work."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from medops.datasets.healthbench import RubricDataset
from medops.datasets.meta_eval import MetaEvalSet
from medops.evaluation.config import HealthBenchConfig
from medops.evaluation.engine import Job
from medops.evaluation.healthbench import ideal_group_metric
from medops.scoring.agreement import (
    calibration,
    macro_f1,
    majority_label,
    pairwise_agreement,
    physician_agreements,
    pooled_physician_agreement,
)
from medops.scoring.healthbench import (
    LENGTH_ADJUSTED,
    OVERALL,
    aggregate,
    example_metrics,
    length_adjusted,
)
from medops.store import queries
from medops.store.repository import Store


def call_accounting(store: Store, run_id: int) -> dict[str, Any]:
    """``usage`` by role (calls, cached, failed, tokens), ``n_failed_calls`` and ``n_calls_recorded``:
    the summary keys that say whether every call of the run has an answer."""
    usage = store.usage(run_id)
    recorded = sum(role.pop("recorded") for role in usage.values())
    return {
        "n_failed_calls": sum(role["failed"] for role in usage.values()),
        "n_calls_recorded": recorded,
        "usage": usage,
    }


def job_metrics(
    store: Store, run_id: int, dataset: RubricDataset, config: HealthBenchConfig, jobs: list[Job]
) -> tuple[dict[Job, dict[str, float]], int, int]:
    """Metric values of every fully graded job, and how many jobs / criteria were left out."""
    responses = queries.response_texts(store, run_id)
    verdicts = queries.verdicts(store, run_id)
    per_job: dict[Job, dict[str, float]] = {}
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
        if config.completions == "ideal" and (group := ideal_group_metric(example)):
            metrics[group] = metrics[OVERALL]  # the reference scores each ideal-completion group on its own
        per_job[job] = metrics
    return per_job, excluded, ungraded


def score_run(
    store: Store, run_id: int, dataset: RubricDataset, config: HealthBenchConfig, jobs: list[Job]
) -> dict[str, Any]:
    """Metrics over every fully graded job; a job with any ungraded criterion is excluded."""
    per_job, excluded, ungraded = job_metrics(store, run_id, dataset, config, jobs)
    per_example = list(per_job.values())
    summaries = aggregate(per_example, config.seed)
    overall = summaries.get(OVERALL)
    return {
        "score": overall.mean if overall else None,
        "bootstrap_std": overall.bootstrap_std if overall else None,
        "n_examples": len(per_example),
        "n_excluded_examples": excluded,
        "n_ungraded_criteria": ungraded,
        "metrics": {name: summary.to_dict() for name, summary in summaries.items()},
        **call_accounting(store, run_id),
    }


def score_meta_run(
    store: Store, run_id: int, meta: MetaEvalSet, positions: list[tuple[int, int]], jobs: list[Job]
) -> dict[str, Any]:
    """Grader-vs-physician agreement, pooled and per category, with the physicians' own for scale."""
    graded = {key: (g.criteria_met, g.p_met) for key, g in queries.grades(store, run_id).items()}
    rows_of: dict[int, list[int]] = defaultdict(list)
    for row_index, (example_index, _) in enumerate(positions):
        rows_of[example_index].append(row_index)
    rows, labels, probabilities = [], [], []
    asked = 0
    for example_index, repeat in jobs:
        for row_index in rows_of[example_index]:
            asked += 1
            met, p_met = graded.get((example_index, repeat, positions[row_index][1]), (None, None))
            if met is not None:
                rows.append(meta.rows[row_index])
                labels.append(met)
                probabilities.append(p_met)
    categories = sorted({row.category for row in rows})
    metrics: dict[str, Any] = {"overall": _agreement_block(rows, labels, probabilities)}
    for category in categories:
        picked = [i for i, row in enumerate(rows) if row.category == category]
        metrics[category] = _agreement_block(
            [rows[i] for i in picked], [labels[i] for i in picked], [probabilities[i] for i in picked]
        )
    overall = metrics["overall"]
    return {
        "score": overall["grader_pairwise"]["balanced_f1"],
        "n_examples": len(rows),
        "n_excluded_examples": asked - len(rows),
        "n_ungraded_criteria": asked - len(rows),
        "agreement": metrics,
        **call_accounting(store, run_id),
    }


def _agreement_block(rows: list, labels: list[bool], probabilities: list[float | None]) -> dict[str, Any]:
    physician_labels = [row.binary_labels for row in rows]
    per_physician = physician_agreements(physician_labels, [row.anonymized_physician_ids for row in rows])
    physician_f1 = sorted(a.balanced_f1 for a in per_physician.values() if a.balanced_f1 is not None)
    grader = pairwise_agreement(labels, physician_labels)
    majority = [majority_label(row_labels) for row_labels in physician_labels]
    block: dict[str, Any] = {
        "n_rows": len(rows),
        "grader_pairwise": grader.to_dict(),
        "physicians_pairwise_pooled": pooled_physician_agreement(physician_labels).to_dict(),
        "physicians_balanced_f1": {
            "n_physicians": len(physician_f1),
            "min": physician_f1[0] if physician_f1 else None,
            "median": float(np.median(physician_f1)) if physician_f1 else None,
            "max": physician_f1[-1] if physician_f1 else None,
            # share of physicians the grader agrees with the others at least as well as
            "grader_percentile": (
                sum(f <= grader.balanced_f1 for f in physician_f1) / len(physician_f1)
                if physician_f1 and grader.balanced_f1 is not None
                else None
            ),
        },
        "grader_vs_majority_macro_f1": macro_f1(labels, majority),
        "majority_met_rate": sum(majority) / len(majority) if majority else None,
        "grader_met_rate": sum(labels) / len(labels) if labels else None,
    }
    if probabilities and all(p is not None for p in probabilities):
        result = calibration(probabilities, majority)  # type: ignore[arg-type]
        block["calibration"] = {"ece": result.ece, "reliability": result.bins}
    return block
