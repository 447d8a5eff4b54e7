"""The HealthBench benchmark: respond, grade every criterion, persist each call, score.

Work is a list of jobs ``(example_index, repeat)``. A fixed pool of workers takes jobs in
order, so memory stays flat however large the set is, while the per-endpoint limiter keeps
the configured number of requests in flight. Every finished call is handed to the store
writer at once; nothing waits for the end of the run to be saved. Scores and sample records
(what exports, reports and the dashboard show) are read back from the store only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console

from medops.content import has_images, keyed
from medops.datasets.healthbench import Example, RubricDataset, load_rubric_dataset, select_indices
from medops.datasets.jsonl import FileFacts
from medops.datasets.registry import resolve
from medops.datasets.responses import load_responses
from medops.errors import UserError
from medops.evaluation.config import HealthBenchConfig
from medops.evaluation.contract import Benchmark, ItemResults, RunContext, call_accounting, check_recorded
from medops.evaluation.counterfactual import Variants, make_variants
from medops.evaluation.engine import Counters, Job, JobRunner
from medops.evaluation.records import (
    Assessment,
    Bars,
    Column,
    Count,
    ExportSpec,
    Flag,
    Headline,
    Histogram,
    Message,
    MetricGroup,
    SampleRecord,
    Samples,
    modality,
)
from medops.evaluation.summaries import healthbench_json, print_healthbench_summary
from medops.grading.grader import make_judge
from medops.grading.judge import Criterion, CriterionJudge, Verdict
from medops.models.backends import backends_with
from medops.models.base import ChatModel, Completion, Messages, StopRequested
from medops.models.spec import ModelSpec, create_model
from medops.scoring.agreement import fleiss_kappa
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
    variants: Variants | None = None  # --counterfactual: the variant examples after the originals

    @property
    def name(self) -> str:
        return self.dataset.name


    @property
    def facts(self) -> FileFacts:
        return self.dataset.facts

    def __len__(self) -> int:
        """The set's own examples (its counterfactual variants are not the data set's size)."""
        return len(self.dataset) if self.variants is None else self.variants.n_original


def with_variants(dataset: RubricDataset, config: HealthBenchConfig) -> tuple[RubricDataset, Variants | None]:
    """``dataset`` with the counterfactual variants of its chosen examples appended: the user turns
    rewritten (text content only), the criteria read as context and never changed (an example whose
    criteria mention the attribute is kept), the rest of the example as it was."""
    if not config.counterfactual:
        return dataset, None
    chosen = select_indices(len(dataset), config.limit, config.seed)
    textual = [i for i in chosen if all(isinstance(m.content, str) for m in dataset.examples[i].prompt)]
    items = []
    for i in textual:
        example = dataset.examples[i]
        turns = tuple(m.content for m in example.prompt if m.role == "user")
        items.append((i, turns, tuple(r.criterion for r in example.rubrics)))
    variants, rewritten = make_variants(items, len(dataset), config.counterfactual, insert=config.counterfactual_insert)
    if len(textual) < len(chosen):
        for tally in variants.counts.values():
            tally["kept"]["non_text_content"] = len(chosen) - len(textual)
    examples = []
    for v, turns in zip(variants.of, rewritten, strict=True):
        example, texts = dataset.examples[v.original_index], iter(turns)
        prompt = [m.model_copy(update={"content": next(texts)}) if m.role == "user" else m for m in example.prompt]
        examples.append(
            example.model_copy(update={"prompt": prompt, "prompt_id": f"{example.prompt_id}~{v.attribute}={v.value}"})
        )
    return replace(dataset, examples=dataset.examples + tuple(examples)), variants


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
    """Responds (or takes the given response), then asks every judge about every criterion. The
    judges are handed in, built from the run's settings (:func:`build_judges`): the pipeline never
    knows which kind they are, nor how many."""

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
        judges: Sequence[CriterionJudge],
        given: dict[int, str] | None,
        counters: Counters,
        on_progress: Callable[[Counters], None] | None = None,
    ):
        asked = [model, *(judge.model for judge in judges)]
        super().__init__(
            store=store,
            writer=writer,
            use_cache=config.use_cache,
            concurrency=config.concurrency,
            models=list({id(m): m for m in asked if m is not None}.values()),
            counters=counters,
            on_progress=on_progress,
        )
        self.run_id, self.config, self.dataset, self.existing = run_id, config, dataset, existing
        self.model, self.judges, self.given = model, list(judges), given
        self._model_params = config.model_params()

    # one example -----------------------------------------------------------------------
    async def _job(self, index: int, repeat: int) -> None:
        example = self.dataset.examples[index]
        sent = self._model_messages(example)
        response = await self._response(index, repeat, example, sent)
        if response is None:
            return
        conversation = [*sent, {"role": "assistant", "content": response}]
        criteria = [
            Criterion(c, item.render() if self.config.rubric_item_format == "points" else item.criterion)
            for c, item in enumerate(example.rubrics)
        ]
        asks = []
        for judge in self.judges:
            todo = [c for c in criteria if (index, repeat, c.index, judge.name) not in self.existing.grades]
            size = judge.criteria_per_call
            chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
            asks += [self._grade(judge, index, repeat, conversation, chunk) for chunk in chunks]
        if asks:
            await asyncio.gather(*asks)

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
    async def _grade(
        self, judge: CriterionJudge, index: int, repeat: int, conversation: Messages, chunk: list[Criterion]
    ) -> None:
        grader = judge.model

        async def call(messages: Messages, params, use_cache: bool, keep) -> Completion:
            assert grader is not None, f"judge {judge.name} asks no model"
            return await self.call(grader, messages, params, repeat, "grader", use_cache=use_cache, keep=keep)

        try:
            if len(chunk) == 1:
                verdicts = [await judge.judge(call, conversation, chunk[0])]
            else:
                verdicts = await judge.judge_batch(call, conversation, chunk)
        except StopRequested:
            return  # never asked: nothing to save, a resume grades it
        for verdict in verdicts:
            self._save_grade(index, repeat, verdict)

    def _save_grade(self, index: int, repeat: int, verdict: Verdict) -> None:
        if verdict.met is None:
            self.counters.ungraded += 1
        self.writer.add(
            GRADES,
            {
                "run_id": self.run_id,
                "example_index": index,
                "repeat": repeat,
                "criterion_index": verdict.criterion_index,
                "judge": verdict.judge,
                "criteria_met": verdict.met,
                "p_met": verdict.p_met,
                "ungraded_reason": verdict.reason,
                "explanation": verdict.explanation,
                "raw_reply": verdict.raw_reply,
                "attempts": verdict.attempts,
                "cached": verdict.cached,
                "notes": verdict.notes or None,
                "created_at": utcnow(),
                "calls": round(verdict.usage["calls"]),
                "rejected": round(verdict.usage["rejected"]),
                "prompt_tokens": round(verdict.usage["prompt_tokens"]),
                "completion_tokens": round(verdict.usage["completion_tokens"]),
                "latency_s": verdict.usage["latency_s"],
            },
        )


def _build(config: HealthBenchConfig, spec: ModelSpec, role: str) -> ChatModel:
    return create_model(
        spec, role=role, concurrency=config.concurrency, retry=config.retry_policy(), batch_size=config.batch_size
    )


def build_model(config: HealthBenchConfig) -> ChatModel | None:
    """The model under test (None when responses are given or ideal completions graded)."""
    return _build(config, config.model, "model") if config.completions == "model" and config.model else None


def build_judges(config: HealthBenchConfig, model: ChatModel | None = None) -> list[CriterionJudge]:
    """One judge per grader of the run, from the run's stored settings (``--resume`` rebuilds the
    same). One copy of an in-process model serves both roles when the grader is the model."""
    judges: list[CriterionJudge] = []
    for spec in config.grader_specs():
        same = model is not None and spec == config.model and spec.capabilities.in_process
        grader = model if same else _build(config, spec, "grader")
        judges.append(make_judge(config.grader_settings(spec), grader, str(spec)))
    return judges


def judges_record(config: HealthBenchConfig, judges: Sequence[CriterionJudge]) -> dict[str, Any]:
    """What ``runs.judges`` keeps: each judge's name and identity, and the reducer."""
    return {"reducer": config.jury, "judges": [{"name": j.name, "identity": j.identity()} for j in judges]}


