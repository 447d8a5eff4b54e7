"""What every evaluation pipeline shares: a worker pool over jobs, draining on stop, and model
calls that are answered from the store's cache when they can be and counted for the progress bar."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medops.content import estimated_chars
from medops.events import AfterCall, BeforeCall, EventBus, JobDone
from medops.models.base import ChatModel, Completion, Messages, SamplingParams, StopRequested
from medops.models.cache import request_key
from medops.models.pricing import BudgetMeter
from medops.store.repository import CACHE, Store, cache_row
from medops.store.writer import StoreWriter

Job = tuple[int, int]  # (item_index, repeat)


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


class JobRunner:
    """Runs ``_job`` over jobs with a fixed pool of workers (memory stays flat however many
    jobs there are); each model bounds its own requests in flight."""

    def __init__(
        self,
        *,
        store: Store,
        writer: StoreWriter,
        use_cache: bool,
        concurrency: int,
        models: list[ChatModel],
        counters: Counters,
        on_progress: Callable[[Counters], None] | None = None,
        run_id: int | None = None,
    ):
        self.store, self.writer, self.use_cache = store, writer, use_cache
        self.concurrency, self.models = concurrency, models
        self.counters, self.on_progress = counters, on_progress
        self.run_id = run_id
        self.stop_reason: str | None = None
        self.budget: BudgetMeter | None = None  # set by the run for --budget-usd
        self.bus = EventBus()  # set by the run: subscribers see (and may rewrite or refuse) every call

    def stop(self, reason: str) -> None:
        """Take no new job and start no new call; calls in flight finish and are saved."""
        if self.stop_reason is None:
            self.stop_reason = reason
            for model in self.models:
                model.stop()

    async def _job(self, index: int, repeat: int) -> None:
        raise NotImplementedError

    async def run(self, jobs: list[Job]) -> None:
        self.counters.jobs_total = len(jobs)
        pending = iter(jobs)

        async def worker() -> None:
            for job in pending:
                if self.stop_reason is not None:
                    return
                await self._job(*job)
                self.counters.jobs_done += 1
                if self.on_progress:
                    self.on_progress(self.counters)
                if self.bus.wants(JobDone):
                    self.bus.publish(JobDone(self.run_id))

        tasks = [asyncio.create_task(worker()) for _ in range(min(len(jobs), max(1, self.concurrency)))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def call(
        self,
        model: ChatModel,
        messages: Messages,
        params: SamplingParams,
        sample: int,
        role: str,
        use_cache: bool = True,
        keep: Callable[[Completion], bool] | None = None,
    ) -> Completion:
        """One request, answered from the cache when allowed; cacheable answers are cached.

        Before-call subscribers see the request first and may rewrite it (what is sent is what is
        cached) or refuse it: a refused call is a failed call, counted and retried by ``--resume``."""
        notes: dict[str, Any] = {}
        if self.bus.wants(BeforeCall):
            before = BeforeCall(
                self.run_id,
                role,
                model.label,
                model.identity(),
                messages,
                params,
                in_process=model.capabilities.in_process,
            )
            self.bus.publish(before)
            notes = before.notes
            if before.refused is not None:
                refused = Completion(text=None, error=f"refused before sending: {before.refused}", notes=notes)
                self.counters.count(refused, role)
                return refused
            messages = before.messages
        key = None
        if self.use_cache:
            key = request_key(model.identity(), messages, params, sample)
            if use_cache and (hit := self.store.cache_get(key)) is not None:
                hit.notes = notes
                self.counters.count(hit, role)
                self._after(role, model, messages, params, hit)
                return hit
        if self.budget is None or role not in self.budget.prices:  # unpriced roles (in-process) cost nothing
            completion = await model.complete(messages, params)
        else:
            chars = estimated_chars(messages)  # text, plus a fixed estimate per image part
            projected = self.budget.admit(role, chars, params.max_tokens)
            if projected is None:
                self.stop(f"the budget of ${self.budget.budget_usd:g} is reached (${self.budget.spent_usd:.4f} spent)")
                raise StopRequested()
            completion = await model.complete(messages, params)
            self.budget.settle(role, projected, completion.prompt_tokens, completion.completion_tokens)
        completion.notes = notes
        self.counters.count(completion, role)
        if key is not None and completion.ok and (keep is None or keep(completion)):
            self.writer.add(CACHE, cache_row(key, completion))
        self._after(role, model, messages, params, completion)
        return completion

    def _after(
        self, role: str, model: ChatModel, messages: Messages, params: SamplingParams, completion: Completion
    ) -> None:
        if self.bus.wants(AfterCall):
            self.bus.publish(AfterCall(self.run_id, role, model.label, messages, params, completion))
