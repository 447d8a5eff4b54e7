"""Agreement on a review set: between physicians (percent agreement, Cohen's kappa for two, Fleiss'
kappa, Krippendorff's alpha with missing labels), and of the grader with the physicians (``medops
meta-eval``'s macro-F1 against the majority label and its pairwise balanced F1, Cohen's kappa
against the majority) overall and by theme, axis, language and criterion polarity, beside the
physicians' own leave-one-out baseline. The physicians' label of a criterion is an operator's
adjudicated (final) label where there is one, else the reviewers' majority (ties: not met); the
agreement between physicians uses their own labels, never the final one. Intervals: 95% percentile
bootstrap over examples (the criteria of one example are not independent)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import krippendorff
import numpy as np

from medops.review.items import Finals, Labels, ReviewItem
from medops.scoring.agreement import (
    cohen_kappa,
    fleiss_kappa,
    macro_f1,
    majority_label,
    pairwise_agreement,
    pooled_physician_agreement,
)

BOOTSTRAP = 1000


@dataclass(frozen=True)
class Unit:
    """One labelled criterion of one example."""

    position: int
    labels: dict[str, bool]  # reviewer -> met
    grader: bool | None
    groups: tuple[str, ...]  # theme:..., axis:..., language:..., polarity:...
    final: bool | None = None  # an operator's adjudicated label, kept beside the reviewers'

    @property
    def reference(self) -> bool:
        """The physicians' label: the adjudicated one, else the majority (ties: not met)."""
        return self.final if self.final is not None else majority_label(list(self.labels.values()))


def units(examples: Sequence[ReviewItem], given: Labels, finals: Finals | None = None) -> list[Unit]:
    finals = finals or {}
    found = []
    for e in examples:
        for c, criterion in enumerate(e.criteria):
            by = given.get((e.position, c))
            if not by:
                continue
            groups = [f"theme:{e.theme}"] if e.theme else []
            groups += [t for t in criterion.tags if t.startswith("axis:")]
            groups += [f"language:{e.language}"] if e.language else []
            groups.append("polarity:negative" if criterion.points < 0 else "polarity:positive")
            found.append(
                Unit(e.position, dict(by), criterion.grader, tuple(groups), finals.get((e.position, c)))
            )
    return found


# between physicians ---------------------------------------------------------------------------
def percent_agreement(chosen: Sequence[Unit], reviewers: Sequence[str]) -> float | None:
    """Mean over criteria with two or more labels of the share of reviewer pairs that agree."""
    shares = []
    for u in chosen:
        k, met = len(u.labels), sum(u.labels.values())
        if k >= 2:
            shares.append((met * (met - 1) + (k - met) * (k - met - 1)) / (k * (k - 1)))
    return sum(shares) / len(shares) if shares else None


def two_reviewer_kappa(chosen: Sequence[Unit], reviewers: Sequence[str]) -> float | None:
    if len(reviewers) != 2:
        return None
    a, b = reviewers
    both = [u for u in chosen if a in u.labels and b in u.labels]
    return cohen_kappa([u.labels[a] for u in both], [u.labels[b] for u in both])


def fleiss(chosen: Sequence[Unit], reviewers: Sequence[str]) -> float | None:
    """Over the criteria every reviewer labelled (Fleiss' kappa needs the same raters per item)."""
    complete = [u for u in chosen if len(u.labels) == len(reviewers)]
    if len(reviewers) < 2 or not complete:
        return None
    return fleiss_kappa([[sum(u.labels.values()), len(u.labels) - sum(u.labels.values())] for u in complete])


def krippendorff_alpha(chosen: Sequence[Unit], reviewers: Sequence[str]) -> float | None:
    """Nominal alpha over every criterion, missing labels allowed (the ``krippendorff`` package);
    None when undefined (fewer than two reviewers, or one value only among criteria labelled twice)."""
    pairable = [u for u in chosen if len(u.labels) >= 2]
    if len(reviewers) < 2 or len({v for u in pairable for v in u.labels.values()}) < 2:
        return None
    data = np.array([[float(u.labels[r]) if r in u.labels else np.nan for u in pairable] for r in reviewers])
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


