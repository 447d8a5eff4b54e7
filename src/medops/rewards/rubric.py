"""A rubric reward for GRPO: a judge scores each completion against its example's rubric.

The score is HealthBench's (``scoring.healthbench.points_score``: met points, negative criteria
included, over the positive points) clipped to [0, 1], the number ``medops eval healthbench``
gives one example. The judge is any medops criterion judge (``grading.judge``): a served grader
or an in-process one, built by :func:`rubric_judge` from a ``backend:name`` spec.

TRL (``GRPOTrainer(reward_funcs=[reward])``)::

    from medops.rewards.rubric import RubricReward, rubric_judge
    reward = RubricReward(rubric_judge("openai:gpt-4.1-mini", "http://grader:8000/v1"))

The dataset's ``rubrics`` column holds each row's criteria (``{"criterion", "points", "tags"}``,
the HealthBench row format that ``medops rl prepare --from-run`` writes). Every criterion of every
completion of the step is asked at once (bounded by ``max_concurrency``; a served grader also
backs off on its own 429s, ``models.limiter``); answers are cached by request key (``cache``: the
store's call cache in ``medops rl train``), so a resumed training run sends only what it has
not asked yet. A completion with a criterion the judge could not grade (a failed call, an
unreadable reply past its retries) gets ``None``, never 0: TRL leaves it out of the group's
baseline and gives it no advantage, and ``stats`` counts it.

verl: ``compute_score`` in this module (``custom_reward_function.name=compute_score``) reads the
rubric from ``extra_info["rubrics"]`` and the prompt from ``extra_info["prompt"]``, the grader
from ``MEDOPS_GRADER`` / ``MEDOPS_GRADER_BASE_URL``; verl has no way to drop a sample, so a failed
judgement raises instead of scoring 0.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from medops.content import text_of
from medops.datasets.healthbench import RubricItem
from medops.grading.grader import LOGPROB, TEXT, GraderSettings, make_judge
from medops.grading.judge import Criterion, CriterionJudge
from medops.grading.templates import default_group_template, default_template
from medops.models.base import Completion, Messages, RetryPolicy, SamplingParams
from medops.models.cache import request_key
from medops.models.spec import create_model, parse_model_spec
from medops.scoring.healthbench import points_score


class CallCache(Protocol):
    """Where judge answers are kept between steps and runs (the store's ``call_cache`` in training)."""

    def get(self, key: str) -> Completion | None: ...

    def put(self, key: str, completion: Completion) -> None: ...


class MemoryCache:
    """A cache for one process (notebooks, verl workers)."""

    def __init__(self) -> None:
        self._answers: dict[str, Completion] = {}

    def get(self, key: str) -> Completion | None:
        hit = self._answers.get(key)
        if hit is None:
            return None
        return Completion(**{**hit.__dict__, "cached": True})

    def put(self, key: str, completion: Completion) -> None:
        self._answers[key] = completion


@dataclass
class RewardStats:
    """What the reward did since it was last read: the trainer logs these beside the reward."""

    scored: int = 0  # completions with a reward
    dropped: int = 0  # completions left out of the step: a criterion the judge could not grade
    judge_calls: int = 0  # calls sent to the grader
    cached_calls: int = 0  # answered from the cache
    failed_calls: int = 0  # calls that ended in a failure (the transport retried them already)

    def take(self) -> dict[str, int]:
        """The counts so far, and start again from zero."""
        counts = asdict(self)
        for key in counts:
            setattr(self, key, 0)
        return counts


def rubric_judge(
    grader: str,
    grader_base_url: str | None = None,
    *,
    max_tokens: int = 2048,
    concurrency: int = 16,
    retry: RetryPolicy | None = None,
) -> CriterionJudge:
    """The judge a rubric evaluation with ``--grader grader`` uses by default: the HealthBench
    grader template, temperature 0, and P(met) from an in-process grader that scores choices."""
    spec = parse_model_spec(grader, base_url=grader_base_url, what="grader")
    scores_choices = spec.capabilities.choice_scoring
    settings = GraderSettings(
        template=default_template(),
        group_template=default_group_template(),
        params=SamplingParams(temperature=0.0, max_tokens=max_tokens),
        verdict=LOGPROB if scores_choices else TEXT,
        scores_choices=scores_choices,
    )
    model = create_model(spec, role="grader", concurrency=concurrency, retry=retry or RetryPolicy())
    return make_judge(settings, model, str(spec))


def _completion_text(completion: Any) -> str:
    """A completion as TRL passes it: a string, or the generated chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        last = completion[-1]
        return text_of(last.get("content", "")) if isinstance(last, Mapping) else str(last)
    if isinstance(completion, Mapping):
        return text_of(completion.get("content", ""))
    return ""


def _conversation(prompt: Any, completion: Any) -> Messages:
    """The prompt's turns (a chat list, or one user string) followed by the completion."""
    if isinstance(prompt, str):
        turns: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    else:
        turns = [{"role": m["role"], "content": m["content"]} for m in prompt or []]
    return [*turns, {"role": "assistant", "content": _completion_text(completion)}]


def _rubric(rows: Any) -> list[RubricItem]:
    if not rows:
        raise ValueError("a rubric reward needs a 'rubrics' column (from `medops rl prepare --from-run`)")
    return [RubricItem.model_validate({k: v for k, v in dict(r).items() if v is not None}) for r in rows]


def rubric_score(items: Sequence[RubricItem], met: Sequence[bool | None]) -> float | None:
    """HealthBench's score of one completion clipped to [0, 1]; None when a criterion is ungraded."""
    if any(m is None for m in met):
        return None
    score = points_score(items, [bool(m) for m in met])
    return None if score is None else min(1.0, max(0.0, score))


class RubricReward:
    """TRL's reward-function signature over a criterion judge (see the module docstring)."""

    __name__ = "rubric"

    def __init__(
        self,
        judge: CriterionJudge,
        *,
        cache: CallCache | None = None,
        max_concurrency: int = 16,
        on_batch: Callable[[dict[str, int]], None] | None = None,
    ):
        self.judge, self.cache = judge, cache if cache is not None else MemoryCache()
        self.max_concurrency = max_concurrency
        self.stats = RewardStats()
        self._on_batch = on_batch
        self._loop = asyncio.new_event_loop()  # one loop for the model's connections, in its own thread
        self._thread = threading.Thread(target=self._loop.run_forever, name="medops-rubric-reward", daemon=True)
        self._thread.start()
        self._semaphore: asyncio.Semaphore | None = None

    # the call every judge makes: cached, bounded, counted -------------------------------------
    async def _call(
        self, messages: Messages, params: SamplingParams, use_cache: bool, keep: Callable[[Completion], bool] | None
    ) -> Completion:
        model = self.judge.model
        assert model is not None, "a rubric reward's judge asks a model"
        key = request_key(model.identity(), messages, params)
        if use_cache and (hit := self.cache.get(key)) is not None:
            self.stats.cached_calls += 1
            return hit
        assert self._semaphore is not None
        async with self._semaphore:
            completion = await model.complete(messages, params)
        self.stats.judge_calls += 1
        if not completion.ok:
            self.stats.failed_calls += 1
        elif keep is None or keep(completion):
            self.cache.put(key, completion)
        return completion

    async def _score(self, conversation: Messages, items: list[RubricItem]) -> float | None:
        criteria = [Criterion(i, item.render()) for i, item in enumerate(items)]
        size = max(1, self.judge.criteria_per_call)
        chunks = [criteria[i : i + size] for i in range(0, len(criteria), size)]
        verdicts = [
            v
            for chunk in await asyncio.gather(*(self.judge.judge_batch(self._call, conversation, c) for c in chunks))
            for v in chunk
        ]
        return rubric_score(items, [v.met for v in verdicts])

    async def _score_all(self, conversations: list[Messages], rubrics: list[list[RubricItem]]) -> list[float | None]:
        self._semaphore = self._semaphore or asyncio.Semaphore(self.max_concurrency)
        return list(await asyncio.gather(*(self._score(c, r) for c, r in zip(conversations, rubrics, strict=True))))

    def score_batch(self, conversations: list[Messages], rubrics: list[list[RubricItem]]) -> list[float | None]:
        """Every conversation of a step at once; None for each the judge could not fully grade."""
        scores = asyncio.run_coroutine_threadsafe(self._score_all(conversations, rubrics), self._loop).result()
        self.stats.scored += sum(s is not None for s in scores)
        self.stats.dropped += sum(s is None for s in scores)
        if self._on_batch is not None:
            self._on_batch(asdict(self.stats))
        return scores

    def __call__(
        self, prompts: Any = None, completions: Sequence[Any] = (), rubrics: Any = None, **kwargs: Any
    ) -> list[float | None]:
        n = len(completions)
        rows = rubrics if rubrics is not None else kwargs.get("rubric")
        per_row = [_rubric(r) for r in rows] if rows is not None else []
        if len(per_row) != n:
            raise ValueError("a rubric reward needs a 'rubrics' column (from `medops rl prepare --from-run`)")
        prompt_rows = prompts if isinstance(prompts, list) else [prompts] * n
        return self.score_batch([_conversation(p, c) for p, c in zip(prompt_rows, completions, strict=True)], per_row)

    def close(self) -> None:
        """Stop the judge's model and the loop (the trainer calls it when training ends)."""
        model = self.judge.model
        if model is not None:
            asyncio.run_coroutine_threadsafe(model.aclose(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


_VERL_REWARD: RubricReward | None = None


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None) -> float:
    """verl's custom reward entry point for rubric rows (see the module docstring)."""
    global _VERL_REWARD
    info = extra_info or {}
    if _VERL_REWARD is None:
        grader = os.environ.get("MEDOPS_GRADER")
        if not grader:
            raise RuntimeError("set MEDOPS_GRADER (and MEDOPS_GRADER_BASE_URL) for medops's rubric reward")
        _VERL_REWARD = RubricReward(rubric_judge(grader, os.environ.get("MEDOPS_GRADER_BASE_URL")))
    score = _VERL_REWARD.score_batch(
        [_conversation(info.get("prompt") or "", solution_str)], [_rubric(info.get("rubrics"))]
    )[0]
    if score is None:
        raise RuntimeError("the rubric judge could not grade this completion (failed or unreadable calls)")
    return score