def build_pipeline(
    context: RunContext[HealthBenchConfig, Any],
    dataset: RubricDataset,
    given: dict[int, str] | None,
    model: ChatModel | None,
    judges: Sequence[CriterionJudge],
) -> HealthBenchPipeline:
    """The pipeline of a new or resumed run; a resumed run must be judged as it was."""
    record = judges_record(context.config, judges)
    stored = context.store.find_run(str(context.run_id)).judges if context.resumed else None
    if stored is not None and stored != record:
        before = ", ".join(j["name"] for j in stored["judges"])
        raise UserError(
            f"run {context.run_id} was graded by {before} ({stored['reducer']}); this medops builds other judges "
            f"({', '.join(j.name for j in judges)}): resume it with the medops that made it"
        )
    if stored is None:
        context.store.record_judges(context.run_id, record)
    existing = context.store.existing_work(context.run_id) if context.resumed else ExistingWork({}, {})
    return HealthBenchPipeline(
        run_id=context.run_id,
        config=context.config,
        dataset=dataset,
        store=context.store,
        writer=context.writer,
        existing=existing,
        model=model,
        judges=judges,
        given=given,
        counters=context.counters,
        on_progress=context.on_progress,
    )


# scoring, from the store ------------------------------------------------------------------
def job_metrics(
    store: Store,
    run_id: int,
    dataset: RubricDataset,
    config: HealthBenchConfig,
    jobs: list[Job],
    judge: str | None = None,
) -> tuple[dict[Job, dict[str, float]], int, int]:
    """Metric values of every fully graded job, and how many jobs / criteria were left out; by
    the criteria's verdicts, or by one juror's (``judge``)."""
    responses = queries.response_texts(store, run_id)
    verdicts = queries.verdicts(store, run_id, judge)
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
        **jury_summary(store, run_id, dataset, config, jobs),
    }


