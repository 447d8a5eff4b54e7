"""The HealthBench benchmark: respond, grade every criterion, persist each call, score.

Work is a list of jobs ``(example_index, repeat)``. A fixed pool of workers takes jobs in
order, so memory stays flat however large the set is, while the per-endpoint limiter keeps
the configured number of requests in flight. Every finished call is handed to the store
writer at once; nothing waits for the end of the run to be saved. Scores, exports and report
examples are read back from the store only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from medops.content import digests, has_images, keyed
from medops.datasets.healthbench import Example, RubricDataset, load_rubric_dataset, select_indices
from medops.datasets.jsonl import FileFacts
from medops.datasets.registry import resolve
from medops.datasets.responses import load_responses
from medops.errors import UserError
from medops.evaluation.config import HealthBenchConfig
from medops.evaluation.contract import Benchmark, ItemResults, RunContext, call_accounting, check_recorded
from medops.evaluation.engine import Counters, Job, JobRunner
from medops.evaluation.summaries import healthbench_json, print_healthbench_summary
from medops.grading.grader import CriterionGrade, GraderSettings, RubricGrader
from medops.grading.templates import default_group_template, render_conversation
from medops.models.backends import backends_with, create_model
from medops.models.base import ChatModel, Completion, Messages, StopRequested
from medops.scoring.healthbench import (
    LENGTH_ADJUSTED,
    OVERALL,
    aggregate,
    example_metrics,
    length_adjusted_per_500_chars,
)
from medops.store import queries
from medops.store.repository import GRADES, RESPONSES, ExistingWork, Store, response_row
from medops.store.schema import Dataset, Grade, Run, utcnow
from medops.store.writer import StoreWriter

IDEAL_GROUP_METRIC = "ideal_completions_group:"


def ideal_group_metric(example: Example) -> str | None:
    """The metric that scores an ideal completion within its group (``ideal_completions_group:Group 1``)."""
    data = example.ideal_completions_data
    return f"{IDEAL_GROUP_METRIC}{data.ideal_completions_group}" if data and data.ideal_completions_group else None


@dataclass(frozen=True)
class RubricData:
    """A rubric set, with the responses given instead of generated (``--responses``), if any."""

    dataset: RubricDataset
    given: dict[int, str] | None = None

    @property
    def name(self) -> str:
        return self.dataset.name

    @property
    def facts(self) -> FileFacts:
        return self.dataset.facts

    def __len__(self) -> int:
        return len(self.dataset)


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
            scores_choices=grader.capabilities.choice_scoring,
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
                "notes": grade.notes or None,
                "created_at": utcnow(),
                "calls": round(grade.usage["calls"]),
                "rejected": round(grade.usage["rejected"]),
                "prompt_tokens": round(grade.usage["prompt_tokens"]),
                "completion_tokens": round(grade.usage["completion_tokens"]),
                "latency_s": grade.usage["latency_s"],
            },
        )


def build_models(config: HealthBenchConfig) -> tuple[ChatModel | None, ChatModel]:
    """The model under test (None when responses are given) and the grader."""

    def build(spec, role: str) -> ChatModel:
        return create_model(
            spec, role=role, concurrency=config.concurrency, retry=config.retry_policy(), batch_size=config.batch_size
        )

    model = build(config.model, "model") if config.completions == "model" and config.model else None
    if model is not None and config.model == config.grader and config.grader.capabilities.in_process:
        return model, model  # one copy of an in-process model serves both roles
    return model, build(config.grader, "grader")


def build_pipeline(
    context: RunContext[HealthBenchConfig, Any], dataset: RubricDataset, given: dict[int, str] | None
) -> HealthBenchPipeline:
    model, grader = build_models(context.config)
    existing = context.store.existing_work(context.run_id) if context.resumed else ExistingWork({}, {})
    return HealthBenchPipeline(
        run_id=context.run_id,
        config=context.config,
        dataset=dataset,
        store=context.store,
        writer=context.writer,
        existing=existing,
        model=model,
        grader=grader,
        given=given,
        counters=context.counters,
        on_progress=context.on_progress,
    )


# scoring, from the store ------------------------------------------------------------------
def job_metrics(
    store: Store, run_id: int, dataset: RubricDataset, config: HealthBenchConfig, jobs: list[Job]
) -> tuple[dict[Job, dict[str, float]], int, int]:
    """Metric values of every fully graded job, and how many jobs / criteria were left out."""
    responses = queries.response_texts(store, run_id)
    verdicts = queries.verdicts(store, run_id)
    per_job: dict[Job, dict[str, float]] = {}
    excluded = ungraded = 0
    for job in jobs:
        example = dataset.examples[job[0]]
        text, grades = responses.get(job), verdicts.get(job, {})
        met = [grades.get(c) for c in range(len(example.rubrics))]
        ungraded += sum(m is None for m in met) if text is not None else 0
        if text is None or any(m is None for m in met):
            excluded += 1
            continue
        metrics = example_metrics(example.example_tags, example.rubrics, met)  # type: ignore[arg-type]
        if config.length_penalty is not None:
            metrics[LENGTH_ADJUSTED] = length_adjusted_per_500_chars(
                metrics[OVERALL],
                text,
                center=config.length_center or 0.0,
                penalty_per_500_chars=config.length_penalty,
            )
        if config.completions == "ideal" and (group := ideal_group_metric(example)):
            metrics[group] = metrics[OVERALL]  # the reference scores each ideal-completion group on its own
        per_job[job] = metrics
    return per_job, excluded, ungraded


def score_run(
    store: Store, run_id: int, dataset: RubricDataset, config: HealthBenchConfig, jobs: list[Job]
) -> dict[str, Any]:
    """Metrics over every fully graded job; a job with any ungraded criterion is excluded."""
    per_job, excluded, ungraded = job_metrics(store, run_id, dataset, config, jobs)
    per_example = list(per_job.values())
    summaries = aggregate(per_example, config.seed)
    overall = summaries.get(OVERALL)
    return {
        "score": overall.mean if overall else None,
        "bootstrap_std": overall.bootstrap_std if overall else None,
        "n_examples": len(per_example),
        "n_excluded_examples": excluded,
        "n_ungraded_criteria": ungraded,
        "metrics": {name: summary.to_dict() for name, summary in summaries.items()},
        **call_accounting(store, run_id),
    }


# reading a run back -----------------------------------------------------------------------
def criterion_rows(store: Store, run: Run, dataset: RubricDataset) -> list[dict[str, Any]]:
    """One row per criterion; a failed model call lists its criteria as ungraded, with the call's
    error, so an export shows every failure the run's status counts."""
    responses = queries.responses(store, run.id)
    grades = {(repeat, index, c): g for (index, repeat, c), g in queries.grades(store, run.id).items()}
    failed = {
        (repeat, index, c): f"model call failed: {r.error or 'no answer'}"
        for (index, repeat), r in responses.items()
        if r.error is not None or r.text is None
        for c in range(len(dataset.examples[index].rubrics))
    }
    rows = []
    for key in sorted(grades.keys() | failed.keys()):
        repeat, index, criterion = key
        example, g, response = dataset.examples[index], grades.get(key), responses.get((index, repeat))
        item = example.rubrics[criterion]
        rows.append(
            {
                "example_index": index,
                "repeat": repeat,
                "prompt_id": example.prompt_id,
                "criterion_index": criterion,
                "criterion": item.criterion,
                "points": item.points,
                "tags": list(item.tags),
                "criteria_met": g.criteria_met if g else None,
                "explanation": g.explanation if g else None,
                "ungraded_reason": g.ungraded_reason if g else failed[key],
                "response": response.text if response else None,
            }
        )
    # a set with images: each row names its example's images by sha256 (text-only exports unchanged)
    images = [digests([m.model_dump() for m in e.prompt]) for e in dataset.examples]
    if any(images):
        for row in rows:
            row["images"] = images[row["example_index"]]
    return rows


