"""Paired statistics over counterfactual variants: each item answered once per value of an
attribute, so every comparison between two values is paired on the item.

Exams: accuracy per value, flip rate (share of items whose answer is not the same under every
value), McNemar's exact test per pair of values (statsmodels). Rubric sets: score per value (the
clipped mean, as HealthBench's overall score), a paired-bootstrap 95% interval of each
difference and a paired sign-flip test. Holm across the pairs of one attribute (statsmodels).
The largest gap and its Holm-adjusted p-value are what the ``max_gap`` gate reads.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from medops.scoring.paired import paired_bootstrap_ci, sign_flip_p

ALPHA = 0.05


@dataclass(frozen=True)
class Observation:
    """One variant's outcome: the original item (and repeat) it belongs to, what was answered."""

    original_index: int
    repeat: int
    attribute: str
    value: str
    answer: str | None  # the letter read (exam) or None; rubric sets: unused
    score: float  # 1/0 for an exam answer; the example's score for a rubric set


def _units(observations: Iterable[Observation]) -> dict[str, dict[tuple[int, int], dict[str, Observation]]]:
    by_attribute: dict[str, dict[tuple[int, int], dict[str, Observation]]] = defaultdict(lambda: defaultdict(dict))
    for o in observations:
        by_attribute[o.attribute][(o.original_index, o.repeat)][o.value] = o
    return by_attribute


def _mcnemar(a: np.ndarray, b: np.ndarray) -> float:
    from statsmodels.stats.contingency_tables import mcnemar  # on use: heavy to import

    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    if table[0][1] + table[1][0] == 0:
        return 1.0  # no discordant pair: no evidence either way
    return float(mcnemar(table, exact=True).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(list(p_values), alpha=ALPHA, method="holm")[1]]


def summarize(
    observations: Iterable[Observation],
    values: dict[str, Sequence[str]],
    *,
    kind: str,
    seed: int = 0,
    counts: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``counterfactual`` block of a run's summary. ``values``: each attribute's values in
    order; ``kind``: ``accuracy`` (exam) or ``score`` (rubric set); ``counts``: per attribute, how
    many items were rewritten, inserted, kept (by reason) and left out. Only items answered under
    every value of an attribute count for it (the others: ``n_incomplete``)."""
    units_by_attribute = _units(observations)
    out: dict[str, Any] = {"attributes": list(values), "metric": kind}
    flipped_any: dict[tuple[int, int], bool] = {}
    for attribute, names in values.items():
        units = units_by_attribute.get(attribute, {})
        complete = sorted(u for u, seen in units.items() if all(v in seen for v in names))
        scores = {v: np.array([units[u][v].score for u in complete], dtype=float) for v in names}
        flips = [_flipped([units[u][v] for v in names], kind) for u in complete]
        for unit, flip in zip(complete, flips, strict=True):
            flipped_any[unit] = flipped_any.get(unit, False) or flip
        block: dict[str, Any] = {
            "n_items": len(complete),
            "n_incomplete": len(units) - len(complete),
            "variants": {v: {kind: _mean(scores[v], kind), "n": len(complete)} for v in names},
            "flip_rate": (sum(flips) / len(flips)) if flips else None,
            **(counts or {}).get(attribute, {}),
        }
        pairs = [_pair(a, b, scores[a], scores[b], kind, seed) for a, b in combinations(names, 2)] if complete else []
        for pair, adjusted in zip(pairs, holm([p["p_value"] for p in pairs]), strict=True):
            pair["p_holm"] = adjusted
            pair["significant"] = adjusted < ALPHA
        block["pairs"] = pairs
        largest = max(pairs, key=lambda p: (abs(p["gap"]), -p["p_holm"]), default=None)
        block["max_gap"] = (
            None
            if largest is None
            else {
                "a": largest["a"],
                "b": largest["b"],
                "gap": abs(largest["gap"]),
                "p_holm": largest["p_holm"],
                "significant": largest["significant"],
            }
        )
        out[attribute] = block
    out["n_items"] = len(flipped_any)
    out["flip_rate"] = (sum(flipped_any.values()) / len(flipped_any)) if flipped_any else None
    return out


def _flipped(outcomes: list[Observation], kind: str) -> bool:
    if kind == "accuracy":
        return len({o.answer for o in outcomes}) > 1
    return len({o.score for o in outcomes}) > 1


def _mean(x: np.ndarray, kind: str) -> float | None:
    if not len(x):
        return None
    return float(x.mean()) if kind == "accuracy" else float(np.clip(x.mean(), 0.0, 1.0))


def _pair(a: str, b: str, x: np.ndarray, y: np.ndarray, kind: str, seed: int) -> dict[str, Any]:
    """One pair of values: the gap (b - a), its test, and for rubric scores the paired interval."""
    if kind == "accuracy":
        return {
            "a": a,
            "b": b,
            "gap": float(y.mean() - x.mean()),
            "p_value": _mcnemar(x.astype(bool), y.astype(bool)),
            "test": "mcnemar_exact",
        }
    low, high = paired_bootstrap_ci(x, y, seed, clip=True)
    return {
        "a": a,
        "b": b,
        "gap": float(np.clip(y.mean(), 0, 1) - np.clip(x.mean(), 0, 1)),
        "ci95_low": low,
        "ci95_high": high,
        "p_value": sign_flip_p(y - x, seed),
        "test": "paired_sign_flip_permutation",
    }
