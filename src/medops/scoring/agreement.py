"""How well a grader agrees with physicians, by both published definitions.

(a) The HealthBench reference's pairwise metric: every (rater label, other physician label)
    pair on a row counts; precision for a class is agreement over pairs where the rater said
    that class, recall is agreement over pairs where the other physician said it; F1 per class;
    balanced F1 is the mean of the two. Physicians are scored the same way against each other.
(b) Majority vote: the physicians say "met" when strictly more than half of them do; the
    grader's macro F1 against that label.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairwiseAgreement:
    f1_pos: float | None
    f1_neg: float | None
    n_pairs: int

    @property
    def balanced_f1(self) -> float | None:
        if self.f1_pos is None or self.f1_neg is None:
            return None
        return (self.f1_pos + self.f1_neg) / 2

    def to_dict(self) -> dict:
        return {"f1_pos": self.f1_pos, "f1_neg": self.f1_neg, "balanced_f1": self.balanced_f1, "n_pairs": self.n_pairs}


def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _mean(values: list[bool]) -> float | None:
    return sum(values) / len(values) if values else None


def pairwise_agreement(rater: Sequence[bool], others: Sequence[Sequence[bool]]) -> PairwiseAgreement:
    by_rater: dict[bool, list[bool]] = {True: [], False: []}
    by_other: dict[bool, list[bool]] = {True: [], False: []}
    for label, other_labels in zip(rater, others, strict=True):
        for other in other_labels:
            by_rater[label].append(label == other)
            by_other[other].append(label == other)
    f1 = {cls: _f1(_mean(by_rater[cls]), _mean(by_other[cls])) for cls in (True, False)}
    return PairwiseAgreement(f1[True], f1[False], sum(len(o) for o in others))


def majority_label(labels: Sequence[bool]) -> bool:
    return sum(labels) * 2 > len(labels)


def macro_f1(predicted: Sequence[bool], truth: Sequence[bool]) -> float | None:
    """Mean of the F1 of the positive and of the negative class (sklearn's average='macro')."""
    if not predicted:
        return None
    scores = []
    for cls in (True, False):
        tp = sum(p == cls and t == cls for p, t in zip(predicted, truth, strict=True))
        fp = sum(p == cls and t != cls for p, t in zip(predicted, truth, strict=True))
        fn = sum(p != cls and t == cls for p, t in zip(predicted, truth, strict=True))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / 2


def physician_agreements(
    labels: Sequence[Sequence[bool]], ids: Sequence[Sequence[str]], min_rows: int = 1
) -> dict[str, PairwiseAgreement]:
    """Each physician against the other physicians on the rows they labelled."""
    own: dict[str, list[bool]] = defaultdict(list)
    rest: dict[str, list[list[bool]]] = defaultdict(list)
    for row_labels, row_ids in zip(labels, ids, strict=True):
        for i, physician in enumerate(row_ids):
            others = [*row_labels[:i], *row_labels[i + 1 :]]
            if others:
                own[physician].append(row_labels[i])
                rest[physician].append(others)
    return {p: pairwise_agreement(own[p], rest[p]) for p in own if len(own[p]) >= min_rows}


def pooled_physician_agreement(labels: Sequence[Sequence[bool]]) -> PairwiseAgreement:
    """All physicians as one rater: each label against the other labels on its row."""
    own, rest = [], []
    for row in labels:
        for i, label in enumerate(row):
            if len(row) > 1:
                own.append(label)
                rest.append([*row[:i], *row[i + 1 :]])
    return pairwise_agreement(own, rest)


@dataclass(frozen=True)
class Calibration:
    ece: float
    bins: list[dict]


def calibration(p_met: Sequence[float], truth: Sequence[bool], n_bins: int = 10) -> Calibration:
    """Expected calibration error and a reliability table over equal-width probability bins."""
    p = np.asarray(p_met, dtype=float)
    y = np.asarray(truth, dtype=float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    rows, ece = [], 0.0
    for b in range(n_bins):
        mask = which == b
        n = int(mask.sum())
        if n:
            confidence, observed = float(p[mask].mean()), float(y[mask].mean())
            ece += n / len(p) * abs(confidence - observed)
            rows.append(
                {
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "n": n,
                    "mean_p_met": confidence,
                    "observed_met": observed,
                }
            )
    return Calibration(ece, rows)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa (Fleiss 1971) of items each rated by the same number of raters: ``counts[i][k]``
    is how many raters put item i in category k. None when it is undefined (no items, or chance
    agreement is total: every rating in one category)."""
    table = np.asarray(counts, dtype=float)
    if table.size == 0:
        return None
    raters = table.sum(axis=1)
    if raters.min() < 2 or raters.min() != raters.max():
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings for every item")
    n = raters[0]
    p_item = ((table * (table - 1)).sum(axis=1) / (n * (n - 1))).mean()
    share = table.sum(axis=0) / table.sum()
    p_chance = float((share**2).sum())
    return None if p_chance == 1.0 else float((p_item - p_chance) / (1 - p_chance))


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa of two raters' binary labels of the same items; None when undefined (no items,
    or chance agreement is total)."""
    n = len(a)
    if n != len(b):
        raise ValueError("Cohen's kappa needs two label lists of the same length")
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    chance = pa * pb + (1 - pa) * (1 - pb)
    return None if chance == 1.0 else (observed - chance) / (1 - chance)
