"""Grading rubric criteria with a grader model, in the three ways medops supports: three judges
(``grading.judge.CriterionJudge``), built by :func:`make_judge` from a run's grader settings.

* ``text`` (default): one call per criterion, the reply parsed as JSON; an unreadable reply is
  retried, then the criterion is recorded as ungraded. This is HealthBench's reference method.
* ``logprob``: the grader's probability of ``true`` vs ``false`` at the decision point. The
  verdict is P >= 0.5 and P is stored. In-process models score both continuations directly,
  so there is never an unreadable reply; OpenAI-compatible endpoints must return logprobs.
* grouped (``criteria_per_call > 1``): several criteria of one example in one call. Cheaper,
  but a verdict is only taken for a criterion number that appears exactly once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from medops.grading.judge import CallFn, Criterion, Verdict
from medops.grading.parse import (
    p_met_from_choice_logprobs,
    p_met_from_token_logprobs,
    parse_group_verdicts,
    parse_verdict,
)
from medops.grading.templates import render_conversation, render_grader_prompt, render_group_prompt
from medops.models.base import ChatModel, Completion, Messages, SamplingParams

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


def _sha256(text: str | None) -> str | None:
    return hashlib.sha256(text.encode()).hexdigest() if text is not None else None


class GraderJudge:
    """What the three grader judges share: the prompt's messages, sampling, the JSON-schema
    fallback and their identity. ``label`` is the grader's ``backend:name``."""

    kind = ""

    def __init__(self, settings: GraderSettings, model: ChatModel | None, label: str):
        self.settings, self.model, self.label = settings, model, label
        self.name = f"{self.kind}:{label}"
        self.criteria_per_call = 1
        self._schema_ok = settings.json_schema  # turned off once an endpoint refuses it
        self._last_rendered: tuple[Messages, str] | None = None

    def identity(self) -> dict[str, Any]:
        s = self.settings
        return {
            "kind": self.kind,
            "grader": self.label,
            "template_sha256": _sha256(s.template),
            "group_template_sha256": _sha256(s.group_template) if self.criteria_per_call > 1 else None,
            "system_message_sha256": _sha256(s.system_message),
            "temperature": s.params.temperature,
            "max_tokens": s.params.max_tokens,
            "parse_retries": s.parse_retries,
            "json_schema": s.json_schema,
            "criteria_per_call": self.criteria_per_call,
        }

    def _rendered(self, conversation: Messages) -> str:
        """The conversation as the prompt shows it, rendered once for all the criteria of an example:
        they are asked one after another with the same (never changed) list, which is kept here, so
        ``is`` cannot meet a new list at the address of a freed one."""
        last = self._last_rendered
        if last is not None and last[0] is conversation:
            return last[1]
        text = render_conversation(conversation)
        self._last_rendered = (conversation, text)
        return text

    def _messages(self, prompt: str) -> Messages:
        messages: Messages = [{"role": "user", "content": prompt}]
        if self.settings.system_message:
            messages.insert(0, {"role": "system", "content": self.settings.system_message})
        return messages

    def _params(self, schema: dict, name: str) -> SamplingParams:
        params = self.settings.params
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

    def _read(self, completion: Completion) -> tuple[bool, str, float | None] | None:
        raise NotImplementedError

    # one criterion per call --------------------------------------------------------------
    async def judge(self, call: CallFn, conversation: Messages, criterion: Criterion) -> Verdict:
        prompt = render_grader_prompt(self.settings.template, self._rendered(conversation), criterion.text)
        verdict = Verdict(self.name, criterion.index, None)
        for attempt in range(1, self.settings.parse_retries + 2):
            completion = await self._ask(
                call, prompt, VERDICT_SCHEMA, "verdict", attempt, keep=lambda c: self._read(c) is not None
            )
            verdict.add(completion)
            if not completion.ok:
                verdict.reason = f"grader call failed: {completion.error}"
                return verdict  # the transport already retried; asking again would not help
            verdict.raw_reply = completion.text
            read = self._read(completion)
            if read is not None:
                verdict.met, verdict.explanation, verdict.p_met = read
                self._keep_reply(verdict, completion)
                return verdict
        verdict.reason = f"unreadable grader reply after {verdict.attempts} tries"
        return verdict

    def _keep_reply(self, verdict: Verdict, completion: Completion) -> None:
        """What of a readable reply is stored as ``raw_reply`` (the text, unless a judge says otherwise)."""

    async def judge_batch(self, call: CallFn, conversation: Messages, criteria: Sequence[Criterion]) -> list[Verdict]:
        return [await self.judge(call, conversation, criterion) for criterion in criteria]


