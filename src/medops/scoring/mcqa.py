"""Exam scoring: accuracy with a 95% Wilson interval and a seeded bootstrap, per breakdown."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

from medops.scoring.healthbench import bootstrap_std

Z95 = 1.959963984540054


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval: sensible at 0%, 100% and small n, unlike the normal one."""
    if n == 0:
        return (0.0, 0.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def accuracy_metric(outcomes: list[bool], seed: int) -> dict[str, float | int]:
    n, correct = len(outcomes), sum(outcomes)
    low, high = wilson_interval(correct, n)
    array = np.asarray(outcomes, dtype=float)
    return {
        "mean": correct / n if n else 0.0,
        "bootstrap_std": bootstrap_std(array, np.random.default_rng(seed)) if n else 0.0,
        "n_samples": n,
        "ci95_low": low,
        "ci95_high": high,
    }


def summarize_answers(records: Iterable[tuple[bool, bool, Mapping[str, str]]], seed: int) -> dict:
    """``records`` are (correct, parsed, tags) per answered item. Unparsed answers count as wrong."""
    overall: list[bool] = []
    parsed = 0
    groups: dict[str, list[bool]] = defaultdict(list)
    for correct, was_parsed, tags in records:
        overall.append(correct)
        parsed += was_parsed
        for key, value in tags.items():
            if value:
                groups[f"{key}:{value}"].append(correct)
    metrics = {"accuracy": accuracy_metric(overall, seed)}
    metrics.update({name: accuracy_metric(values, seed) for name, values in sorted(groups.items())})
    n = len(overall)
    return {
        "score": metrics["accuracy"]["mean"] if n else None,
        "bootstrap_std": metrics["accuracy"]["bootstrap_std"] if n else None,
        "n_examples": n,
        "n_unparsed": n - parsed,
        "unparsed_rate": (n - parsed) / n if n else None,
        "metrics": metrics,
    }