def jury_summary(
    store: Store, run_id: int, dataset: RubricDataset, config: HealthBenchConfig, jobs: list[Job]
) -> dict[str, Any]:
    """``jury`` for a run with several graders: each juror's own score (as if it graded alone)
    and the jurors' agreement (Fleiss' kappa over the criteria every juror graded); nothing for one."""
    judging = store.find_run(str(run_id)).judges
    if not judging or len(judging["judges"]) < 2:
        return {}
    jurors = []
    for judge in judging["judges"]:
        per_job, excluded, ungraded = job_metrics(store, run_id, dataset, config, jobs, judge["name"])
        overall = aggregate(list(per_job.values()), config.seed).get(OVERALL)
        jurors.append(
            {
                "judge": judge["name"],
                "score": overall.mean if overall else None,
                "bootstrap_std": overall.bootstrap_std if overall else None,
                "n_examples": len(per_job),
                "n_excluded_examples": excluded,
                "n_ungraded_criteria": ungraded,
            }
        )
    names = [judge["name"] for judge in judging["judges"]]
    said = [
        [by_judge[name].criteria_met for name in names]
        for by_judge in queries.judge_grades(store, run_id).values()
        if all(name in by_judge and by_judge[name].criteria_met is not None for name in names)
    ]
    counts = [[sum(bool(m) for m in row), sum(not m for m in row)] for row in said]
    return {
        "jury": {
            "reducer": judging["reducer"],
            "jurors": jurors,
            "fleiss_kappa": fleiss_kappa(counts),
            "n_criteria_compared": len(counts),
        }
    }


