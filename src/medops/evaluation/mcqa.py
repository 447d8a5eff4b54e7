"""Exam runs: ask each item, read the chosen letter with the shared rule set, score accuracy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from medops.datasets.healthbench import select_indices
from medops.datasets.mcqa import MCQItem, MCQSet, load_mcqa
from medops.datasets.registry import resolve
from medops.errors import UserError
from medops.evaluation.config import McqaConfig
from medops.evaluation.engine import Counters, Job, JobRunner
from medops.evaluation.run import (
    RunOutcome,
    attach_budget,
    check_same_data,
    execute,
    finish,
    run_to_resume,
    spent_so_far,
)
from medops.evaluation.scoring_run import call_accounting
from medops.grading.extract import extract_choice
from medops.models.base import ChatModel, Completion, SamplingParams, StopRequested
from medops.models.factory import create_model
from medops.prompts.mcqa import ANSWER_PREFIX, build_messages
from medops.scoring.mcqa import summarize_answers
from medops.store import queries
from medops.store.repository import RESPONSES, Store, response_row
from medops.store.schema import Answer, utcnow
from medops.store.writer import StoreWriter

ANSWERS = Answer.__table__
BENCHMARK = "mcqa"


@dataclass(frozen=True)
class ReadAnswer:
    predicted: str | None
    rule: str | None


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
                completion = await self.call(self.model, messages, self.config.sampling(), repeat, "model")
                extraction = extract_choice(completion.text, item.letters, item.options)
                read = ReadAnswer(extraction.choice, extraction.rule)
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
                    "created_at": utcnow(),
                },
            )


def _most_likely(completion: Completion) -> ReadAnswer:
    scores = completion.extra.get("choice_logprobs") or {}
    if not scores:
        return ReadAnswer(None, None)
    return ReadAnswer(max(scores, key=scores.get).strip(), "loglikelihood")


def load_exam(config: McqaConfig) -> tuple[MCQSet, tuple[MCQItem, ...]]:
    name, path = resolve(config.data)
    exam = load_mcqa(config.task, path, name)
    shots: tuple[MCQItem, ...] = ()
    if config.shots:
        if not config.fewshot_data:
            raise UserError(
                f"--shots {config.shots} needs --fewshot-data (a few-shot or dev split in any supported layout)"
            )
        pool = load_mcqa(config.task, resolve(config.fewshot_data)[1])
        shots = tuple(pool.items[: config.shots])
    return exam, shots


def run_mcqa(
    config: McqaConfig | None,
    store: Store,
    *,
    name: str | None = None,
    resume: str | None = None,
    on_progress: Callable[[Counters], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
    budget_usd: float | None = None,
) -> RunOutcome:
    previous_wall = 0.0
    done: set[Job] = set()
    if resume is not None:
        run = run_to_resume(store, resume, (BENCHMARK,))
        config = McqaConfig.model_validate(run.config)
        exam, shots = load_exam(config)
        check_same_data(store, run, exam.facts)
        run_id, previous_wall = run.id, run.wall_seconds
        done = store.claim_exam_for_resume(run_id)
    else:
        assert config is not None
        exam, shots = load_exam(config)
    chosen = select_indices(len(exam), config.limit, config.seed)
    jobs = [(index, repeat) for repeat in range(config.repeats) for index in chosen]
    model = create_model(
        config.model.to_spec(),
        role="model",
        concurrency=config.concurrency,
        retry=config.retry_policy(),
        batch_size=config.batch_size,
    )
    if config.scoring == "loglikelihood" and config.model.backend not in ("local", "hf"):
        raise UserError("--scoring loglikelihood needs an in-process model (local:, hf:); use --scoring generate")
    if resume is None:
        dataset_id = store.register_dataset(exam.name, exam.facts, len(exam))
        run_id = store.create_run(
            name=name,
            benchmark=BENCHMARK,
            dataset_id=dataset_id,
            model=str(config.model),
            grader=None,
            config=config.record(),
        )
    writer = store.writer()
    pipeline = McqaPipeline(
        run_id=run_id,
        config=config,
        exam=exam,
        shots=shots,
        store=store,
        writer=writer,
        done=done,
        model=model,
        counters=Counters(),
        on_progress=on_progress,
    )
    attach_budget(
        pipeline,
        budget_usd if budget_usd is not None else config.budget_usd,
        {"model": str(config.model)},
        spent_so_far(store, run_id) if resume is not None else 0.0,
    )
    resume_command = f"medops eval mcqa --resume {run_id}"
    status, message, seconds = execute(pipeline, jobs, writer, resume_command, on_notice)
    summary = score_exam_run(store, run_id, exam, jobs, config.seed)
    return finish(store, run_id, status, message, previous_wall + seconds, summary, resume_command)


def score_exam_run(store: Store, run_id: int, exam: MCQSet, jobs: list[Job], seed: int) -> dict:
    answers = queries.answers(store, run_id)
    truncated = queries.truncated(store, run_id)
    records = []
    for job in jobs:
        answer = answers.get(job)
        if answer is not None:
            records.append((answer.correct, answer.predicted is not None, exam.items[job[0]].tags))
    summary = summarize_answers(records, seed)
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
    return summary


def _rule_counts(answers) -> dict[str, int]:
    counts: dict[str, int] = {}
    for answer in answers:
        key = answer.rule or "unparsed"
        counts[key] = counts.get(key, 0) + 1
    return counts


def exam_json(run, dataset, summary: dict) -> dict:
    return {
        "run_id": run.id,
        "name": run.name,
        "status": run.status,
        "benchmark": run.benchmark,
        "task": summary.get("task"),
        "dataset": {
            "name": dataset.name,
            "path": dataset.path,
            "sha256": dataset.sha256,
            "n_examples": dataset.n_examples,
        },
        "model": run.model,
        "score": summary.get("score"),
        "bootstrap_std": summary.get("bootstrap_std"),
        "n_examples": summary.get("n_examples", 0),
        "n_unparsed": summary.get("n_unparsed", 0),
        "unparsed_rate": summary.get("unparsed_rate"),
        "n_excluded_examples": summary.get("n_excluded_examples", 0),
        "n_failed_calls": summary.get("n_failed_calls", 0),
        "n_truncated": summary.get("n_truncated", 0),
        "skipped_items": summary.get("skipped_items", {}),
        "rules": summary.get("rules", {}),
        "metrics": summary.get("metrics", {}),
        "usage": summary.get("usage", {}),
        "wall_seconds": summary.get("wall_seconds", run.wall_seconds),
    }