# grader against physicians -----------------------------------------------------------------------
def _others_majority(u: Unit, reviewer: str) -> bool:
    return majority_label([v for r, v in u.labels.items() if r != reviewer])


def grader_measures(chosen: Sequence[Unit]) -> dict[str, Any]:
    graded = [u for u in chosen if u.grader is not None]
    grader = [bool(u.grader) for u in graded]
    majority = [u.reference for u in graded]
    pairwise = pairwise_agreement(grader, [list(u.labels.values()) for u in graded]) if graded else None
    # each physician against the majority of the others (criteria with two or more labels)
    own, rest = [], []
    for u in chosen:
        if len(u.labels) >= 2:
            for reviewer, met in u.labels.items():
                own.append(met)
                rest.append(_others_majority(u, reviewer))
    pooled = pooled_physician_agreement([list(u.labels.values()) for u in chosen if len(u.labels) >= 2])
    return {
        "n_criteria": len(graded),
        "grader_vs_majority_macro_f1": macro_f1(grader, majority),
        "grader_vs_majority_cohen_kappa": cohen_kappa(grader, majority),
        "grader_pairwise_balanced_f1": pairwise.balanced_f1 if pairwise else None,
        "physicians_leave_one_out": {
            "n_labels": len(own),
            "macro_f1": macro_f1(own, rest),
            "cohen_kappa": cohen_kappa(own, rest),
            "pairwise_balanced_f1": pooled.balanced_f1 if pooled.n_pairs else None,
        },
    }


# intervals -----------------------------------------------------------------------------------
def bootstrap_interval(
    chosen: Sequence[Unit], statistic: Callable[[Sequence[Unit]], float | None], seed: int
) -> dict[str, Any]:
    """The statistic, and its 95% percentile bootstrap interval over examples."""
    value = statistic(chosen)
    by_example: dict[int, list[Unit]] = {}
    for u in chosen:
        by_example.setdefault(u.position, []).append(u)
    clusters = list(by_example.values())
    rng = np.random.default_rng(seed)
    draws = []
    if value is not None and len(clusters) >= 2:
        for picks in rng.integers(0, len(clusters), size=(BOOTSTRAP, len(clusters))):
            v = statistic([u for i in picks for u in clusters[i]])
            if v is not None:
                draws.append(v)
    low, high = (float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))) if draws else (None, None)
    return {"value": value, "ci_low": low, "ci_high": high, "n_bootstrap": len(draws)}


def agreement(
    examples: Sequence[ReviewItem], given: Labels, finals: Finals | None = None, *, seed: int = 0
) -> dict[str, Any]:
    """What ``review status --json`` shows under ``agreement``."""
    chosen = units(examples, given, finals)
    reviewers = sorted({r for u in chosen for r in u.labels})

    def between(fn: Callable[[Sequence[Unit], Sequence[str]], float | None]) -> dict[str, Any]:
        return bootstrap_interval(chosen, lambda us: fn(us, reviewers), seed)

    groups = sorted({g for u in chosen for g in u.groups})
    overall = grader_measures(chosen)
    overall["grader_vs_majority_macro_f1_interval"] = bootstrap_interval(
        chosen, lambda us: grader_measures(us)["grader_vs_majority_macro_f1"], seed
    )
    overall["grader_vs_majority_cohen_kappa_interval"] = bootstrap_interval(
        chosen, lambda us: grader_measures(us)["grader_vs_majority_cohen_kappa"], seed
    )
    return {
        "reviewers": reviewers,
        "n_criteria_labelled": len(chosen),
        "n_criteria_adjudicated": sum(u.final is not None for u in chosen),
        "physicians": {
            "percent_agreement": between(percent_agreement),
            "cohen_kappa": between(two_reviewer_kappa),
            "fleiss_kappa": between(fleiss),
            "krippendorff_alpha": between(krippendorff_alpha),
        },
        "grader": {
            "overall": overall,
            **{g: grader_measures([u for u in chosen if g in u.groups]) for g in groups},
        },
    }
