"""Confidence readers and calibration figures (scoring/confidence.py, scoring/calibration.py).

TABLE holds the answers the stated-confidence rules were written against; HELD_OUT was written
after the rules were frozen and is scored for parse accuracy (benchmarks/confidence_parsing.py
prints the figure; docs/GRADING.md "Calibration" quotes it).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from medops.scoring.calibration import abstention_score, calibration, calibration_summary, reliability
from medops.scoring.confidence import (
    is_abstention,
    letter_probability,
    option_probability,
    stated_confidence,
    without_stated_confidence,
)
from medops.scoring.extract import extract_choice

TABLE = [
    ("Answer: B\nConfidence: 80%", 0.8),
    ("Answer: C\nConfidence: 0.65", 0.65),
    ("Answer: A\nconfidence - 95 %", 0.95),
    ("The answer is D. I am 70% confident.", 0.7),
    ("Answer: B\nConfidence level: 55", 0.55),
    ("정답: C\n확신도: 90%", 0.9),
    ("정답: A\n신뢰도: 0.4", 0.4),
    ("Answer: B", None),
    ("Answer: B\nConfidence: high", None),
    ("Answer: B\nConfidence: 150%", None),
    ("Answer: A\nConfidence: 60%\nOn reflection, Confidence: 75%", 0.75),
]
HELD_OUT = [
    ("Answer: E\nConfidence: 30%", 0.3),
    ("**Answer:** C\n**Confidence:** 85%", 0.85),
    ("Answer: A (Confidence: 99%)", 0.99),
    ("B. I'm about 60 percent sure.", 0.6),
    ("Answer: D\nConfidence score = 0.72", 0.72),
    ("Answer: B\nCertainty: 40%", 0.4),
    ("정답: B\n확신도: 75 %", 0.75),
    ("정답: D\n확신도는 60%입니다.", 0.6),
    ("답: 3번\n확신: 80퍼센트", 0.8),
    ("Answer: C\nConfidence (0-100): 65", 0.65),
    ("Answer: A", None),
    ("I would pick A because of the 20% mortality figure.", None),
]


@pytest.mark.parametrize(("text", "expected"), TABLE)
def test_stated_confidence(text, expected):
    got = stated_confidence(text)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_stated_confidence_held_out_accuracy():
    right = sum(
        (got is None and expected is None) or (got is not None and expected is not None and math.isclose(got, expected))
        for text, expected in HELD_OUT
        for got in [stated_confidence(text)]
    )
    assert right / len(HELD_OUT) >= 0.9, right


def test_confidence_statements_are_never_read_as_the_answer():
    letters, options = "ABCDE", {k: f"option {k}" for k in "ABCDE"}
    text = "Answer: B\nConfidence: 3"  # "3" alone would read as option C
    assert extract_choice(without_stated_confidence(text), letters, options).choice == "B"


def test_option_probability_is_the_softmax_share():
    scores = {" A": math.log(0.2), " B": math.log(0.6), " C": math.log(0.2)}
    assert option_probability(scores, "B") == pytest.approx(0.6)
    assert option_probability(scores, None) is None and option_probability({}, "A") is None


def test_letter_probability_reads_the_answer_token():
    logprobs = {
        "content": [
            {"token": "The", "logprob": 0.0, "top_logprobs": []},
            {"token": " A", "logprob": math.log(0.3), "top_logprobs": []},  # an earlier mention
            {"token": "\\boxed{", "logprob": 0.0, "top_logprobs": []},
            {
                "token": "B",
                "logprob": math.log(0.5),
                "top_logprobs": [
                    {"token": "B", "logprob": math.log(0.5)},
                    {"token": " B", "logprob": math.log(0.1)},
                    {"token": "C", "logprob": math.log(0.2)},
                    {"token": "The", "logprob": math.log(0.2)},  # not an option: left out
                ],
            },
        ]
    }
    assert letter_probability(logprobs, "B", "ABC") == pytest.approx(0.6 / 0.8)
    assert letter_probability(logprobs, "A", "ABC") == pytest.approx(0.3)  # no alternatives: its own
    assert letter_probability(logprobs, "D", "ABCD") is None and letter_probability(None, "B", "AB") is None


@pytest.mark.parametrize(
    ("text", "chosen", "abstains"),
    [
        ("I don't know.", None, True),
        ("I do not know the answer.", None, True),
        ("모르겠습니다.", None, True),
        ("정답을 알 수 없습니다.", None, True),
        ("I don't know for sure, but the answer is B.", "B", False),  # it answered
        ("Answer: unclear", None, False),  # unparsed, not an abstention
        ("", None, False),
    ],
)
def test_abstention(text, chosen, abstains):
    assert is_abstention(text, chosen) is abstains


def _ece(confidence, outcome, bins):
    n = len(confidence)
    return sum(len(b) / n * abs(np.mean(confidence[b]) - np.mean(outcome[b])) for b in bins if len(b))


def test_calibration_figures_match_an_independent_computation():
    rng = np.random.default_rng(3)
    confidence = rng.uniform(0, 1, 500)
    outcome = (rng.uniform(0, 1, 500) < confidence**1.5).astype(float)
    got = calibration([*confidence, None, None], [*outcome, 1, 0])
    width = [np.flatnonzero((confidence > i / 15) & (confidence <= (i + 1) / 15)) for i in range(15)]
    mass = np.array_split(np.argsort(confidence), 15)
    assert got["ece"] == pytest.approx(_ece(confidence, outcome, width))
    assert got["ece_adaptive"] == pytest.approx(_ece(confidence, outcome, mass))
    assert got["brier"] == pytest.approx(np.mean((confidence - outcome) ** 2))
    assert got["auroc"] == pytest.approx(roc_auc_score(outcome, confidence))
    top = np.argsort(-confidence)
    for coverage in (0.5, 0.8, 0.9):
        kept = top[: math.ceil(coverage * 500)]
        assert got["selective_accuracy"][f"{coverage:g}"] == pytest.approx(outcome[kept].mean())
    assert set(got) == {"ece", "ece_adaptive", "brier", "auroc", "selective_accuracy"}


def test_calibrated_and_overconfident_answers():
    # confidence 0.75 on 4 answers, 3 right: perfectly calibrated; all wrong: ECE = 0.75
    assert calibration([0.75] * 4, [1, 1, 1, 0])["ece"] == pytest.approx(0.0)
    assert calibration([0.75] * 4, [0, 0, 0, 0])["ece"] == pytest.approx(0.75)
    assert calibration([0.75] * 4, [0, 0, 0, 0])["auroc"] is None  # one class: undefined, not 0.5


def test_missing_confidence_is_excluded_and_counted():
    summary = calibration_summary([None, 0.9, None], [1, 1, 0])
    assert summary["n_missing_confidence"] == 2 and summary["n_with_confidence"] == 1
    assert summary["calibration"]["brier"] == pytest.approx(0.01)
    empty = calibration_summary([None], [1])
    assert empty["calibration"]["ece"] is None and empty["reliability"] == []
    assert reliability([0.0, 1.0], [0, 1]) == [
        {"low": 0.0, "high": 1 / 15, "n": 1, "confidence": 0.0, "accuracy": 0.0},
        {"low": 14 / 15, "high": 1.0, "n": 1, "confidence": 1.0, "accuracy": 1.0},
    ]


def test_abstention_score():
    got = abstention_score(n_correct=6, n_wrong=2, n_abstained=2)
    assert got == {
        "n_abstained": 2,
        "abstention_rate": 0.2,
        "coverage": 0.8,
        "accuracy_answered": 0.75,
        "score": pytest.approx(0.4),
    }
