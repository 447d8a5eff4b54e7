"""Paired comparison of two runs on the same items: effect size, interval, test, correction.

Rubric scores: the difference of clipped means with a seeded paired-bootstrap 95% interval and
a paired sign-flip permutation test. Right/wrong exam items: McNemar's exact test. Across
metrics: Holm-Bonferroni. (An unpaired test on paired data, as some harnesses use, throws away
the pairing and with it most of the power.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_SAMPLES = 2000
PERMUTATIONS = 9999


@dataclass(frozen=True)
class PairedResult:
    n: int
    mean_a: float
    mean_b: float
    difference: float  # b - a
    ci95_low: float
    ci95_high: float
    p_value: float
    test: str
    better: int  # items where b > a
    worse: int
    unchanged: int

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _clipped(x: np.ndarray, axis: int | None = None) -> np.ndarray:
    return np.clip(x.mean(axis=axis), 0.0, 1.0)


def paired_bootstrap_ci(a: np.ndarray, b: np.ndarray, seed: int, clip: bool) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(a), size=(BOOTSTRAP_SAMPLES, len(a)))
    mean = _clipped if clip else (lambda x, axis=None: x.mean(axis=axis))
    diffs = mean(b[index], axis=1) - mean(a[index], axis=1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


def sign_flip_p(differences: np.ndarray, seed: int) -> float:
    """Two-sided paired permutation test of mean difference zero (signs flipped at random)."""
    if len(differences) < 2 or not np.any(differences):
        return 1.0  # one pair (or no change) is no evidence either way
    from scipy import stats  # on use: scipy.stats costs ~0.6 s at start-up, and most commands never test

    result = stats.permutation_test(
        (differences,),
        np.mean,
        permutation_type="samples",
        n_resamples=PERMUTATIONS,
        alternative="two-sided",
        random_state=seed,
    )
    return float(result.pvalue)


def mcnemar_exact_p(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Exact McNemar: among discordant pairs, is 'only b right' as likely as 'only a right'?"""
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    if only_a + only_b == 0:
        return 1.0
    from scipy import stats

    return float(stats.binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue)


def compare_paired(a: Sequence[float], b: Sequence[float], *, seed: int, binary: bool) -> PairedResult:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    clip = not binary
    mean_a = float(_clipped(x)) if clip else float(x.mean())
    mean_b = float(_clipped(y)) if clip else float(y.mean())
    low, high = paired_bootstrap_ci(x, y, seed, clip)
    if binary:
        p, test = mcnemar_exact_p(x.astype(bool).tolist(), y.astype(bool).tolist()), "mcnemar_exact"
    else:
        p, test = sign_flip_p(y - x, seed), "paired_sign_flip_permutation"
    return PairedResult(
        len(x),
        mean_a,
        mean_b,
        mean_b - mean_a,
        low,
        high,
        p,
        test,
        int((y > x).sum()),
        int((y < x).sum()),
        int((y == x).sum()),
    )


def holm(p_values: dict[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    ordered = sorted(p_values.items(), key=lambda kv: kv[1])
    adjusted, running = {}, 0.0
    m = len(ordered)
    for rank, (name, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[name] = running
    return adjusted
