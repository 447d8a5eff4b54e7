"""The HealthBench pipeline: respond, grade every criterion, persist each call, score.

Work is a list of jobs ``(example_index, repeat)``. A fixed pool of workers takes jobs in
order, so memory stays flat however large the set is, while the per-endpoint limiter keeps
the configured number of requests in flight. Every finished call is handed to the store
writer at once; nothing waits for the end of the run to be saved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from medops.datasets.healthbench import Example, RubricDataset, select_indices
from medops.evaluation.config import HealthBenchConfig
from medops.grading.grader import CriterionGrade, GraderSettings, RubricGrader
from medops.grading.templates import default_group_template, render_conversation
from medops.models.base import ChatModel, Completion, Messages, StopRequested
from medops.models.cache import request_key
from medops.store.repository import CACHE, GRADES, RESPONSES, ExistingWork, Store, cache_row
from medops.store.schema import utcnow
from medops.store.writer import StoreWriter

Job = tuple[int, int]  # (example_index, repeat)


def plan_jobs(dataset: RubricDataset, config: HealthBenchConfig, given: dict[int, str] | None) -> tuple[list[Job], int]:
    """The jobs of a run, and how many dataset rows were left out for lack of a response.

    Candidates are filtered first (ideal completions, given responses), then ``--limit``
    samples among them with the seed, then every pick is repeated: the reference's order.
    """
    if config.completions == "ideal":
        candidates = [i for i, e in enumerate(dataset.examples) if e.ideal_completion]
    elif config.completions == "given":
        assert given is not None
        candidates = sorted(given)
    else:
        candidates = list(range(len(dataset)))
    chosen = [candidates[j] for j in select_indices(len(candidates), config.limit, config.seed)]
    return [(index, repeat) for repeat in range(config.repeats) for index in chosen], len(dataset) - len(candidates)


@dataclass
class Counters:
    """Live numbers for the progress display."""

    jobs_total: int = 0
    jobs_done: int = 0
    model_calls: int = 0
    grader_calls: int = 0
    tokens: int = 0
    errors: int = 0
    ungraded: int = 0
    cached: int = 0
    started: float = field(default_factory=time.monotonic)

    def count(self, completion: Completion, role: str) -> None:
        if completion.cached:
            self.cached += 1
        if role == "model":
            self.model_calls += completion.calls
        else:
            self.grader_calls += completion.calls
        self.tokens += completion.prompt_tokens + completion.completion_tokens
        if completion.error:
            self.errors += 1


class HealthBenchPipeline:
    def __init__(
        self,
        *,
        run_id: int,
        config: HealthBenchConfig,
        dataset: RubricDataset,
        store: Store,
        writer: StoreWriter,
        existing: ExistingWork,
        model: ChatModel | None,
        grader: ChatModel,
        given: dict[int, str] | None,
        counters: Counters,
        on_progress: Callable[[Counters], None] | None = None,
    ):
        self.run_id, self.config, self.dataset = run_id, config, dataset
        self.store, self.writer, self.existing = store, writer, existing
        self.model, self.grader, self.given = model, grader, given
        self.counters, self.on_progress = counters, on_progress
        self._model_params = config.model_params()
        self.stop_reason: str | None = None
        settings = GraderSettings(
            template=config.grader_template,
            group_template=config.grader_group_template or default_group_template(),
            params=config.grader_params(),
            system_message=config.grader_system_message,
            parse_retries=config.grader_parse_retries,
            verdict=config.grader_verdict,
            json_schema=config.grader_json_schema,
            criteria_per_call=config.criteria_per_call,
            scores_choices=grader.spec.backend in ("local", "hf"),
        )
        self.rubric_grader = RubricGrader(settings)

    def stop(self, reason: str) -> None:
        """Take no new job and start no new call; calls in flight finish and are saved."""
        if self.stop_reason is None:
            self.stop_reason = reason
            for model in (self.model, self.grader):
                if model is not None:
                    model.stop()

    async def run(self, jobs: list[Job]) -> None:
        self.counters.jobs_total = len(jobs)
        pending = iter(jobs)
        # Enough examples in parallel to keep every grader slot busy, and no more.
        n_workers = min(len(jobs), max(1, self.config.concurrency))

        async def worker() -> None:
            for job in pending:
                if self.stop_reason is not None:
                    return
                await self._job(*job)
                self.counters.jobs_done += 1
                if self.on_progress:
                    self.on_progress(self.counters)

        tasks = [asyncio.create_task(worker()) for _ in range(n_workers)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    # one example -----------------------------------------------------------------------
    async def _job(self, index: int, repeat: int) -> None:
        example = self.dataset.examples[index]
        sent = self._model_messages(example)
        response = await self._response(index, repeat, example, sent)
        if response is None:
            return
        conversation = render_conversation([*sent, {"role": "assistant", "content": response}])
        todo = [
            (c, item.render() if self.config.rubric_item_format == "points" else item.criterion)
            for c, item in enumerate(example.rubrics)
            if (index, repeat, c) not in self.existing.grades
        ]
        size = self.config.criteria_per_call
        chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
        if chunks:
            await asyncio.gather(*(self._grade(index, repeat, conversation, chunk) for chunk in chunks))

    def _model_messages(self, example: Example) -> Messages:
        messages = [{"role": m.role, "content": m.content} for m in example.prompt]
        if self.config.model_system_message and self.config.completions == "model":
            messages.insert(0, {"role": "system", "content": self.config.model_system_message})
        return messages

    async def _response(self, index: int, repeat: int, example: Example, sent: Messages) -> str | None:
        stored = self.existing.responses.get((index, repeat))
        if stored is not None:
            return stored.text
        if self.config.completions != "model":
            text = self.given[index] if self.config.completions == "given" else example.ideal_completion
            self._save_response(index, repeat, example, Completion(text=text), self.config.completions)
            return text
        assert self.model is not None
        try:
            completion = await self._call(self.model, sent, self._model_params, repeat, "model")
        except StopRequested:
            return None
        self._save_response(index, repeat, example, completion, "model")
        return completion.text if completion.ok else None

    async def _call(
        self,
        model: ChatModel,
        messages: Messages,
        params,
        sample: int,
        role: str,
        use_cache: bool = True,
        keep: Callable[[Completion], bool] | None = None,
    ) -> Completion:
        """One request, answered from the cache when allowed; cacheable answers are cached."""
        key = None
        if self.config.use_cache:
            key = request_key(model.identity(), messages, params, sample)
            if use_cache and (hit := self.store.cache_get(key)) is not None:
                self.counters.count(hit, role)
                return hit
        completion = await model.complete(messages, params)
        self.counters.count(completion, role)
        if key is not None and completion.ok and (keep is None or keep(completion)):
            self.writer.add(CACHE, cache_row(key, completion))
        return completion

    def _save_response(self, index: int, repeat: int, example: Example, c: Completion, source: str) -> None:
        self.writer.add(
            RESPONSES,
            {
                "run_id": self.run_id,
                "example_index": index,
                "repeat": repeat,
                "prompt_id": example.prompt_id,
                "text": c.text,
                "source": source,
                "finish_reason": c.finish_reason,
                "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens,
                "latency_s": c.latency_s,
                "calls": c.calls,
                "cached": c.cached,
                "error": c.error,
                "created_at": utcnow(),
            },
        )

    # grading -------------------------------------------------------------------------
    async def _grade(self, index: int, repeat: int, conversation: str, chunk: list[tuple[int, str]]) -> None:
        async def call(messages: Messages, params, use_cache: bool, keep) -> Completion:
            return await self._call(self.grader, messages, params, repeat, "grader", use_cache=use_cache, keep=keep)

        try:
            if len(chunk) == 1:
                grades = [await self.rubric_grader.grade_one(call, conversation, *chunk[0])]
            else:
                grades = await self.rubric_grader.grade_group(call, conversation, chunk)
        except StopRequested:
            return  # never asked: nothing to save, a resume grades it
        for grade in grades:
            self._save_grade(index, repeat, grade)

    def _save_grade(self, index: int, repeat: int, grade: CriterionGrade) -> None:
        if grade.criteria_met is None:
            self.counters.ungraded += 1
        self.writer.add(
            GRADES,
            {
                "run_id": self.run_id,
                "example_index": index,
                "repeat": repeat,
                "criterion_index": grade.criterion_index,
                "criteria_met": grade.criteria_met,
                "p_met": grade.p_met,
                "ungraded_reason": grade.reason,
                "explanation": grade.explanation,
                "raw_reply": grade.raw_reply,
                "attempts": grade.attempts,
                "cached": grade.cached,
                "created_at": utcnow(),
                "calls": round(grade.usage["calls"]),
                "prompt_tokens": round(grade.usage["prompt_tokens"]),
                "completion_tokens": round(grade.usage["completion_tokens"]),
                "latency_s": grade.usage["latency_s"],
            },
        )
