"""Physician-anchored scores: the score the physicians would give a run, estimated by prediction-
powered inference (PPI++, the ``ppi-python`` package) from the physicians' labels of a few examples
and the grader's scores of all of them.

Each labelled example's physician score is its score with each criterion met as an operator's
adjudicated label says, else as the physicians' majority (ties: not met, as ``medops meta-eval``);
the grader's example score is the run's. PPI++ corrects the grader's mean over every example by its
mean error on the labelled ones, with the power-tuning weight chosen from the data, so a biased
grader moves the estimate back to the physicians while its correlation with them narrows the
interval below one from the labels alone. Only sets sampled at random or stratified in proportion
count: sets chosen for disagreement or uncertainty are not a sample of the run."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from medops.evaluation.results import sample_records
from medops.review.sets import finals, items, labels
from medops.scoring.agreement import majority_label
from medops.store import reviews
from medops.store.repository import Store
from medops.store.schema import Run

REPRESENTATIVE = ("random", "stratified")
METHOD = "ppi++"


def _ppi():
    with warnings.catch_warnings():  # ppi_py silences every warning of the process on import
        import ppi_py  # numba and statsmodels: imported only when a run has labels
    return ppi_py


@dataclass(frozen=True)
class Estimate:
    score: float
    ci_low: float
    ci_high: float


def ppi_mean(y: np.ndarray, yhat: np.ndarray, yhat_unlabeled: np.ndarray, alpha: float = 0.05) -> Estimate:
    """The PPI++ point estimate and (1 - alpha) interval of the mean of ``y``."""
    ppi = _ppi()
    score = float(np.ravel(ppi.ppi_mean_pointestimate(y, yhat, yhat_unlabeled))[0])
    low, high = ppi.ppi_mean_ci(y, yhat, yhat_unlabeled, alpha=alpha)
    return Estimate(score, float(np.ravel(low)[0]), float(np.ravel(high)[0]))


def _physician_scores(store: Store, run: Run) -> tuple[dict[tuple[int, int], float], int]:
    """(example_index, repeat) -> the physicians' example score, for examples with every criterion
    labelled in a representative set; and how many labels they rest on."""
    scores, n_labels = {}, 0
    for review_set in reviews.sets_of_run(store, run.id):
        if review_set.strategy not in REPRESENTATIVE:
            continue
        given, final = labels(store, review_set), finals(store, review_set)
        for e in items(store, review_set):
            by = [given.get((e.position, c)) for c in range(len(e.criteria))]
            if not all(by):
                continue
            possible = sum(max(c.points, 0) for c in e.criteria)
            if not possible:
                continue
            earned = sum(
                c.points
                for i, (c, b) in enumerate(zip(e.criteria, by, strict=True))
                if final.get((e.position, i), majority_label(list(b.values())))
            )
            scores[(e.example_index, e.repeat)] = earned / possible
            n_labels += sum(len(b) for b in by)
    return scores, n_labels


def calibrated(store: Store, run: Run) -> dict[str, Any] | None:
    """``{score, ci_low, ci_high, n_labels, method}`` (clipped to [0, 1] like the run's score), or
    None when fewer than two of the run's scored examples are fully labelled."""
    physicians, n_labels = _physician_scores(store, run)
    if len(physicians) < 2:
        return None
    grader = {
        (r.index, r.repeat): s
        for r in sample_records(store, run)
        if (s := r.scores.get("score")) is not None and "ungraded" not in r.flags
    }
    labelled = [k for k in physicians if k in grader]
    if len(labelled) < 2:
        return None
    rest = [s for k, s in grader.items() if k not in physicians] or list(grader.values())
    estimate = ppi_mean(
        np.array([physicians[k] for k in labelled]), np.array([grader[k] for k in labelled]), np.array(rest)
    )
    return {
        "score": float(np.clip(estimate.score, 0, 1)),
        "ci_low": float(np.clip(estimate.ci_low, 0, 1)),
        "ci_high": float(np.clip(estimate.ci_high, 0, 1)),
        "n_labels": n_labels,
        "n_examples_labelled": len(labelled),
        "method": METHOD,
    }
