"""Start or resume a rubric-grading run (HealthBench or meta-evaluation); always leave the store consistent."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medops.datasets.healthbench import RubricDataset, load_rubric_dataset
from medops.datasets.jsonl import FileFacts
from medops.datasets.meta_eval import MetaEvalSet, load_meta_eval
from medops.datasets.registry import resolve
from medops.datasets.responses import load_responses
from medops.errors import UserError
from medops.evaluation.config import HealthBenchConfig
from medops.evaluation.engine import Counters, Job, JobRunner
from medops.evaluation.healthbench import HealthBenchPipeline, plan_jobs
from medops.evaluation.scoring_run import score_meta_run, score_run
from medops.models.base import ChatModel, FatalModelError
from medops.models.factory import create_model
from medops.models.pricing import BudgetMeter, load_prices, price_for
from medops.ops.costs import run_cost
from medops.store.repository import COMPLETED, FAILED, INCOMPLETE, INTERRUPTED, ExistingWork, Store
from medops.store.schema import Run
from medops.store.writer import StoreWriter


@dataclass
class RunOutcome:
    run_id: int
    status: str
    summary: dict[str, Any]
    message: str | None = None  # why the run stopped early, for the user
    exit_code: int = 0  # 0 completed, 2 a fatal endpoint error, 3 failed calls (resumable), 130 interrupted


@dataclass
class TaskData:
    dataset: RubricDataset
    given: dict[int, str] | None  # responses supplied instead of generated
    meta: MetaEvalSet | None = None
    meta_positions: list[tuple[int, int]] | None = None  # row -> (example_index, criterion_index)


def load_task_data(config: HealthBenchConfig) -> TaskData:
    name, path = resolve(config.data)
    if config.task == "meta-eval":
        meta = load_meta_eval(path, name)
        dataset, given, where = meta.as_rubric_dataset()
        return TaskData(dataset, given, meta, where)
    dataset = load_rubric_dataset(path, name)
    given = load_responses(config.responses_path, dataset) if config.completions == "given" else None
    return TaskData(dataset, given)


def run_healthbench(
    config: HealthBenchConfig,
    store: Store,
    *,
    name: str | None = None,
    resume: str | None = None,
    on_progress: Callable[[Counters], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
    budget_usd: float | None = None,
) -> RunOutcome:
    previous_wall = 0.0
    if resume is not None:
        run = run_to_resume(store, resume, ("healthbench", "meta-eval"))
        config = HealthBenchConfig.model_validate(run.config)
        task = load_task_data(config)
        dataset = task.dataset
        check_same_data(store, run, dataset.facts)
        run_id, previous_wall = run.id, run.wall_seconds
    else:
        task = load_task_data(config)
        dataset = task.dataset
    given = task.given
    jobs, _ = plan_jobs(dataset, config, given)
    if not jobs:
        raise UserError(f"{config.data}: no examples to evaluate (with --completions {config.completions})")
    model, grader = _build_models(config)
    if resume is None:
        dataset_id = store.register_dataset(dataset.name, dataset.facts, len(dataset))
        run_id = store.create_run(
            name=name,
            benchmark=config.task,
            dataset_id=dataset_id,
            model=str(config.model) if model else config.completions,
            grader=str(config.grader),
            config=config.record(),
        )
        existing = ExistingWork({}, {})
    else:
        existing = store.claim_for_resume(run_id)

    writer = store.writer()
    pipeline = HealthBenchPipeline(
        run_id=run_id,
        config=config,
        dataset=dataset,
        store=store,
        writer=writer,
        existing=existing,
        model=model,
        grader=grader,
        given=given,
        counters=Counters(),
        on_progress=on_progress,
    )
    attach_budget(
        pipeline,
        budget_usd if budget_usd is not None else config.budget_usd,
        {"model": str(config.model) if model else None, "grader": str(config.grader)},
        spent_so_far(store, run_id) if resume is not None else 0.0,
    )
    command = "medops meta-eval" if config.task == "meta-eval" else "medops eval healthbench"
    status, message, seconds = execute(pipeline, jobs, writer, f"{command} --resume {run_id}", on_notice)
    wall = previous_wall + seconds
    if task.meta is not None:
        summary = score_meta_run(store, run_id, task.meta, task.meta_positions or [], jobs)
    else:
        summary = score_run(store, run_id, dataset, config, jobs)
    return finish(store, run_id, status, message, wall, summary, f"{command} --resume {run_id}")


def attach_budget(
    pipeline: JobRunner, budget_usd: float | None, labels: dict[str, str | None], spent_usd: float = 0.0
) -> None:
    """Give the pipeline a budget meter; every paid model needs a price (nothing is guessed)."""
    if budget_usd is None:
        return
    prices = load_prices()
    role_prices = {}
    for role, label in labels.items():
        if label is None or label.startswith(("local:", "hf:")):
            continue
        price = price_for(label, prices)
        if price is None:
            raise UserError(
                f"--budget-usd needs a price for {label}: add it to a price table "
                "(MEDOPS_PRICES=FILE; see src/medops/models/prices.yaml)"
            )
        role_prices[role] = price
    pipeline.budget = BudgetMeter(budget_usd, role_prices, spent_usd)


def spent_so_far(store: Store, run_id: int) -> float:
    run = store.find_run(str(run_id))
    return run_cost(run, load_prices())["total_usd"] if run.summary else 0.0


def run_to_resume(store: Store, ref: str, benchmarks: tuple[str, ...]) -> Run:
    run = store.find_run(ref)
    if run.benchmark not in benchmarks:
        raise UserError(f"run {run.id} is a {run.benchmark} run; resume it with its own command")
    if run.status == COMPLETED:
        raise UserError(f"run {run.id} is already completed; nothing to resume")
    return run


def check_same_data(store: Store, run: Run, facts: FileFacts) -> None:
    recorded = store.dataset(run.dataset_id)
    if recorded.sha256 != facts.sha256:
        raise UserError(
            f"run {run.id} was made on {recorded.path} (sha256 {recorded.sha256[:12]}...); "
            f"{facts.path} now has sha256 {facts.sha256[:12]}...: refusing to mix them"
        )


def execute(
    pipeline: JobRunner, jobs: list[Job], writer: StoreWriter, resume_hint: str, on_notice: Callable[[str], None] | None
) -> tuple[str, str | None, float]:
    """Run the pipeline to the end, a stop or a fatal error; (status, message, seconds)."""
    started = time.monotonic()
    status, message = COMPLETED, None
    try:
        asyncio.run(_drive(pipeline, jobs, pipeline.models, on_notice))
        if pipeline.stop_reason is not None:
            status, message = INTERRUPTED, f"{pipeline.stop_reason}; continue with `{resume_hint}`"
    except (KeyboardInterrupt, asyncio.CancelledError):
        status, message = INTERRUPTED, f"interrupted; continue with `{resume_hint}`"
    except FatalModelError as exc:
        status, message = FAILED, f"{exc}; fix it and continue with `{resume_hint}`"
    finally:
        writer.close()  # every finished call reaches the store, whatever happened above
    return status, message, time.monotonic() - started


def finish(
    store: Store,
    run_id: int,
    status: str,
    message: str | None,
    wall: float,
    summary: dict[str, Any],
    resume_command: str,
) -> RunOutcome:
    """Record how the run ended. A run whose every job ran but where some call failed for good is
    ``incomplete`` (``failed`` when nothing succeeded): never ``completed``, always resumable."""
    summary["wall_seconds"] = wall
    exit_code = {COMPLETED: 0, INTERRUPTED: 130, FAILED: 2}[status]
    failed = summary.get("n_failed_calls", 0)
    if failed:
        by_role = ", ".join(f"{role}: {u['failed']}" for role, u in summary.get("usage", {}).items() if u["failed"])
        plural = failed != 1
        note = (
            f"{failed} call{'s' if plural else ''} failed for good ({by_role}) and {'are' if plural else 'is'} left "
            f"out of the score; retry {'them' if plural else 'it'} with `{resume_command}`"
        )
        if status == COMPLETED:
            everything_failed = failed >= summary.get("n_calls_recorded", 0)
            status, exit_code, message = (FAILED if everything_failed else INCOMPLETE), 3, note
        else:
            message = f"{message}; {note}" if message else note
    store.finish_run(
        run_id, status, wall_seconds=wall, summary=summary, error=message if status in (FAILED, INCOMPLETE) else None
    )
    return RunOutcome(run_id, status, summary, message, exit_code)


def _build_models(config: HealthBenchConfig) -> tuple[ChatModel | None, ChatModel]:
    def build(spec, role: str) -> ChatModel:
        return create_model(
            spec.to_spec(),
            role=role,
            concurrency=config.concurrency,
            retry=config.retry_policy(),
            batch_size=config.batch_size,
        )

    model = build(config.model, "model") if config.completions == "model" and config.model else None
    if model is not None and config.model == config.grader and config.grader.backend in ("local", "hf"):
        return model, model  # one copy of an in-process model serves both roles
    return model, build(config.grader, "grader")


async def _drive(
    pipeline: JobRunner, jobs: list[Job], models: list[ChatModel], on_notice: Callable[[str], None] | None
) -> None:
    """Run the pipeline; the first Ctrl-C (or SIGTERM) drains, a second one abandons the calls in flight."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if pipeline.stop_reason is None:
            pipeline.stop("interrupted")
            if on_notice:
                on_notice("stopping: finishing the calls in flight (Ctrl-C again to abandon them)")
        elif task is not None:
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        await pipeline.run(jobs)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for model in {id(m): m for m in models}.values():
            await model.aclose()
