"""Where the grader departs from the physicians: per group of labelled criteria, the grader's rate of
"met" minus the physicians' (each criterion's adjudicated label where an operator set one, else the
majority label; ties: not met, as ``medops meta-eval``), with a 95% percentile bootstrap interval
over examples (the criteria of one example are not independent), and the number of labelled criteria
the row rests on.

Groups: every labelled criterion (``overall``), then by theme, axis, language, polarity (positive /
negative points) and response length in fixed bands of characters (fixed, not terciles, so that the
rows of two runs or two sets compare): under 500, 500 to 1999, 2000 and over. A positive difference:
the grader says "met" more often than the physicians."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from medops.review.agreement import Unit, bootstrap_interval, units
from medops.review.items import Finals, Labels, ReviewItem
from medops.review.sets import finals, items, labels
from medops.store import reviews
from medops.store.repository import Store
from medops.store.schema import Run

LENGTH_BANDS = (
    (0, 500, "length:<500 chars"),
    (500, 2000, "length:500-1999 chars"),
    (2000, None, "length:>=2000 chars"),
)
ORDER = ("overall", "theme:", "axis:", "language:", "polarity:", "length:")


def length_band(response: str) -> str:
    n = len(response or "")
    return next(name for low, high, name in LENGTH_BANDS if n >= low and (high is None or n < high))


def _rates(chosen: Sequence[Unit]) -> tuple[float, float] | None:
    graded = [u for u in chosen if u.grader is not None]
    if not graded:
        return None
    grader = sum(bool(u.grader) for u in graded) / len(graded)
    physicians = sum(u.reference for u in graded) / len(graded)
    return grader, physicians


def _difference(chosen: Sequence[Unit]) -> float | None:
    rates = _rates(chosen)
    return rates[0] - rates[1] if rates else None


def _row(group: str, chosen: Sequence[Unit], seed: int) -> dict[str, Any]:
    rates = _rates(chosen)
    interval = bootstrap_interval(chosen, _difference, seed)
    return {
        "group": group,
        "n_criteria": sum(u.grader is not None for u in chosen),
        "n_examples": len({u.position for u in chosen}),
        "grader_met_rate": rates[0] if rates else None,
        "physician_met_rate": rates[1] if rates else None,
        "difference": interval["value"],
        "ci_low": interval["ci_low"],
        "ci_high": interval["ci_high"],
    }


def bias_units(examples: Sequence[ReviewItem], given: Labels, finals: Finals | None = None) -> list[Unit]:
    """The labelled criteria, each also grouped by its response's length band."""
    by_position = {e.position: e for e in examples}
    return [
        replace(u, groups=(*u.groups, length_band(by_position[u.position].response)))
        for u in units(examples, given, finals)
    ]


def bias_table(chosen: Sequence[Unit], *, seed: int = 0) -> dict[str, Any] | None:
    """``{length_bands, rows}``; None without a labelled criterion the grader graded."""
    if not any(u.grader is not None for u in chosen):
        return None
    groups = sorted({g for u in chosen for g in u.groups}, key=lambda g: (ORDER.index(g.split(":")[0] + ":"), g))
    rows = [_row("overall", chosen, seed)]
    rows += [_row(g, [u for u in chosen if g in u.groups], seed) for g in groups]
    bands = [{"group": name, "min_chars": low, "max_chars": high} for low, high, name in LENGTH_BANDS]
    return {"length_bands": bands, "rows": rows}


def set_bias(
    examples: Sequence[ReviewItem], given: Labels, finals: Finals | None = None, *, seed: int = 0
) -> dict[str, Any] | None:
    """What ``review status --json`` shows under ``bias``."""
    return bias_table(bias_units(examples, given, finals), seed=seed)


def run_bias(store: Store, run: Run) -> dict[str, Any] | None:
    """The bias table over every review set of a run (each example of each set its own cluster:
    a set chosen for disagreement describes the hard cases, not the run); None without labels."""
    chosen: list[Unit] = []
    for n, review_set in enumerate(reviews.sets_of_run(store, run.id)):
        offset = n * 1_000_000  # positions are per set; clusters must not merge across sets
        found = bias_units(items(store, review_set), labels(store, review_set), finals(store, review_set))
        chosen += [replace(u, position=u.position + offset) for u in found]
    return bias_table(chosen, seed=0)
