"""HealthBench scoring, equal to the reference implementation (simple-evals).

* example score = points of met criteria (negative ones included) / sum of positive points;
  not clipped, so it can be negative;
* example tags (``theme:*``, ``physician_agreed_category:*``) take the example's score;
  rubric tags (``axis:*``, ``level:*``, ``cluster:*``) are scored over their own criteria and
  skipped for an example where those criteria carry no positive points;
* every metric reports the mean over examples clipped to [0, 1], the standard deviation of
  1,000 bootstrap means (each clipped), and n. Unlike the reference, the bootstrap is seeded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from medops.datasets.healthbench import RubricItem

OVERALL = "overall_score"
LENGTH_ADJUSTED = "overall_score_length_adjusted"
BOOTSTRAP_SAMPLES = 1000


def points_score(items: Sequence[RubricItem], met: Sequence[bool]) -> float | None:
    """Met points / positive points, or None when the items carry no positive points."""
    possible = sum(item.points for item in items if item.points > 0)
    if possible == 0:
        return None
    return sum(item.points for item, is_met in zip(items, met, strict=True) if is_met) / possible


def example_metrics(example_tags: Sequence[str], items: Sequence[RubricItem], met: Sequence[bool]) -> dict[str, float]:
    """All metric values one fully graded example contributes."""
    overall = points_score(items, met)
    if overall is None:
        raise ValueError("an example needs at least one positive-point criterion")
    metrics = {OVERALL: overall}
    metrics.update({tag: overall for tag in example_tags})
    by_tag: dict[str, tuple[list[RubricItem], list[bool]]] = defaultdict(lambda: ([], []))
    for item, is_met in zip(items, met, strict=True):
        for tag in item.tags:
            by_tag[tag][0].append(item)
            by_tag[tag][1].append(is_met)
    for tag, (tag_items, tag_met) in by_tag.items():
        score = points_score(tag_items, tag_met)
        if score is not None:
            metrics[tag] = score
    return metrics


def length_adjusted_per_500_chars(
    score: float, response_text: str, *, center: float, penalty_per_500_chars: float
) -> float:
    """The reference's ``calculate_length_adjusted_score``, float for float.

    Penalty per 500 characters, Python ``len`` (code points); divided before it is multiplied,
    as the reference does. Not clipped per example: the mean is clipped later.
    """
    return score - penalty_per_500_chars * ((len(response_text) - center) / 500.0)


def check_length_adjustment(center: float | None, penalty_per_500_chars: float | None) -> bool:
    """Whether length adjustment is on; refuses what the reference refuses (one of the two
    set without the other, a negative value) with a ValueError."""
    if center is None and penalty_per_500_chars is None:
        return False
    if center is None or penalty_per_500_chars is None:
        raise ValueError("length adjustment needs both a center and a penalty per 500 characters")
    if center < 0:
        raise ValueError("length adjustment center must be non-negative")
    if penalty_per_500_chars < 0:
        raise ValueError("length adjustment penalty per 500 characters must be non-negative")
    return True


@dataclass(frozen=True)
class MetricSummary:
    mean: float
    bootstrap_std: float
    n_samples: int

    def to_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "bootstrap_std": self.bootstrap_std, "n_samples": self.n_samples}


def clipped_mean(values: np.ndarray) -> float:
    return float(np.clip(values.mean(), 0.0, 1.0))


def bootstrap_std(values: np.ndarray, rng: np.random.Generator, samples: int = BOOTSTRAP_SAMPLES) -> float:
    """Std of the clipped mean over ``samples`` resamples with replacement (vectorised)."""
    n = len(values)
    means = np.empty(samples)
    chunk = max(1, min(samples, 4_000_000 // max(n, 1)))  # bounded memory for large n
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        means[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return float(np.clip(means, 0.0, 1.0).std())


def summarize(values: Sequence[float], seed: int) -> MetricSummary:
    array = np.asarray(values, dtype=float)
    return MetricSummary(clipped_mean(array), bootstrap_std(array, np.random.default_rng(seed)), len(array))


def aggregate(per_example: Iterable[Mapping[str, float]], seed: int) -> dict[str, MetricSummary]:
    """Summaries for every metric any example reported, sorted by name with overall first.

    Every metric draws from a fresh generator seeded with ``seed``: adding a tag never changes
    another metric's bootstrap, and metrics with the same values get the same std.
    """
    values: dict[str, list[float]] = defaultdict(list)
    for metrics in per_example:
        for name, value in metrics.items():
            values[name].append(value)
    names = sorted(values, key=lambda name: (name not in (OVERALL, LENGTH_ADJUSTED), name))
    return {name: summarize(values[name], seed) for name in names}
