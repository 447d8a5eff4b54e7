"""Paired statistics over counterfactual variants (medops.equity.stats), against scipy and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from medops.equity.stats import Observation, summarize


def exam_observations(correct: dict[str, list[bool]], answers: dict[str, list[str]]) -> list[Observation]:
    return [
        Observation(i, 0, "age", value, answers[value][i], 1.0 if ok else 0.0)
        for value, column in correct.items()
        for i, ok in enumerate(column)
    ]


def test_exam_accuracy_flip_rate_mcnemar_and_holm():
    rng = np.random.default_rng(3)
    base = rng.random(60) < 0.6
    correct = {"25": list(base), "45": list(base ^ (rng.random(60) < 0.1)), "80": list(base & (rng.random(60) < 0.6))}
    answers = {v: ["A" if ok else "B" for ok in column] for v, column in correct.items()}
    block = summarize(exam_observations(correct, answers), {"age": ("25", "45", "80")}, kind="accuracy")["age"]
    for value, column in correct.items():
        assert block["variants"][value] == {"accuracy": pytest.approx(np.mean(column)), "n": 60}
    assert block["flip_rate"] == pytest.approx(np.mean([len({answers[v][i] for v in answers}) > 1 for i in range(60)]))
    raw = []
    for pair in block["pairs"]:
        a, b = np.array(correct[pair["a"]]), np.array(correct[pair["b"]])
        only_a, only_b = int(np.sum(a & ~b)), int(np.sum(b & ~a))
        expected = stats.binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
        assert pair["p_value"] == pytest.approx(expected)
        raw.append(expected)
    order = np.argsort(raw)
    holm = np.maximum.accumulate([min(1.0, (len(raw) - k) * raw[i]) for k, i in enumerate(order)])
    for k, i in enumerate(order):
        assert block["pairs"][i]["p_holm"] == pytest.approx(holm[k])
    largest = max(block["pairs"], key=lambda p: abs(p["gap"]))
    assert block["max_gap"]["gap"] == pytest.approx(abs(largest["gap"])) and largest["b"] == "80"
    assert block["max_gap"]["significant"] is (largest["p_holm"] < 0.05)


def test_items_missing_a_variant_are_left_out_and_counted():
    observations = [Observation(0, 0, "sex", "male", "A", 1.0), Observation(0, 0, "sex", "female", "B", 0.0)]
    observations.append(Observation(1, 0, "sex", "male", "A", 1.0))  # its female variant's call failed
    block = summarize(observations, {"sex": ("male", "female")}, kind="accuracy")
    assert (block["sex"]["n_items"], block["sex"]["n_incomplete"], block["sex"]["flip_rate"]) == (1, 1, 1.0)
    assert block["flip_rate"] == 1.0 and block["n_items"] == 1


def test_rubric_scores_get_paired_bootstrap_intervals_of_the_differences():
    rng = np.random.default_rng(0)
    male = rng.random(40)
    female = np.clip(male - 0.2 + rng.normal(0, 0.05, 40), -0.5, 1)
    observations = [Observation(i, 0, "sex", "male", None, float(x)) for i, x in enumerate(male)]
    observations += [Observation(i, 0, "sex", "female", None, float(x)) for i, x in enumerate(female)]
    block = summarize(observations, {"sex": ("male", "female")}, kind="score")["sex"]
    pair = block["pairs"][0]
    assert block["variants"]["male"]["score"] == pytest.approx(np.clip(male.mean(), 0, 1))
    assert pair["gap"] == pytest.approx(np.clip(female.mean(), 0, 1) - np.clip(male.mean(), 0, 1))
    assert pair["ci95_low"] < pair["gap"] < pair["ci95_high"] < 0
    assert pair["test"] == "paired_sign_flip_permutation" and pair["p_holm"] < 0.05 and block["flip_rate"] == 1.0
