"""The grader's P(met) (``--grader-verdict logprob``) against the physicians' labels of a run: the
calibration figures of ``scoring.calibration.verdict_calibration``, over every labelled criterion the
grader graded, each criterion's truth its physicians' majority (ties: not met, as ``medops.review.bias``)."""

from __future__ import annotations

from typing import Any

from medops.review.sets import items, labels
from medops.scoring.agreement import majority_label
from medops.scoring.calibration import verdict_calibration
from medops.store import reviews
from medops.store.repository import Store
from medops.store.schema import Run


def run_grader_calibration(store: Store, run: Run) -> dict[str, Any] | None:
    """``{calibration, reliability, n_with_confidence, n_missing_confidence}`` over every review set of
    the run; None without a labelled criterion the grader graded, or when no verdict has a P(met)."""
    verdicts: list[tuple[bool, float | None]] = []
    truth: list[bool] = []
    for review_set in reviews.sets_of_run(store, run.id):
        given = labels(store, review_set)
        for example in items(store, review_set):
            for c, criterion in enumerate(example.criteria):
                by = given.get((example.position, c))
                if by and criterion.grader is not None:
                    verdicts.append((criterion.grader, criterion.p_met))
                    truth.append(majority_label(list(by.values())))
    if not any(p is not None for _, p in verdicts):
        return None
    return verdict_calibration(verdicts, truth)