def example_views(store: Store, run: Run, dataset: RubricDataset) -> list[dict[str, Any]]:
    """Every answered example with its conversation, response and each criterion's verdict
    (what a report or the dashboard shows of one example)."""
    responses = queries.responses(store, run.id)
    grades: dict[tuple[int, int], dict[int, Grade]] = {}
    for (index, repeat, criterion), g in queries.grades(store, run.id).items():
        grades.setdefault((index, repeat), {})[criterion] = g
    examples = []
    for (index, repeat), response in sorted(responses.items()):
        example = dataset.examples[index]
        criteria, earned, possible = [], 0.0, 0.0
        for c, item in enumerate(example.rubrics):
            grade = grades.get((index, repeat), {}).get(c)
            met = grade.criteria_met if grade else None
            possible += max(item.points, 0)
            earned += item.points if met else 0
            criteria.append(
                {
                    "text": item.criterion,
                    "points": item.points,
                    "met": met,
                    "tags": item.tags,
                    "explanation": (grade.explanation or grade.ungraded_reason) if grade else "not graded",
                    "p_met": grade.p_met if grade else None,
                }
            )
        examples.append(
            {
                "index": index,
                "repeat": repeat,
                "prompt_id": example.prompt_id,
                "tags": example.example_tags,
                "prompt": keyed([m.model_dump() for m in example.prompt]),  # images as sha256: (served by digest)
                "response": response.text,
                "error": response.error,
                "criteria": criteria,
                "score": earned / possible if possible else None,
                "failed": any(c["points"] > 0 and c["met"] is False for c in criteria),
                "negative_met": any(c["points"] < 0 and c["met"] for c in criteria),
                "ungraded": any(c["met"] is None for c in criteria) or response.error is not None,
            }
        )
    return examples