# reading a run back -----------------------------------------------------------------------
def rubric_records(store: Store, run: Run, dataset: RubricDataset) -> list[SampleRecord]:
    """One record per answered example (and repeat): its conversation, the response, and each
    criterion's assessment by the run's grader. A failed model call lists every criterion as
    recorded without a verdict, with the call's error, so an export shows every failure the run's
    status counts."""
    responses = queries.responses(store, run.id)
    grades: dict[tuple[int, int], dict[int, Grade]] = {}
    for (index, repeat, criterion), g in queries.grades(store, run.id).items():
        grades.setdefault((index, repeat), {})[criterion] = g
    records = []
    for (index, repeat), response in sorted(responses.items()):
        example = dataset.examples[index]
        failed = response.error is not None or response.text is None
        assessments, earned, possible = [], 0.0, 0.0
        for c, item in enumerate(example.rubrics):
            grade = grades.get((index, repeat), {}).get(c)
            met = grade.criteria_met if grade else None
            possible += max(item.points, 0)
            earned += item.points if met else 0
            reason = grade.ungraded_reason if grade else None
            if grade is None and failed:
                reason = f"model call failed: {response.error or 'no answer'}"
            assessments.append(
                Assessment(
                    name=item.criterion,
                    judge=getattr(grade, "judge", None) or run.grader or "grader",
                    value=met,
                    explanation=grade.explanation if grade else None,
                    reason=reason,
                    p=grade.p_met if grade else None,
                    points=item.points,
                    tags=tuple(item.tags),
                    recorded=grade is not None or failed,
                )
            )
        # images by digest (served from the store's blobs), never as base64 in a view or an export
        messages = tuple(Message(m["role"], m["content"]) for m in keyed([m.model_dump() for m in example.prompt]))
        flags = {
            "failed": any(a.points > 0 and a.value is False for a in assessments),
            "negative_met": any(a.points < 0 and a.value for a in assessments),
            "ungraded": any(a.value is None for a in assessments) or response.error is not None,
            "error": failed,
        }
        records.append(
            SampleRecord(
                index=index,
                repeat=repeat,
                item_id=example.prompt_id,
                input=messages,
                output=response.text,
                error=(response.error or "no answer") if failed else None,
                finish_reason=response.finish_reason,
                scores={"score": earned / possible if possible else None},
                assessments=tuple(assessments),
                tags=tuple(example.example_tags),
                metadata={**_tag_metadata(example.example_tags), "modality": modality(messages)},
                flags=frozenset(f for f, on in flags.items() if on),
            )
        )
    return records


def _tag_metadata(tags: list[str]) -> dict[str, str]:
    """``theme:hedging`` -> ``{"theme": "hedging"}`` (the first value of each key)."""
    found: dict[str, str] = {}
    for tag in tags:
        key, sep, value = tag.partition(":")
        if sep:
            found.setdefault(key, value)
    return found


RUBRIC_GROUPS = (MetricGroup("theme", "theme:"), MetricGroup("axis", "axis:"))
RUBRIC_FLAGS = (
    Flag("failed", "A criterion not met", "criterion not met", "unmet"),
    Flag("negative_met", "Negative criterion met", "negative criterion met", "neg", short="negmet"),
    Flag("ungraded", "Ungraded", "ungraded", "ungraded"),
)
RUBRIC_HEADLINE = Headline(
    "examples",
    counts=(Count("n_excluded_examples", "excluded"), Count("n_ungraded_criteria", "ungraded criteria")),
    brief=(Count("n_excluded_examples", "excluded"),),
)
# one row per criterion: the columns (and order) ``medops export`` has always written
CRITERION_EXPORT = ExportSpec(
    per="assessment",
    order=("repeat", "index"),
    columns=(
        Column("example_index", "index"),
        Column("repeat", "repeat"),
        Column("prompt_id", "item_id"),
        Column("criterion_index", "a.position"),
        Column("criterion", "a.name"),
        Column("points", "a.points"),
        Column("tags", "a.tags"),
        Column("criteria_met", "a.value"),
        Column("explanation", "a.explanation"),
        Column("ungraded_reason", "a.reason"),
        Column("response", "output"),
    ),
)


