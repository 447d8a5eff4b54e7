"""Exam benchmarks (MedQA, MedMCQA, PubMedQA, MMLU medical, KorMedMCQA, KMLE, a hospital's own bank):
ask each item, read the chosen letter with the shared rule set, score accuracy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console

from medops.content import keyed
from medops.datasets.healthbench import select_indices
from medops.datasets.jsonl import FileFacts
from medops.datasets.mcqa import MCQItem, MCQSet, load_mcqa
from medops.datasets.registry import resolve
from medops.errors import UserError
from medops.evaluation.config import McqaConfig
from medops.evaluation.contract import Benchmark, ItemResults, RunContext, call_accounting, check_recorded
from medops.evaluation.counterfactual import Variants, make_variants
from medops.evaluation.engine import Counters, Job, JobRunner
from medops.evaluation.records import (
    Assessment,
    Bars,
    Column,
    Count,
    ExportSpec,
    Headline,
    Message,
    MetricGroup,
    Reliability,
    SampleRecord,
    Samples,
    modality,
)
from medops.evaluation.summaries import exam_json, print_exam_summary
from medops.models.backends import backends_with
from medops.models.base import ChatModel, Completion, SamplingParams, StopRequested
from medops.models.spec import create_model
from medops.prompts.mcqa import ANSWER_PREFIX, build_messages
from medops.scoring.calibration import abstention_score, calibration_summary
from medops.scoring.confidence import (
    is_abstention,
    letter_probability,
    option_probability,
    stated_confidence,
    without_stated_confidence,
)
from medops.scoring.extract import extract_choice
from medops.scoring.mcqa import summarize_answers
from medops.store import queries
from medops.store.repository import RESPONSES, Store, response_row
from medops.store.schema import Answer, Dataset, Run, utcnow
from medops.store.writer import StoreWriter

ANSWERS = Answer.__table__


@dataclass(frozen=True)
class ReadAnswer:
    predicted: str | None
    rule: str | None
    confidence: float | None = None  # the chosen option's probability, or the stated one; None: none


ABSTAIN_RULE = "abstain"  # --allow-abstain: the answer declined ("I don't know"), counted apart
# Styles whose answer letter a served model's token logprobs can be read at (a short reply);
# in-process models give token logprobs in every style.
TOKEN_LOGPROB_STYLES = ("direct", "confidence")
TOP_LOGPROBS = 5


def wants_token_logprobs(config: McqaConfig) -> bool:
    capabilities = config.model.capabilities
    if capabilities.in_process:
        return True
    return config.logprobs and capabilities.logprobs and config.style in TOKEN_LOGPROB_STYLES


def read_generated(config: McqaConfig, item: MCQItem, completion: Completion) -> ReadAnswer:
    """The letter (by the shared rule), an abstention where allowed, and the answer's confidence:
    the answer token's probability when logprobs came back, else the one it states (``confidence``
    style), else None."""
    text = completion.text or ""
    stated = config.style == "confidence"
    extraction = extract_choice(without_stated_confidence(text) if stated else text, item.letters, item.options)
    if config.allow_abstain and is_abstention(text, extraction.choice):
        return ReadAnswer(None, ABSTAIN_RULE)
    confidence = letter_probability(completion.extra.get("logprobs"), extraction.choice, item.letters)
    if confidence is None and stated and extraction.choice is not None:
        confidence = stated_confidence(text)
    return ReadAnswer(extraction.choice, extraction.rule, confidence)


@dataclass(frozen=True)
class ExamData:
    """An exam, and the worked examples shown before each question (``--shots``)."""

    exam: MCQSet
    shots: tuple[MCQItem, ...] = ()
    variants: Variants | None = None  # --counterfactual: the variant items after the originals

    @property
    def name(self) -> str:
        return self.exam.name

    @property
    def facts(self) -> FileFacts:
        return self.exam.facts

    def __len__(self) -> int:
        """The exam's own items (its counterfactual variants are not the data set's size)."""
        return len(self.exam) if self.variants is None else self.variants.n_original


def with_variants(exam: MCQSet, config: McqaConfig) -> tuple[MCQSet, Variants | None]:
    """``exam`` with the counterfactual variants of its chosen items appended (question and options
    rewritten together; the gold letter, tags and images as they were)."""
    if not config.counterfactual:
        return exam, None
    chosen = select_indices(len(exam), config.limit, config.seed)
    texts = [(i, (exam.items[i].question, *exam.items[i].options.values()), ()) for i in chosen]
    variants, rewritten = make_variants(texts, len(exam), config.counterfactual, insert=config.counterfactual_insert)
    items = []
    for v, (question, *options) in zip(variants.of, rewritten, strict=True):
        item = exam.items[v.original_index]
        items.append(
            replace(
                item,
                id=f"{item.id}~{v.attribute}={v.value}",
                question=question,
                options=dict(zip(item.options, options, strict=True)),
            )
        )
    return replace(exam, items=exam.items + tuple(items)), variants


class McqaPipeline(JobRunner):
    def __init__(
        self,
        *,
        run_id: int,
        config: McqaConfig,
        exam: MCQSet,
        shots: tuple[MCQItem, ...],
        store: Store,
        writer: StoreWriter,
        done: set[Job],
        model: ChatModel,
        counters: Counters,
        on_progress: Callable[[Counters], None] | None = None,
    ):
        super().__init__(
            store=store,
            writer=writer,
            use_cache=config.use_cache,
            concurrency=config.concurrency,
            models=[model],
            counters=counters,
            on_progress=on_progress,
        )
        self.run_id, self.config, self.exam, self.shots, self.done, self.model = (
            run_id,
            config,
            exam,
            shots,
            done,
            model,
        )

    async def _job(self, index: int, repeat: int) -> None:
        if (index, repeat) in self.done:
            return
        item = self.exam.items[index]
        style = "direct" if self.config.scoring == "loglikelihood" else self.config.style
        messages = build_messages(
            item,
            style=style,
            language=self.config.language,
            template=self.config.prompt_template,
            shots=self.shots,
            system_message=self.config.system_message,
            abstain=self.config.allow_abstain,
        )
        try:
            if self.config.scoring == "loglikelihood":
                params = SamplingParams(
                    assistant_prefix=ANSWER_PREFIX[self.config.language],
                    score_choices=tuple(f" {letter}" for letter in item.letters),
                )
                completion = await self.call(self.model, messages, params, repeat, "model")
                read = _most_likely(completion)
                if completion.ok:
                    completion.text = read.predicted or ""
            else:
                params = self.config.sampling()
                if wants_token_logprobs(self.config):
                    params = replace(params, top_logprobs=TOP_LOGPROBS, logprobs_optional=True)
                completion = await self.call(self.model, messages, params, repeat, "model")
                read = read_generated(self.config, item, completion)
        except StopRequested:
            return
        self.writer.add(RESPONSES, response_row(self.run_id, index, repeat, item.id, completion, "model"))
        if completion.ok:
            self.writer.add(
                ANSWERS,
                {
                    "run_id": self.run_id,
                    "item_index": index,
                    "repeat": repeat,
                    "item_id": item.id,
                    "gold": item.answer,
                    "predicted": read.predicted,
                    "rule": read.rule,
                    "correct": read.predicted == item.answer,
                    "confidence": read.confidence,
                    "created_at": utcnow(),
                },
            )


def _most_likely(completion: Completion) -> ReadAnswer:
    scores = completion.extra.get("choice_logprobs") or {}
    if not scores:
        return ReadAnswer(None, None)
    chosen = max(scores, key=scores.get).strip()
    return ReadAnswer(chosen, "loglikelihood", option_probability(scores, chosen))


def load_shots(config: McqaConfig) -> tuple[MCQItem, ...]:
    if not config.shots:
        return ()
    if not config.fewshot_data:
        raise UserError(
            f"--shots {config.shots} needs --fewshot-data (a few-shot or dev split in any supported layout)"
        )
    pool = load_mcqa(config.task, resolve(config.fewshot_data)[1])
    return tuple(pool.items[: config.shots])


def breakdown_tags(exam: MCQSet, item: MCQItem) -> dict[str, str]:
    """What an item's accuracy is broken down by: its tags, and ``modality`` (text or image) in
    an exam that has image items (a text-only exam's breakdowns stay as they were)."""
    if not exam.n_with_images:
        return item.tags
    return {**item.tags, "modality": "image" if item.images else "text"}


def score_exam_run(
    store: Store,
    run_id: int,
    exam: MCQSet,
    jobs: list[Job],
    seed: int,
    allow_abstain: bool = False,
    variants: Variants | None = None,
) -> dict:
    answers = queries.answers(store, run_id)
    every_job = jobs
    if variants is not None:
        exam = replace(exam, items=exam.items[: variants.n_original])
        jobs = variants.originals(jobs)
    truncated = queries.truncated(store, run_id)
    records = []
    confidences: list[float | None] = []
    outcomes: list[bool] = []
    abstained = 0
    for job in jobs:
        answer = answers.get(job)
        if answer is not None:
            declined = answer.rule == ABSTAIN_RULE  # counted apart, never as unparsed
            abstained += declined
            read = answer.predicted is not None or declined
            records.append((answer.correct, read, breakdown_tags(exam, exam.items[job[0]])))
            if not declined:
                confidences.append(answer.confidence)
                outcomes.append(answer.correct)
    summary = summarize_answers(records, seed)
    summary.update(calibration_summary(confidences, outcomes))
    if allow_abstain:
        correct = sum(outcomes)
        summary["abstention"] = abstention_score(correct, len(outcomes) - correct, abstained)
    summary.update(
        {
            "task": exam.task,
            "n_items_in_file": len(exam) + sum(exam.skipped.values()),
            "skipped_items": exam.skipped,
            "n_not_answered": len(jobs) - len(records),
            "n_excluded_examples": len(jobs) - len(records),
            # answers cut by the length limit: scored as given (usually wrong), and counted so it shows
            "n_truncated": sum(job in truncated for job in jobs),
            "rules": dict(sorted(_rule_counts(answers.values()).items())),
            **call_accounting(store, run_id),
        }
    )
    summary["any_failed_call"] = summary["n_failed_calls"] > 0
    if variants is not None:
        answered = {
            job: (answer.predicted, 1.0 if answer.correct else 0.0)
            for job in every_job
            if (answer := answers.get(job)) is not None
        }
        summary["counterfactual"] = variants.summary(answered, kind="accuracy", seed=seed)
    return summary


def _rule_counts(answers) -> dict[str, int]:
    counts: dict[str, int] = {}
    for answer in answers:
        key = answer.rule or "unparsed"
        counts[key] = counts.get(key, 0) + 1
    return counts


def exam_records(store: Store, run: Run, exam: MCQSet, variants: Variants | None = None) -> list[SampleRecord]:
    """One record per asked question (and repeat): the question and options, the reply, and the
    answer as read (the letter, the rule that read it, right or wrong); failed calls included."""
    responses = queries.responses(store, run.id)
    answers = queries.answers(store, run.id)
    records = []
    for job in sorted(set(responses) | set(answers)):
        item, response, answer = exam.items[job[0]], responses.get(job), answers.get(job)
        failed = response is not None and (response.error is not None or response.text is None)
        assessments = ()
        flags = {"error"} if failed else set()
        if answer is not None:
            read = Assessment(
                "answer",
                "rule",
                answer.correct,
                explanation=answer.rule or "unparsed",
                answer=answer.predicted,
                p=answer.confidence,
            )
            assessments = (read,)
            flags |= {"wrong"} if not answer.correct else set()
            flags |= {"unparsed"} if answer.rule is None else set()
            flags |= {"abstained"} if answer.rule == ABSTAIN_RULE else set()
        # images by digest (served from the store's blobs), never as base64 in a view or an export
        question = item.question
        if item.images:
            question = [{"type": "text", "text": item.question}, *keyed(list(item.images))]
        messages = (Message("user", question),)
        records.append(
            SampleRecord(
                index=job[0],
                repeat=job[1],
                item_id=item.id,
                input=messages,
                output=response.text if response else None,
                error=(response.error or "no answer") if failed else None,
                finish_reason=response.finish_reason if response else None,
                choices=dict(item.options),
                target=item.answer,
                scores={"accuracy": (1.0 if answer.correct else 0.0) if answer else None},
                assessments=assessments,
                metadata={**item.tags, "modality": modality(messages)},
                flags=frozenset(flags),
                variant=_variant_of(variants, job[0]),
            )
        )
    return records


def _variant_of(variants: Variants | None, index: int) -> dict[str, Any] | None:
    v = variants.variant(index) if variants is not None else None
    return None if v is None else v.record()


# one row per asked question: the reply, the letter read, the rule, and failed calls
ANSWER_EXPORT = ExportSpec(
    columns=(
        Column("item_index", "index"),
        Column("repeat", "repeat"),
        Column("item_id", "item_id"),
        Column("question", "prompt_text"),
        Column("gold", "target"),
        Column("predicted", "first.answer"),
        Column("rule", "first.explanation"),
        Column("correct", "first.value"),
        Column("confidence", "first.p"),  # the chosen option's probability or the stated one; null: none
        Column("error", "error"),
        Column("finish_reason", "finish_reason"),
        Column("response", "output"),
    ),
)


class Exam(Benchmark[McqaConfig, ExamData]):
    name = "mcqa"
    command = "medops eval mcqa"
    config_type = McqaConfig
    headline = Headline("items", counts=(Count("n_unparsed", "unparsed"),))
    metric_groups = (MetricGroup("breakdown", ""),)
    export = ANSWER_EXPORT
    views = (
        Bars("Accuracy by breakdown (± bootstrap std)", group="breakdown"),
        Reliability("Calibration: accuracy by confidence"),
        Samples("Wrong answers", only="wrong"),
    )

    def validate(self, config: McqaConfig) -> None:
        if config.scoring == "loglikelihood" and not config.model.capabilities.choice_scoring:
            backends = ", ".join(f"{name}:" for name in backends_with("choice_scoring"))
            raise UserError(f"--scoring loglikelihood needs an in-process model ({backends}); use --scoring generate")

    def validate_data(self, config: McqaConfig, data: ExamData) -> None:
        """A model that takes no images is refused an exam with image items before any call,
        unless ``--skip-images`` asked for the text items only (by capability, never by name)."""
        if config.model.capabilities.images:
            return
        backends = ", ".join(f"{b}:" for b in backends_with("images"))
        shots = sum(1 for shot in data.shots if shot.images)
        if shots:
            raise UserError(
                f"{config.model} takes no images, and {shots} worked example(s) of --fewshot-data have images; "
                f"use a model that takes images ({backends}) or few-shot examples without images"
            )
        with_images = data.exam.n_with_images
        if with_images:
            raise UserError(
                f"{config.model} takes no images, and {with_images} item(s) of {data.name} have images; "
                f"use a model that takes images ({backends}), or --skip-images to score the text items only"
            )

    def load(self, config: McqaConfig) -> ExamData:
        name, path = resolve(config.data)
        exam = load_mcqa(config.task, path, name)
        exam, variants = with_variants(exam.without_images() if config.skip_images else exam, config)
        return ExamData(exam, load_shots(config), variants)

    def to_records(self, data: ExamData) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        meta = {"task": data.exam.task, "skipped": data.exam.skipped}
        if data.variants is not None:
            meta["counterfactual"] = data.variants.record()
        return meta, [item.record() for item in data.exam.items]

    def from_records(self, dataset: Dataset, meta: dict[str, Any], records: list[dict[str, Any]]) -> ExamData:
        facts = FileFacts(dataset.path, dataset.sha256, dataset.size_bytes)
        items = tuple(MCQItem.from_record(record) for record in records)
        variants = Variants.from_record(meta["counterfactual"]) if "counterfactual" in meta else None
        return ExamData(MCQSet(dataset.name, meta["task"], facts, items, dict(meta["skipped"])), variants=variants)

    def load_recorded(self, run: Run, dataset: Dataset, config: McqaConfig) -> ExamData:
        exam = load_mcqa(config.task, dataset.path, dataset.name)
        check_recorded(exam.facts.sha256, dataset, run)
        exam, variants = with_variants(exam, config)
        return ExamData(exam, variants=variants)

    def for_resume(self, config: McqaConfig, data: ExamData) -> ExamData:
        return data if data.shots or not config.shots else ExamData(data.exam, load_shots(config), data.variants)

    def plan(self, config: McqaConfig, data: ExamData) -> list[Job]:
        if data.variants is not None:
            chosen = select_indices(data.variants.n_original, config.limit, config.seed)
            return data.variants.plan(chosen, config.repeats)
        chosen = select_indices(len(data.exam), config.limit, config.seed)
        return [(index, repeat) for repeat in range(config.repeats) for index in chosen]

    def models(self, config: McqaConfig) -> dict[str, str | None]:
        return {"model": str(config.model), "grader": None}

    def pipeline(self, context: RunContext[McqaConfig, ExamData]) -> JobRunner:
        config = context.config
        model = create_model(
            config.model,
            role="model",
            concurrency=config.concurrency,
            retry=config.retry_policy(),
            batch_size=config.batch_size,
        )
        done = set(queries.answers(context.store, context.run_id)) if context.resumed else set()
        return McqaPipeline(
            run_id=context.run_id,
            config=config,
            exam=context.data.exam,
            shots=context.data.shots,
            store=context.store,
            writer=context.writer,
            done=done,
            model=model,
            counters=context.counters,
            on_progress=context.on_progress,
        )

    def score(self, store: Store, run_id: int, config: McqaConfig, data: ExamData, jobs: list[Job]) -> dict[str, Any]:
        return score_exam_run(store, run_id, data.exam, jobs, config.seed, config.allow_abstain, data.variants)

    def item_results(self, store: Store, run: Run, config: McqaConfig, data: ExamData, jobs: list[Job]) -> ItemResults:
        planned = set(data.variants.originals(jobs) if data.variants is not None else jobs)
        values: dict[Job, dict[str, float]] = {}
        for job, answer in queries.answers(store, run.id).items():
            if job in planned:
                value = 1.0 if answer.correct else 0.0
                tags = breakdown_tags(data.exam, data.exam.items[job[0]])
                values[job] = {"accuracy": value, **{f"{k}:{v}": value for k, v in tags.items() if v}}
        return ItemResults(True, values, [item.id for item in data.exam.items])

    def document(self, run: Run, dataset: Dataset, config: McqaConfig, summary: dict[str, Any]) -> dict[str, Any]:
        return exam_json(run, dataset, summary)

    def print_summary(self, console: Console, run: Run, dataset: Dataset, summary: dict[str, Any]) -> None:
        print_exam_summary(console, run, dataset, summary)

    def records(self, store: Store, run: Run, config: McqaConfig, data: ExamData) -> list[SampleRecord]:
        return exam_records(store, run, data.exam, data.variants)

    def unscored_share(self, store: Store, run: Run) -> tuple[float, str]:
        summary = run.summary or {}
        rate = summary.get("unparsed_rate") or 0.0
        return rate, f"{summary.get('n_unparsed', 0)} of {summary.get('n_examples', 0)} answers unparsed"