class HealthBench(Benchmark[HealthBenchConfig, RubricData]):
    """HealthBench and every rubric set in its format (HealthBench Professional included)."""

    name = "healthbench"
    command = "medops eval healthbench"
    config_type = HealthBenchConfig

    def validate_data(self, config: HealthBenchConfig, data: RubricData) -> None:
        """A model that takes no images is refused an image set before any call (by capability)."""
        if config.completions != "model" or config.model is None or config.model.capabilities.images:
            return
        with_images = sum(1 for e in data.dataset.examples if has_images(m.model_dump() for m in e.prompt))
        if with_images:
            raise UserError(
                f"{config.model} takes no images, and {with_images} item(s) of {data.name} have image parts; "
                f"use a model that takes images ({', '.join(f'{b}:' for b in backends_with('images'))})"
            )

    def load(self, config: HealthBenchConfig) -> RubricData:
        name, path = resolve(config.data)
        dataset = load_rubric_dataset(path, name)
        given = load_responses(config.responses_path, dataset) if config.completions == "given" else None
        return RubricData(dataset, given)

    def to_records(self, data: RubricData) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return {}, [example.model_dump(mode="json") for example in data.dataset.examples]

    def from_records(self, dataset: Dataset, meta: dict[str, Any], records: list[dict[str, Any]]) -> RubricData:
        facts = FileFacts(dataset.path, dataset.sha256, dataset.size_bytes)
        return RubricData(RubricDataset(dataset.name, facts, tuple(Example.model_validate(r) for r in records)))

    def load_recorded(self, run: Run, dataset: Dataset, config: HealthBenchConfig) -> RubricData:
        rubric = load_rubric_dataset(dataset.path, dataset.name)
        check_recorded(rubric.facts.sha256, dataset, run)
        given = load_responses(config.responses_path, rubric) if config.completions == "given" else None
        return RubricData(rubric, given)

    def for_resume(self, config: HealthBenchConfig, data: RubricData) -> RubricData:
        if config.completions != "given" or data.given is not None:
            return data
        if not config.responses_path:
            raise UserError("this run grades given responses, and its --responses file is not recorded")
        return RubricData(data.dataset, load_responses(config.responses_path, data.dataset))

    def plan(self, config: HealthBenchConfig, data: RubricData) -> list[Job]:
        return plan_jobs(data.dataset, config, data.given)[0]

    def models(self, config: HealthBenchConfig) -> dict[str, str | None]:
        return {"model": str(config.model) if config.model else config.completions, "grader": str(config.grader)}

    def pipeline(self, context: RunContext[HealthBenchConfig, RubricData]) -> JobRunner:
        return build_pipeline(context, context.data.dataset, context.data.given)

    def score(
        self, store: Store, run_id: int, config: HealthBenchConfig, data: RubricData, jobs: list[Job]
    ) -> dict[str, Any]:
        return score_run(store, run_id, data.dataset, config, jobs)

    def item_results(
        self, store: Store, run: Run, config: HealthBenchConfig, data: RubricData, jobs: list[Job]
    ) -> ItemResults:
        per_job, _, _ = job_metrics(store, run.id, data.dataset, config, jobs)
        return ItemResults(False, per_job, [e.prompt_id for e in data.dataset.examples])

    def document(
        self, run: Run, dataset: Dataset, config: HealthBenchConfig, summary: dict[str, Any]
    ) -> dict[str, Any]:
        return healthbench_json(run, dataset, config, summary)

    def print_summary(self, console: Console, run: Run, dataset: Dataset, summary: dict[str, Any]) -> None:
        print_healthbench_summary(console, run, dataset, summary)

    def export_rows(self, store: Store, run: Run, config: HealthBenchConfig, data: RubricData) -> list[dict[str, Any]]:
        return criterion_rows(store, run, data.dataset)

    def report_items(self, store: Store, run: Run, config: HealthBenchConfig, data: RubricData) -> dict[str, Any]:
        return {"examples": example_views(store, run, data.dataset)}