class TextJudge(GraderJudge):
    """One call per criterion, the reply parsed as JSON (HealthBench's reference method)."""

    kind = TEXT

    def _read(self, completion: Completion) -> tuple[bool, str, float | None] | None:
        verdict = parse_verdict(completion.text)
        return (verdict.criteria_met, verdict.explanation, None) if verdict else None


class LogprobJudge(GraderJudge):
    """P(true) vs P(false) at the decision point; the verdict is P >= 0.5."""

    kind = LOGPROB

    def _params(self, schema: dict, name: str) -> SamplingParams:
        if self.settings.scores_choices:
            return SamplingParams(assistant_prefix=DECISION_PREFIX, score_choices=TRUE_FALSE)
        params = SamplingParams(**{**self.settings.params.__dict__, "top_logprobs": 20})
        if self._schema_ok:
            params = SamplingParams(**{**params.__dict__, "response_format": response_format(schema, name)})
        return params

    def _read(self, completion: Completion) -> tuple[bool, str, float | None] | None:
        if self.settings.scores_choices:
            p = p_met_from_choice_logprobs(completion.extra.get("choice_logprobs") or {})
        else:
            p = p_met_from_token_logprobs(completion.extra.get("logprobs"))
        if p is None:
            return None
        verdict = parse_verdict(completion.text)
        return p >= 0.5, verdict.explanation if verdict else "", p

    def _keep_reply(self, verdict: Verdict, completion: Completion) -> None:
        if self.settings.scores_choices:
            verdict.raw_reply = json.dumps(completion.extra.get("choice_logprobs"))


class GroupedJudge(TextJudge):
    """Several criteria of one example per call; a verdict is only taken for a criterion number
    that appears exactly once, the others are asked again, then recorded ungraded."""

    kind = "grouped"

    def __init__(self, settings: GraderSettings, model: ChatModel | None, label: str):
        super().__init__(settings, model, label)
        self.criteria_per_call = settings.criteria_per_call

    async def judge_batch(self, call: CallFn, conversation: Messages, criteria: Sequence[Criterion]) -> list[Verdict]:
        """Numbers shown are index + 1."""
        if len(criteria) == 1:
            return [await self.judge(call, conversation, criteria[0])]
        rendered = render_conversation(conversation)
        verdicts = {c.index: Verdict(self.name, c.index, None) for c in criteria}
        remaining = {c.index: c.text for c in criteria}
        for attempt in range(1, self.settings.parse_retries + 2):
            numbered = [(index + 1, text) for index, text in remaining.items()]
            prompt = render_group_prompt(self.settings.group_template, rendered, numbered)
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
                verdicts[index].add(completion, share=len(remaining))
            if not completion.ok:
                for index in remaining:
                    verdicts[index].reason = f"grader call failed: {completion.error}"
                break
            for number, found in parse_group_verdicts(completion.text, expected).items():
                verdict = verdicts[number - 1]
                verdict.met, verdict.explanation = found.criteria_met, found.explanation
                verdict.raw_reply = completion.text
                del remaining[number - 1]
            for index in remaining:
                verdicts[index].raw_reply = completion.text
            if not remaining:
                break
        for index in remaining:
            if verdicts[index].reason is None:
                attempts = verdicts[index].attempts
                verdicts[index].reason = f"no single verdict for criterion {index + 1} in {attempts} grouped replies"
        return [verdicts[c.index] for c in criteria]


def make_judge(settings: GraderSettings, model: ChatModel | None, label: str) -> GraderJudge:
    """The judge a run's grader settings describe: grouped when several criteria go in one call,
    else text or logprob as ``settings.verdict`` says."""
    if settings.criteria_per_call > 1:
        return GroupedJudge(settings, model, label)
    return LogprobJudge(settings, model, label) if settings.verdict == LOGPROB else TextJudge(settings, model, label)
