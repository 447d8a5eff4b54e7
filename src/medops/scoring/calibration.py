"""Calibration of a confidence against correctness: does a model (or a grader) know when it is wrong?

``calibration(confidences, outcomes)`` gives the figures `--json` reports under ``calibration``:
ECE over 15 equal-width bins, the adaptive (equal-mass) ECE over 15 bins, the Brier score, the
AUROC of confidence for correctness and selective accuracy at 50/80/90% coverage; ``reliability``
the diagram's bins. A missing confidence (None) is left out and counted, never filled in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

N_BINS = 15
COVERAGES = (0.5, 0.8, 0.9)


def _ece(confidence: np.ndarray, outcome: np.ndarray, edges: list[np.ndarray]) -> float:
    """Sum over bins of (share of answers in the bin) x |mean confidence - accuracy|."""
    n = len(confidence)
    return float(sum(len(b) / n * abs(confidence[b].mean() - outcome[b].mean()) for b in edges if len(b)))


def _equal_width(confidence: np.ndarray, bins: int) -> list[np.ndarray]:
    # bin i holds (i/bins, (i+1)/bins]; a confidence of 0 joins the first bin
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    return [np.flatnonzero(index == i) for i in range(bins)]


def _equal_mass(confidence: np.ndarray, bins: int) -> list[np.ndarray]:
    # sorted by confidence, cut into ``bins`` runs of (nearly) equal size
    return [chunk for chunk in np.array_split(np.argsort(confidence, kind="stable"), bins) if len(chunk)]


def selective_accuracy(confidence: np.ndarray, outcome: np.ndarray, coverage: float) -> float | None:
    """Accuracy on the ``coverage`` share of answers the model is most confident in (ties by order)."""
    keep = int(np.ceil(coverage * len(confidence)))
    if keep == 0:
        return None
    order = np.argsort(-confidence, kind="stable")[:keep]
    return float(outcome[order].mean())


def _pairs(confidences: Sequence[float | None], outcomes: Sequence[bool | float]) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(c, float(o)) for c, o in zip(confidences, outcomes, strict=True) if c is not None]
    return np.array([c for c, _ in pairs], dtype=float), np.array([o for _, o in pairs], dtype=float)


def calibration(confidences: Sequence[float | None], outcomes: Sequence[bool | float]) -> dict:
    """``ece``, ``ece_adaptive``, ``brier``, ``auroc`` and ``selective_accuracy`` (by coverage) of
    ``confidences`` (each in [0, 1], or None: missing, left out) for ``outcomes`` (1 right / met,
    0 wrong / not met). Without any confidence every figure is None; AUROC is None when every
    outcome is the same."""
    from sklearn.metrics import roc_auc_score

    confidence, outcome = _pairs(confidences, outcomes)
    if not len(confidence):
        return {
            "ece": None,
            "ece_adaptive": None,
            "brier": None,
            "auroc": None,
            "selective_accuracy": {f"{c:g}": None for c in COVERAGES},
        }
    return {
        "ece": _ece(confidence, outcome, _equal_width(confidence, N_BINS)),
        "ece_adaptive": _ece(confidence, outcome, _equal_mass(confidence, N_BINS)),
        "brier": float(np.mean((confidence - outcome) ** 2)),
        "auroc": float(roc_auc_score(outcome, confidence)) if 0 < outcome.sum() < len(outcome) else None,
        "selective_accuracy": {f"{c:g}": selective_accuracy(confidence, outcome, c) for c in COVERAGES},
    }


def reliability(confidences: Sequence[float | None], outcomes: Sequence[bool | float]) -> list[dict]:
    """The reliability diagram: per non-empty equal-width bin, its range, size, mean confidence and accuracy."""
    confidence, outcome = _pairs(confidences, outcomes)
    if not len(confidence):
        return []
    return [
        {
            "low": i / N_BINS,
            "high": (i + 1) / N_BINS,
            "n": len(b),
            "confidence": float(confidence[b].mean()),
            "accuracy": float(outcome[b].mean()),
        }
        for i, b in enumerate(_equal_width(confidence, N_BINS))
        if len(b)
    ]


def calibration_summary(confidences: Sequence[float | None], outcomes: Sequence[bool | float]) -> dict:
    """What a run's summary keeps: ``calibration``, the reliability bins, and the confidence counts."""
    given = sum(c is not None for c in confidences)
    return {
        "calibration": calibration(confidences, outcomes),
        "reliability": reliability(confidences, outcomes),
        "n_with_confidence": given,
        "n_missing_confidence": len(confidences) - given,
    }


def abstention_score(n_correct: int, n_wrong: int, n_abstained: int) -> dict:
    """An exam scored with abstention allowed: a right answer +1, an abstention 0, a wrong answer
    (or an unreadable one) -1, over every answer: ``(right - wrong) / n``, in [-1, 1]. Guessing pays
    only when the model is right more often than wrong, so abstaining when unsure is rewarded."""
    n = n_correct + n_wrong + n_abstained
    answered = n_correct + n_wrong
    return {
        "n_abstained": n_abstained,
        "abstention_rate": n_abstained / n if n else None,
        "coverage": answered / n if n else None,
        "accuracy_answered": n_correct / answered if answered else None,
        "score": (n_correct - n_wrong) / n if n else None,
    }


def verdict_calibration(verdicts: Sequence[tuple[bool, float | None]], truth: Sequence[bool]) -> dict:
    """A grader's verdicts (met, P(met)) against reference labels, framed as an exam answer is: the
    confidence in the verdict it gave (P(met) when it said met, 1 - P(met) when not) for that verdict
    being right. Brier equals that of P(met) against the labels; a verdict without P(met) is missing."""
    confidences = [None if p is None else (p if met else 1 - p) for met, p in verdicts]
    outcomes = [met == label for (met, _), label in zip(verdicts, truth, strict=True)]
    return calibration_summary(confidences, outcomes)
