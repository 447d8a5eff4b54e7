"""Agreement on a review set equals an independent computation on the same labels: hand-written
formulas here (contingency tables, coincidence matrices), nothing shared with medops's code."""

from __future__ import annotations

from itertools import permutations

import krippendorff
import numpy as np
import pytest

from medops.review.agreement import agreement
from medops.review.items import Criterion, ReviewItem

# 6 examples x 2 criteria; reviewer C skips example 5; the grader's verdict per criterion
A = [True, False, True, True, False, False, True, True, False, True, True, False]
B = [True, False, False, True, False, True, True, True, False, False, True, False]
C = [True, True, True, True, False, False, True, False, False, True, None, None]
GRADER = [True, False, True, False, False, False, True, True, True, True, True, False]
THEMES = ["hedging", "hedging", "emergency", "emergency", "hedging", "emergency"]
LANGUAGES = ["en", "ko", "en", "ko", "en", "ar"]


def review_set():
    examples, given = [], {}
    for e in range(6):
        criteria = tuple(
            Criterion(
                f"c{e}-{c}",
                5 if c == 0 else -2,
                ("axis:accuracy" if c == 0 else "axis:safety",),
                GRADER[2 * e + c],
                None,
                {},
            )
            for c in range(2)
        )
        examples.append(ReviewItem(e, e, 0, f"p{e}", [], "r", criteria, {"theme": THEMES[e], "language": LANGUAGES[e]}))
        for c in range(2):
            u = 2 * e + c
            given[(e, c)] = {r: v[u] for r, v in (("A", A), ("B", B), ("C", C)) if v[u] is not None}
    return examples, given


def kappa_by_table(a, b):
    n = len(a)
    table = {
        (x, y): sum(1 for p, q in zip(a, b, strict=True) if (p, q) == (x, y))
        for x in (True, False)
        for y in (True, False)
    }
    observed = (table[True, True] + table[False, False]) / n
    a_yes, b_yes = (table[True, True] + table[True, False]) / n, (table[True, True] + table[False, True]) / n
    chance = a_yes * b_yes + (1 - a_yes) * (1 - b_yes)
    return (observed - chance) / (1 - chance)


def alpha_by_coincidences(units):
    """Nominal Krippendorff's alpha from the coincidence matrix (Krippendorff 2011, sec. C)."""
    o = {(c, k): 0.0 for c in (True, False) for k in (True, False)}
    for values in units:
        if len(values) >= 2:
            for i, j in permutations(range(len(values)), 2):
                o[values[i], values[j]] += 1 / (len(values) - 1)
    n_c = {c: o[c, True] + o[c, False] for c in (True, False)}
    n = sum(n_c.values())
    disagree = o[True, False] + o[False, True]
    expected = 2 * n_c[True] * n_c[False] / (n - 1)
    return 1 - disagree / expected


