"""Benchmark variants: a data set plus the grader and scoring settings its reference runs with
(``evaluation.settings`` applies a variant's length adjustment when its data set is named).

A description only (nothing here runs anything), so the benchmark contract can register it.
Sources: openai/simple-evals PR #108 (merged 2026-04-22) and the closest reachable copy of
it, medicalsphere/HealthBench at a667c73 (``healthbench/simple_evals.py``,
``healthbench/healthbench_eval.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from medops.scoring.healthbench import LENGTH_ADJUSTED, OVERALL


@dataclass(frozen=True)
class BenchmarkVariant:
    name: str
    data: str  # a built-in dataset name (medops.datasets.registry)
    grader: str  # model spec string
    # what the reference sends to its grader: reasoning effort, and which OpenAI API it calls
    grader_reasoning_effort: str | None
    grader_api: Literal["responses", "chat.completions"]
    # the reference sets no temperature, token limit or system message on this grader
    grader_temperature: float | None
    grader_max_tokens: int | None
    grader_system_message: str | None
    # "simple-evals": the reference's HealthBench GRADER_TEMPLATE, unchanged
    grader_template: Literal["simple-evals"]
    length_center: float | None  # characters
    length_penalty_per_500_chars: float | None
    headline_metric: str  # the reference's ``score`` stays the unadjusted overall score
    extra_metrics: tuple[str, ...]
    reference: str


HEALTHBENCH_PROFESSIONAL = BenchmarkVariant(
    name="healthbench-professional",
    data="healthbench-professional",
    # simple_evals.py 368-376: ResponsesSampler(model="gpt-5.4-2026-03-05", reasoning_model=True,
    # reasoning_effort="low"); responses_sampler.py 63-73 then sends model, input, reasoning only.
    grader="openai:gpt-5.4-2026-03-05",
    grader_reasoning_effort="low",
    grader_api="responses",
    grader_temperature=None,
    grader_max_tokens=None,
    grader_system_message=None,
    grader_template="simple-evals",  # healthbench_eval.py 60-109, used as-is (436-443)
    # healthbench_eval.py 601-604: center 2000 characters, 0.0147 per 500 characters
    length_center=2000.0,
    length_penalty_per_500_chars=0.0147,
    headline_metric=OVERALL,
    extra_metrics=(LENGTH_ADJUSTED,),
    reference="openai/simple-evals#108; medicalsphere/HealthBench@a667c73",
)

VARIANTS: dict[str, BenchmarkVariant] = {v.name: v for v in (HEALTHBENCH_PROFESSIONAL,)}