class HealthBench(Benchmark[HealthBenchConfig, RubricData]):
    """HealthBench and every rubric set in its format (HealthBench Professional included)."""

    name = "healthbench"
    command = "medops eval healthbench"
    config_type = HealthBenchConfig
    headline = RUBRIC_HEADLINE
    metric_groups = RUBRIC_GROUPS
    export = CRITERION_EXPORT
    views = (
        Bars("Score by theme (± bootstrap std)", group="theme"),
        Bars("Score by axis (± bootstrap std)", group="axis"),
        Histogram("Example scores (unclipped)", score="score", unless=("ungraded",)),
        Samples("Examples", flags=RUBRIC_FLAGS, score="score"),
    )

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
        dataset, variants = with_variants(dataset, config)
        return RubricData(dataset, given, variants)

    def to_records(self, data: RubricData) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        meta = {} if data.variants is None else {"counterfactual": data.variants.record()}
        return meta, [example.model_dump(mode="json") for example in data.dataset.examples]

    def from_records(self, dataset: Dataset, meta: dict[str, Any], records: list[dict[str, Any]]) -> RubricData:
        facts = FileFacts(dataset.path, dataset.sha256, dataset.size_bytes)
        variants = Variants.from_record(meta["counterfactual"]) if "counterfactual" in meta else None
        examples = tuple(Example.model_validate(r) for r in records)
        return RubricData(RubricDataset(dataset.name, facts, examples), variants=variants)

    def load_recorded(self, run: Run, dataset: Dataset, config: HealthBenchConfig) -> RubricData:
        rubric = load_rubric_dataset(dataset.path, dataset.name)
        check_recorded(rubric.facts.sha256, dataset, run)
        given = load_responses(config.responses_path, rubric) if config.completions == "given" else None
        rubric, variants = with_variants(rubric, config)
        return RubricData(rubric, given, variants)

    def for_resume(self, config: HealthBenchConfig, data: RubricData) -> RubricData:
        if config.completions != "given" or data.given is not None:
            return data
        if not config.responses_path:
            raise UserError("this run grades given responses, and its --responses file is not recorded")
        return RubricData(data.dataset, load_responses(config.responses_path, data.dataset), data.variants)

    def plan(self, config: HealthBenchConfig, data: RubricData) -> list[Job]:
        if data.variants is not None:
            return data.variants.plan(
                select_indices(data.variants.n_original, config.limit, config.seed), config.repeats
            )
        return plan_jobs(data.dataset, config, data.given)[0]

    def models(self, config: HealthBenchConfig) -> dict[str, str | None]:
        return {"model": str(config.model) if config.model else config.completions, "grader": str(config.grader)}

    def pipeline(self, context: RunContext[HealthBenchConfig, RubricData]) -> JobRunner:
        model = build_model(context.config)
        judges = build_judges(context.config, model)
        return build_pipeline(context, context.data.dataset, context.data.given, model, judges)

    def score(
        self, store: Store, run_id: int, config: HealthBenchConfig, data: RubricData, jobs: list[Job]
    ) -> dict[str, Any]:
        if data.variants is None:
            return score_run(store, run_id, data.dataset, config, jobs)
        summary = score_run(store, run_id, data.dataset, config, data.variants.originals(jobs))
        per_job, _, _ = job_metrics(store, run_id, data.dataset, config, jobs)
        outcomes = {job: (None, metrics[OVERALL]) for job, metrics in per_job.items()}
        summary["counterfactual"] = data.variants.summary(outcomes, kind="score", seed=config.seed)
        return summary

    def item_results(
        self, store: Store, run: Run, config: HealthBenchConfig, data: RubricData, jobs: list[Job]
    ) -> ItemResults:
        planned = data.variants.originals(jobs) if data.variants is not None else jobs
        per_job, _, _ = job_metrics(store, run.id, data.dataset, config, planned)
        return ItemResults(False, per_job, [e.prompt_id for e in data.dataset.examples])

    def document(
        self, run: Run, dataset: Dataset, config: HealthBenchConfig, summary: dict[str, Any]
    ) -> dict[str, Any]:
        return healthbench_json(run, dataset, config, summary)

    def print_summary(self, console: Console, run: Run, dataset: Dataset, summary: dict[str, Any]) -> None:
        print_healthbench_summary(console, run, dataset, summary)

    def records(self, store: Store, run: Run, config: HealthBenchConfig, data: RubricData) -> list[SampleRecord]:
        records = rubric_records(store, run, data.dataset)
        if data.variants is None:
            return records
        return [replace(r, variant=v.record()) if (v := data.variants.variant(r.index)) else r for r in records]
