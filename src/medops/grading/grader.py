"""Grading rubric criteria with a grader model, in the three ways medops supports.

* ``text`` (default): one call per criterion, the reply parsed as JSON; an unreadable reply is
  retried, then the criterion is recorded as ungraded. This is HealthBench's reference method.
* ``logprob``: the grader's probability of ``true`` vs ``false`` at the decision point. The
  verdict is P >= 0.5 and P is stored. In-process models score both continuations directly,
  so there is never an unreadable reply; OpenAI-compatible endpoints must return logprobs.
* grouped (``criteria_per_call > 1``): several criteria of one example in one call. Cheaper,
  but a verdict is only taken for a criterion number that appears exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from medops.grading.parse import (
    p_met_from_choice_logprobs,
    p_met_from_token_logprobs,
    parse_group_verdicts,
    parse_verdict,
)
from medops.grading.templates import render_grader_prompt, render_group_prompt
from medops.models.base import Completion, Messages, SamplingParams

TEXT, LOGPROB = "text", "logprob"
DECISION_PREFIX = '{"criteria_met":'
TRUE_FALSE = (" true", " false")

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {"explanation": {"type": "string"}, "criteria_met": {"type": "boolean"}},
    "required": ["explanation", "criteria_met"],
    "additionalProperties": False,
}
GROUP_SCHEMA = {
    "type": "object",
    "properties": {
        "grades": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "explanation": {"type": "string"},
                    "criteria_met": {"type": "boolean"},
                },
                "required": ["index", "explanation", "criteria_met"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["grades"],
    "additionalProperties": False,
}

# (messages, params, use_cache, keep) -> Completion; the pipeline's call adds caching and counting.
CallFn = Callable[[Messages, SamplingParams, bool, Callable[[Completion], bool] | None], Awaitable[Completion]]


def response_format(schema: dict, name: str) -> str:
    return json.dumps({"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}})


@dataclass
class GraderSettings:
    template: str
    group_template: str
    params: SamplingParams
    system_message: str | None = None
    parse_retries: int = 3
    verdict: str = TEXT
    json_schema: bool = False
    criteria_per_call: int = 1
    scores_choices: bool = False  # the grader is an in-process model that can score continuations


@dataclass
class CriterionGrade:
    criterion_index: int
    criteria_met: bool | None
    explanation: str | None = None
    raw_reply: str | None = None
    reason: str | None = None
    p_met: float | None = None
    attempts: int = 0
    cached: bool = False
    notes: dict[str, Any] = field(default_factory=dict)  # before-call notes of its last call (PHI policy)
    usage: dict[str, float] = field(
        default_factory=lambda: {
            "calls": 0,
            "rejected": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "latency_s": 0.0,
        }
    )

    def add(self, completion: Completion, share: int = 1) -> None:
        """Charge this criterion its share of a call (grouped calls are split evenly)."""
        self.attempts += 1
        self.cached = completion.cached
        self.notes = completion.notes
        self.usage["calls"] += completion.calls / share
        self.usage["rejected"] += completion.rejected / share
        self.usage["prompt_tokens"] += completion.prompt_tokens / share
        self.usage["completion_tokens"] += completion.completion_tokens / share
        self.usage["latency_s"] += completion.latency_s / share


class RubricGrader:
    def __init__(self, settings: GraderSettings):
        self.settings = settings
        self._schema_ok = settings.json_schema  # turned off once an endpoint refuses it

    def _messages(self, prompt: str) -> Messages:
        messages: Messages = [{"role": "user", "content": prompt}]
        if self.settings.system_message:
            messages.insert(0, {"role": "system", "content": self.settings.system_message})
        return messages

    def _params(self, schema: dict, name: str) -> SamplingParams:
        params = self.settings.params
        if self.settings.verdict == LOGPROB:
            if self.settings.scores_choices:
                return SamplingParams(assistant_prefix=DECISION_PREFIX, score_choices=TRUE_FALSE)
            params = SamplingParams(**{**params.__dict__, "top_logprobs": 20})
        if self._schema_ok:
            params = SamplingParams(**{**params.__dict__, "response_format": response_format(schema, name)})
        return params

    async def _ask(
        self, call: CallFn, prompt: str, schema: dict, name: str, attempt: int, keep: Callable[[Completion], bool]
    ) -> Completion:
        params = self._params(schema, name)
        completion = await call(self._messages(prompt), params, attempt == 1, keep)
        if params.response_format and completion.error and "HTTP 400" in completion.error:
            self._schema_ok = False  # this endpoint does not take response_format: ask plainly
            completion = await call(self._messages(prompt), self._params(schema, name), attempt == 1, keep)
        return completion

    # one criterion -----------------------------------------------------------------------
    async def grade_one(self, call: CallFn, conversation: str, index: int, rubric_item: str) -> CriterionGrade:
        prompt = render_grader_prompt(self.settings.template, conversation, rubric_item)
        grade = CriterionGrade(index, None)
        for attempt in range(1, self.settings.parse_retries + 2):
            completion = await self._ask(
                call, prompt, VERDICT_SCHEMA, "verdict", attempt, keep=lambda c: self._read(c) is not None
            )
            grade.add(completion)
            if not completion.ok:
                grade.reason = f"grader call failed: {completion.error}"
                return grade  # the transport already retried; asking again would not help
            grade.raw_reply = completion.text
            read = self._read(completion)
            if read is not None:
                grade.criteria_met, grade.explanation, grade.p_met = read
                if self.settings.verdict == LOGPROB and self.settings.scores_choices:
                    grade.raw_reply = json.dumps(completion.extra.get("choice_logprobs"))
                return grade
        grade.reason = f"unreadable grader reply after {grade.attempts} tries"
        return grade

    def _read(self, completion: Completion) -> tuple[bool, str, float | None] | None:
        if self.settings.verdict == LOGPROB:
            if self.settings.scores_choices:
                p = p_met_from_choice_logprobs(completion.extra.get("choice_logprobs") or {})
            else:
                p = p_met_from_token_logprobs(completion.extra.get("logprobs"))
            if p is None:
                return None
            verdict = parse_verdict(completion.text)
            return p >= 0.5, verdict.explanation if verdict else "", p
        verdict = parse_verdict(completion.text)
        return (verdict.criteria_met, verdict.explanation, None) if verdict else None

    # several criteria per call -----------------------------------------------------------
    async def grade_group(self, call: CallFn, conversation: str, items: list[tuple[int, str]]) -> list[CriterionGrade]:
        """Grade ``(criterion_index, rendered_item)`` pairs together; numbers shown are index + 1."""
        grades = {index: CriterionGrade(index, None) for index, _ in items}
        remaining = dict(items)
        for attempt in range(1, self.settings.parse_retries + 2):
            numbered = [(index + 1, text) for index, text in remaining.items()]
            prompt = render_group_prompt(self.settings.group_template, conversation, numbered)
            expected = {number for number, _ in numbered}
            completion = await self._ask(
                call,
                prompt,
                GROUP_SCHEMA,
                "verdicts",
                attempt,
                keep=lambda c, expected=expected: len(parse_group_verdicts(c.text, expected)) == len(expected),
            )
            for index in remaining:
                grades[index].add(completion, share=len(remaining))
            if not completion.ok:
                for index in remaining:
                    grades[index].reason = f"grader call failed: {completion.error}"
                break
            verdicts = parse_group_verdicts(completion.text, expected)
            for number, verdict in verdicts.items():
                grade = grades[number - 1]
                grade.criteria_met, grade.explanation, grade.raw_reply = (
                    verdict.criteria_met,
                    verdict.explanation,
                    completion.text,
                )
                del remaining[number - 1]
            for index in remaining:
                grades[index].raw_reply = completion.text
            if not remaining:
                break
        for index in remaining:
            if grades[index].reason is None:
                grades[
                    index
                ].reason = f"no single verdict for criterion {index + 1} in {grades[index].attempts} grouped replies"
        return [grades[index] for index, _ in items]
