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
from medops.grading.parse import parse_verdict
from medops.grading.templates import render_conversation, render_grader_prompt
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
        self._model_params, self._grader_params = config.model_params(), config.grader_params()
        self.stop_reason: str | None = None

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
        tasks = [
            self._grade(index, repeat, c, conversation, example.rubrics[c].render())
            for c in range(len(example.rubrics))
            if (index, repeat, c) not in self.existing.grades
        ]
        if tasks:
            await asyncio.gather(*tasks)

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

    # one criterion ---------------------------------------------------------------------
    async def _grade(self, index: int, repeat: int, criterion: int, conversation: str, rubric_item: str) -> None:
        prompt = render_grader_prompt(self.config.grader_template, conversation, rubric_item)
        messages: Messages = [{"role": "user", "content": prompt}]
        if self.config.grader_system_message:
            messages.insert(0, {"role": "system", "content": self.config.grader_system_message})
        totals = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "latency_s": 0.0}
        reply, reason, cached = None, None, False
        for attempt in range(1, self.config.grader_parse_retries + 2):
            try:
                completion = await self._call(
                    self.grader,
                    messages,
                    self._grader_params,
                    repeat,
                    "grader",
                    use_cache=attempt == 1,
                    keep=lambda c: parse_verdict(c.text) is not None,
                )
            except StopRequested:
                return  # never started: nothing to save, resume will grade it
            for name in totals:
                totals[name] += getattr(completion, name)
            cached = completion.cached
            if not completion.ok:
                reason = f"grader call failed: {completion.error}"
                break  # the transport already retried; a parse retry would not help
            reply = completion.text
            verdict = parse_verdict(reply)
            if verdict is not None:
                self._save_grade(
                    index,
                    repeat,
                    criterion,
                    verdict.criteria_met,
                    None,
                    verdict.explanation,
                    reply,
                    attempt,
                    cached,
                    totals,
                )
                return
            reason = f"unreadable grader reply after {attempt} tries"
        self.counters.ungraded += 1
        self._save_grade(index, repeat, criterion, None, reason, None, reply, attempt, cached, totals)

    def _save_grade(
        self,
        index: int,
        repeat: int,
        criterion: int,
        met: bool | None,
        reason: str | None,
        explanation: str | None,
        reply: str | None,
        attempts: int,
        cached: bool,
        totals: dict,
    ) -> None:
        self.writer.add(
            GRADES,
            {
                "run_id": self.run_id,
                "example_index": index,
                "repeat": repeat,
                "criterion_index": criterion,
                "criteria_met": met,
                "ungraded_reason": reason,
                "explanation": explanation,
                "raw_reply": reply,
                "attempts": attempts,
                "cached": cached,
                "created_at": utcnow(),
                **totals,
            },
        )
