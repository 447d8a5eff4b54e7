"""The HealthBench pipeline: respond, grade every criterion, persist each call, score.

Work is a list of jobs ``(example_index, repeat)``. A fixed pool of workers takes jobs in
order, so memory stays flat however large the set is, while the per-endpoint limiter keeps
the configured number of requests in flight. Every finished call is handed to the store
writer at once; nothing waits for the end of the run to be saved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from medops.datasets.healthbench import Example, RubricDataset, select_indices
from medops.evaluation.config import HealthBenchConfig
from medops.evaluation.engine import Counters, Job, JobRunner
from medops.grading.grader import CriterionGrade, GraderSettings, RubricGrader
from medops.grading.templates import default_group_template, render_conversation
from medops.models.base import ChatModel, Completion, Messages, StopRequested
from medops.store.repository import GRADES, RESPONSES, ExistingWork, Store, response_row
from medops.store.schema import utcnow
from medops.store.writer import StoreWriter

IDEAL_GROUP_METRIC = "ideal_completions_group:"


def ideal_group_metric(example: Example) -> str | None:
    """The metric that scores an ideal completion within its group (``ideal_completions_group:Group 1``)."""
    data = example.ideal_completions_data
    return f"{IDEAL_GROUP_METRIC}{data.ideal_completions_group}" if data and data.ideal_completions_group else None


def plan_jobs(dataset: RubricDataset, config: HealthBenchConfig, given: dict[int, str] | None) -> tuple[list[Job], int]:
    """The jobs of a run, and how many dataset rows were left out for lack of a response.

    Candidates are filtered first (ideal completions, given responses), then ``--limit``
    samples among them with the seed, then every pick is repeated: the reference's order.
    Ideal completions are sampled per ``ideal_completions_group``, each group on its own with
    a fresh generator, because the reference runs one eval per group
    (``physician_completions_main``): ``--limit N`` then picks N rows of every group, the
    rows ``random.Random(0).sample`` picks there when the seed is 0.
    """
    if config.completions == "ideal":
        groups: dict[str | None, list[int]] = {}
        for i, e in enumerate(dataset.examples):
            if e.ideal_completion:
                data = e.ideal_completions_data
                groups.setdefault(data.ideal_completions_group if data else None, []).append(i)
        pools = list(groups.values())
    elif config.completions == "given":
        assert given is not None
        pools = [sorted(given)]
    else:
        pools = [list(range(len(dataset)))]
    chosen = [pool[j] for pool in pools for j in select_indices(len(pool), config.limit, config.seed)]
    left_out = len(dataset) - sum(len(pool) for pool in pools)
    return [(index, repeat) for repeat in range(config.repeats) for index in chosen], left_out


class HealthBenchPipeline(JobRunner):
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
        super().__init__(
            store=store,
            writer=writer,
            use_cache=config.use_cache,
            concurrency=config.concurrency,
            models=[m for m in (model, grader) if m is not None],
            counters=counters,
            on_progress=on_progress,
        )
        self.run_id, self.config, self.dataset, self.existing = run_id, config, dataset, existing
        self.model, self.grader, self.given = model, grader, given
        self._model_params = config.model_params()
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
            completion = await self.call(self.model, sent, self._model_params, repeat, "model")
        except StopRequested:
            return None
        self._save_response(index, repeat, example, completion, "model")
        return completion.text if completion.ok else None

    def _save_response(self, index: int, repeat: int, example: Example, c: Completion, source: str) -> None:
        self.writer.add(RESPONSES, response_row(self.run_id, index, repeat, example.prompt_id, c, source))

    # grading -------------------------------------------------------------------------
    async def _grade(self, index: int, repeat: int, conversation: str, chunk: list[tuple[int, str]]) -> None:
        async def call(messages: Messages, params, use_cache: bool, keep) -> Completion:
            return await self.call(self.grader, messages, params, repeat, "grader", use_cache=use_cache, keep=keep)

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