def macro_f1_by_hand(pred, truth):
    f1s = []
    for cls in (True, False):
        tp = sum(p == cls == t for p, t in zip(pred, truth, strict=True))
        fp = sum(p == cls != t for p, t in zip(pred, truth, strict=True))
        fn = sum(t == cls != p for p, t in zip(pred, truth, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return sum(f1s) / 2


def test_physician_agreement_equals_an_independent_computation():
    examples, given = review_set()
    result = agreement(examples, given)
    physicians = result["physicians"]
    units = [[v[u] for v in (A, B, C) if v[u] is not None] for u in range(12)]

    pairs = [sum(x == y for x, y in permutations(us, 2)) / (len(us) * (len(us) - 1)) for us in units]
    assert physicians["percent_agreement"]["value"] == pytest.approx(sum(pairs) / 12)
    assert physicians["cohen_kappa"]["value"] is None  # three reviewers: Cohen's kappa is for two

    # Fleiss over the 10 criteria all three labelled: P_i and P_e by hand
    complete = units[:10]
    p_i = [(sum(us) * (sum(us) - 1) + (3 - sum(us)) * (2 - sum(us))) / 6 for us in complete]
    share = sum(sum(us) for us in complete) / 30
    p_e = share**2 + (1 - share) ** 2
    assert physicians["fleiss_kappa"]["value"] == pytest.approx((np.mean(p_i) - p_e) / (1 - p_e))

    alpha = physicians["krippendorff_alpha"]["value"]
    assert alpha == pytest.approx(alpha_by_coincidences(units))
    matrix = np.array([[np.nan if v[u] is None else float(v[u]) for u in range(12)] for v in (A, B, C)])
    assert alpha == pytest.approx(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))
    for measure in ("percent_agreement", "fleiss_kappa", "krippendorff_alpha"):
        interval = physicians[measure]
        assert interval["ci_low"] <= interval["value"] <= interval["ci_high"] and interval["n_bootstrap"] > 900

    # one value only among the criteria labelled twice: alpha is undefined, never NaN
    one = {k: {r: v for r, v in by.items() if r != "C"} for k, by in given.items()}
    one = {k: (by if k == (0, 0) else {"A": by["A"]}) for k, by in one.items()}
    assert agreement(examples, one)["physicians"]["krippendorff_alpha"]["value"] is None

    two = {k: {r: v for r, v in by.items() if r != "C"} for k, by in given.items()}
    assert agreement(examples, two)["physicians"]["cohen_kappa"]["value"] == pytest.approx(kappa_by_table(A, B))


def test_grader_against_physicians_overall_and_by_group():
    examples, given = review_set()
    grader = agreement(examples, given)["grader"]
    majority = [sum(us) * 2 > len(us) for us in ([v[u] for v in (A, B, C) if v[u] is not None] for u in range(12))]
    overall = grader["overall"]
    assert overall["n_criteria"] == 12
    assert overall["grader_vs_majority_macro_f1"] == pytest.approx(macro_f1_by_hand(GRADER, majority))
    assert overall["grader_vs_majority_cohen_kappa"] == pytest.approx(kappa_by_table(GRADER, majority))
    interval = overall["grader_vs_majority_macro_f1_interval"]
    assert interval["value"] == overall["grader_vs_majority_macro_f1"] and interval["ci_low"] <= interval["ci_high"]

    # leave-one-out: each label against the majority of the others on its criterion (ties: not met)
    own, rest = [], []
    for u in range(12):
        labels = [v[u] for v in (A, B, C) if v[u] is not None]
        for i, label in enumerate(labels):
            others = labels[:i] + labels[i + 1 :]
            own.append(label)
            rest.append(sum(others) * 2 > len(others))
    baseline = overall["physicians_leave_one_out"]
    assert baseline["n_labels"] == len(own) == 34
    assert baseline["macro_f1"] == pytest.approx(macro_f1_by_hand(own, rest))
    assert baseline["cohen_kappa"] == pytest.approx(kappa_by_table(own, rest))

    negative = [u for u in range(12) if u % 2 == 1]
    assert grader["polarity:negative"]["grader_vs_majority_macro_f1"] == pytest.approx(
        macro_f1_by_hand([GRADER[u] for u in negative], [majority[u] for u in negative])
    )
    hedging = [u for u in range(12) if THEMES[u // 2] == "hedging"]
    assert grader["theme:hedging"]["n_criteria"] == len(hedging) == 6
    assert grader["theme:hedging"]["grader_vs_majority_cohen_kappa"] == pytest.approx(
        kappa_by_table([GRADER[u] for u in hedging], [majority[u] for u in hedging])
    )
    assert {"axis:accuracy", "axis:safety", "language:en", "language:ko", "language:ar"} <= set(grader)


def test_an_adjudicated_label_replaces_the_majority_for_the_grader_but_not_between_physicians():
    examples, given = review_set()
    before = agreement(examples, given)
    majority = [sum(us) * 2 > len(us) for us in ([v[u] for v in (A, B, C) if v[u] is not None] for u in range(12))]
    # an operator settles two criteria against their majority
    finals = {(0, 0): not majority[0], (2, 1): not majority[5]}
    after = agreement(examples, given, finals)
    reference = list(majority)
    reference[0], reference[5] = not majority[0], not majority[5]
    overall = after["grader"]["overall"]
    assert after["n_criteria_adjudicated"] == 2 and before["n_criteria_adjudicated"] == 0
    assert overall["grader_vs_majority_macro_f1"] == pytest.approx(macro_f1_by_hand(GRADER, reference))
    assert overall["grader_vs_majority_macro_f1"] != before["grader"]["overall"]["grader_vs_majority_macro_f1"]
    assert after["physicians"] == before["physicians"]  # reviewers' own labels, never the final one
    assert overall["physicians_leave_one_out"] == before["grader"]["overall"]["physicians_leave_one_out"]
