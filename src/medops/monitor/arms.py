"""A/B arms side by side (``medops monitor compare``), from the online-grading runs of a window.

Per exchange, its overall score from the latest online-grading run that graded it. Two blocks:

* **shadow**: each shadow copy against its primary exchange (same ``pair_id``), both graded: a
  paired test (``medops.scoring.paired``: paired-bootstrap interval, sign-flip permutation test);
* **candidate**: the exchanges routed to the candidate against the primary ones (different
  requests): an unpaired test, a seeded bootstrap interval of the difference of (clipped) means
  resampling each arm on its own, and a two-sided permutation test of the difference of means
  (exact when the arms are small), with the Mann-Whitney U p-value beside it.

Differences are always ``other arm - primary``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

from medops.monitor.online import SOURCE as ONLINE
from medops.monitor.online import exchange_scores
from medops.monitor.windows import as_utc
from medops.scoring.healthbench import OVERALL
from medops.scoring.paired import BOOTSTRAP_SAMPLES, PERMUTATIONS, compare_paired
from medops.store.exchanges import exchanges
from medops.store.repository import Store
from medops.store.schema import Exchange
from medops.store.scores import scores

ALPHA = 0.05


@dataclass(frozen=True)
class UnpairedResult:
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    difference: float  # b - a
    ci95_low: float
    ci95_high: float
    p_value: float
    test: str
    p_mann_whitney: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clipped_mean(x: np.ndarray, axis: int | None = None) -> Any:
    return np.clip(x.mean(axis=axis), 0.0, 1.0)


def compare_unpaired(a: list[float], b: list[float], *, seed: int = 0) -> UnpairedResult:
    """Two independent groups: difference of clipped means ``b - a``, a seeded bootstrap 95%
    interval (each group resampled on its own) and a two-sided permutation test of the difference
    of means (exact when the number of distinct splits is at most the resamples)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    mean_a, mean_b = float(_clipped_mean(x)), float(_clipped_mean(y))
    rng = np.random.default_rng(seed)
    boot_a = _clipped_mean(x[rng.integers(0, len(x), size=(BOOTSTRAP_SAMPLES, len(x)))], axis=1)
    boot_b = _clipped_mean(y[rng.integers(0, len(y), size=(BOOTSTRAP_SAMPLES, len(y)))], axis=1)
    low, high = np.percentile(boot_b - boot_a, [2.5, 97.5])
    p_value, p_mw = 1.0, None
    if len(x) >= 1 and len(y) >= 1 and len(x) + len(y) >= 3 and np.ptp(np.concatenate([x, y])) > 0:
        from scipy import stats  # on use, as in scoring.paired

        result = stats.permutation_test(
            (x, y),
            lambda u, v, axis=-1: np.mean(v, axis=axis) - np.mean(u, axis=axis),
            permutation_type="independent",
            vectorized=True,
            n_resamples=PERMUTATIONS,
            alternative="two-sided",
            random_state=seed,
        )
        p_value = float(result.pvalue)
        p_mw = float(stats.mannwhitneyu(y, x, alternative="two-sided").pvalue)
    return UnpairedResult(
        len(x),
        len(y),
        mean_a,
        mean_b,
        mean_b - mean_a,
        float(low),
        float(high),
        min(1.0, p_value),
        "unpaired_permutation",
        p_mw,
    )


def arm_blocks(found: list[Exchange], graded: dict[int, float], *, seed: int = 0) -> dict[str, Any]:
    """The shadow block (paired) and the candidate block (unpaired) from graded exchanges."""
    by_arm: dict[str, list[Exchange]] = {}
    for exchange in found:
        if exchange.id in graded:
            by_arm.setdefault(exchange.arm or "primary", []).append(exchange)
    primaries = by_arm.get("primary", [])
    primary_by_pair = {e.pair_id: e for e in primaries if e.pair_id}
    pairs = [
        (graded[primary_by_pair[s.pair_id].id], graded[s.id])
        for s in by_arm.get("shadow", [])
        if s.pair_id and s.pair_id in primary_by_pair
    ]
    shadow: dict[str, Any] = {"arms": ["primary", "shadow"], "n": len(pairs), "result": None}
    if pairs:
        paired = compare_paired([p[0] for p in pairs], [p[1] for p in pairs], seed=seed, binary=False).to_dict()
        paired["significant"] = paired["p_value"] < ALPHA
        shadow["result"] = paired
    primary_scores = [graded[e.id] for e in primaries]
    candidate_scores = [graded[e.id] for e in by_arm.get("candidate", [])]
    candidate: dict[str, Any] = {
        "arms": ["primary", "candidate"],
        "n": {"primary": len(primary_scores), "candidate": len(candidate_scores)},
        "result": None,
    }
    if primary_scores and candidate_scores:
        unpaired = compare_unpaired(primary_scores, candidate_scores, seed=seed).to_dict()
        unpaired["significant"] = unpaired["p_value"] < ALPHA
        candidate["result"] = unpaired
    return {"shadow": shadow, "candidate": candidate}


def online_runs(store: Store, start: datetime | None, end: datetime) -> list[int]:
    """Online-grading runs whose window overlaps ``[start, end)``, newest first."""
    found: dict[int, datetime] = {}
    for row in scores(store, source=ONLINE, until=end, tag="all", metric=OVERALL):
        if row.run_id is None:
            continue
        if start is not None and row.window_end <= as_utc(start):
            continue
        found[row.run_id] = max(row.created_at, found.get(row.run_id, row.created_at))
    return sorted(found, key=lambda run_id: (found[run_id], run_id), reverse=True)


def compare_arms(store: Store, *, start: datetime | None, end: datetime, seed: int = 0) -> dict[str, Any]:
    """``monitor compare``: both blocks over the exchanges of ``[start, end)`` that online grading
    scored (an exchange graded by several runs takes its latest run's score)."""
    graded: dict[int, float] = {}
    runs = online_runs(store, start, end)
    for run_id in runs:  # newest first: the first score seen for an exchange wins
        for exchange_id, value in exchange_scores(store, run_id).items():
            graded.setdefault(exchange_id, value)
    found = exchanges(store, since=start, until=end)
    blocks = arm_blocks(found, graded, seed=seed)
    return {
        "window_start": as_utc(start).isoformat() if start is not None else None,
        "window_end": as_utc(end).isoformat(),
        "runs": runs,
        "graded_exchanges": sum(1 for e in found if e.id in graded),
        "exchanges": len(found),
        "seed": seed,
        "alpha": ALPHA,
        **blocks,
    }
