"""The judge seam: the three grader judges satisfy the protocol, and the reducers aggregate as
docs/GRADING.md says (a tie is not met; a jury never shrinks silently)."""

from __future__ import annotations

import pytest

from medops.grading.grader import GraderSettings, GroupedJudge, LogprobJudge, TextJudge, make_judge
from medops.grading.judge import REDUCERS, CriterionJudge, Verdict, aggregate
from medops.models.base import SamplingParams


def settings(**extra) -> GraderSettings:
    return GraderSettings(
        template="<<conversation>> <<rubric_item>>", group_template="g", params=SamplingParams(), **extra
    )


def votes(*said: bool | None, p: list[float | None] | None = None) -> list[Verdict]:
    probabilities = p or [None] * len(said)
    return [
        Verdict(f"judge-{i}", 3, met, p_met=pm, reason=None if met is not None else "grader call failed")
        for i, (met, pm) in enumerate(zip(said, probabilities, strict=True))
    ]


@pytest.mark.parametrize(
    ("kind", "extra"),
    [(TextJudge, {}), (LogprobJudge, {"verdict": "logprob"}), (GroupedJudge, {"criteria_per_call": 4})],
)
def test_each_grader_mode_is_a_criterion_judge_with_a_stable_name(kind, extra):
    judge = make_judge(settings(**extra), None, "openai:gpt-4.1")
    assert type(judge) is kind and isinstance(judge, CriterionJudge)
    assert judge.name == f"{kind.kind}:openai:gpt-4.1"
    assert judge.identity() == make_judge(settings(**extra), None, "openai:gpt-4.1").identity()
    assert judge.identity() != make_judge(settings(**extra, parse_retries=0), None, "openai:gpt-4.1").identity()
    assert judge.criteria_per_call == extra.get("criteria_per_call", 1)


@pytest.mark.parametrize("reducer", REDUCERS)
def test_one_judge_is_its_own_verdict(reducer):
    only = Verdict("text:openai:x", 0, True, explanation="because", raw_reply="{}")
    assert aggregate(reducer, [only]) is only


@pytest.mark.parametrize(
    ("reducer", "said", "met"),
    [
        ("majority", (True, False), False),  # a tie is not met
        ("majority", (True, True, False), True),
        ("majority", (True, False, False), False),
        ("all", (True, True, False), False),
        ("all", (True, True, True), True),
        ("any", (False, False, True), True),
        ("any", (False, False), False),
    ],
)
def test_reducers(reducer, said, met):
    verdict = aggregate(reducer, votes(*said))
    assert (verdict.judge, verdict.criterion_index, verdict.met) == (f"jury:{reducer}", 3, met)
    assert verdict.reason is None and f"{sum(said)} of {len(said)} judges: met" in verdict.explanation


def test_mean_averages_p_met_where_jurors_give_it():
    assert aggregate("mean", votes(True, False, p=[0.9, 0.2])).p_met == pytest.approx(0.55)
    assert aggregate("mean", votes(True, False, p=[0.9, 0.2])).met is True
    low = aggregate("mean", votes(True, False, True, p=[0.6, 0.1, None]))
    assert (low.met, low.p_met) == (False, pytest.approx(0.35))
    none = aggregate("mean", votes(True, False))
    assert none.met is None and "P(met)" in none.reason


@pytest.mark.parametrize("reducer", REDUCERS)
def test_a_juror_without_a_verdict_leaves_the_criterion_ungraded(reducer):
    verdict = aggregate(reducer, votes(True, True, None, p=[0.9, 0.9, None]))
    assert verdict.met is None
    assert verdict.reason == "1 of 3 judges gave no verdict (judge-2: grader call failed)"


def test_an_unknown_reducer_is_refused():
    with pytest.raises(ValueError, match="unknown reducer"):
        aggregate("median", votes(True, False))
