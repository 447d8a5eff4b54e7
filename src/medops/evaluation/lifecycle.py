"""One run lifecycle for every benchmark: create (or claim for ``--resume``), execute, close.

Whatever happens (a crash, Ctrl-C, a fatal endpoint error, calls that fail for good) the store is
left consistent and the run resumable. A new run stores its items (content-addressed, once) and
its job plan, so everything read back later (export, report, compare, gate) needs only the store.
"""

from __future__ import annotations

import asyncio
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medops.errors import UserError
from medops.evaluation.contract import Benchmark, RunContext
from medops.evaluation.engine import Counters, Job, JobRunner
from medops.events import EventBus, RunEnded, RunStarted
from medops.models.base import FatalModelError
from medops.models.pricing import BudgetMeter, load_prices, price_for, run_cost
from medops.store import queries
from medops.store.repository import COMPLETED, FAILED, INCOMPLETE, INTERRUPTED, Store
from medops.store.schema import Dataset, Run
from medops.store.writer import StoreWriter


@dataclass
class RunOutcome:
    run_id: int
    status: str
    summary: dict[str, Any]
    message: str | None = None  # why the run stopped early, for the user
    exit_code: int = 0  # 0 completed, 2 a fatal endpoint error, 3 failed calls (resumable), 130 interrupted


@dataclass
class RecordedRun:
    """A stored run with what it was made on: the single way every reader gets a run's data."""

    run: Run
    dataset: Dataset
    config: Any
    data: Any
    jobs: list[Job]


def recorded(benchmark: Benchmark, store: Store, run: Run) -> RecordedRun:
    """The run's data and plan from the store; runs recorded before items were stored fall back
    to their source file (refused if its sha256 changed)."""
    dataset = store.dataset(run.dataset_id)
    config = benchmark.config_type.model_validate(run.config)
    stored = queries.item_set(store, run.item_set) if run.item_set else None
    if stored is not None:
        _, meta, records = stored
        data = benchmark.from_records(dataset, meta, records)
    else:
        data = benchmark.load_recorded(run, dataset, config)
    jobs = [(int(i), int(r)) for i, r in run.plan] if run.plan is not None else benchmark.plan(config, data)
    return RecordedRun(run, dataset, config, data, jobs)


def run_benchmark(
    benchmark: Benchmark,
    config: Any,
    store: Store,
    *,
    name: str | None = None,
    resume: str | None = None,
    bus: EventBus | None = None,
    on_progress: Callable[[Counters], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
    budget_usd: float | None = None,
) -> RunOutcome:
    """Run ``config`` (or resume run ``resume``) to the end, a stop or a fatal error."""
    bus = bus or EventBus()
    previous_wall = 0.0
    if resume is not None:
        run = run_to_resume(store, resume, benchmark)
        found = recorded(benchmark, store, run)
        config, jobs = found.config, found.jobs
        data = benchmark.for_resume(config, found.data)
        run_id, previous_wall = run.id, run.wall_seconds
        store.claim_for_resume(run_id)
    else:
        benchmark.validate(config)
        data = benchmark.load(config)
        benchmark.validate_data(config, data)
        jobs = benchmark.plan(config, data)
        if not jobs:
            source = getattr(config, "completions", "model")
            raise UserError(
                f"{config.data}: no items to evaluate"
                + (f" (with --completions {source})" if source != "model" else "")
            )
        meta, records = benchmark.to_records(data)
        item_set = store.save_item_set(benchmark.name, meta, records)
        dataset_id = store.register_dataset(data.name, data.facts, len(data))
        labels = benchmark.models(config)
        run_id = store.create_run(
            name=name,
            benchmark=benchmark.name,
            dataset_id=dataset_id,
            model=labels.get("model"),
            grader=labels.get("grader"),
            config=config.record(),
            item_set=item_set,
            plan=jobs,
        )
    writer = store.writer(bus)
    context = RunContext(run_id, config, data, store, writer, resume is not None, bus, Counters(), on_progress)
    try:
        pipeline = benchmark.pipeline(context)
    except BaseException:
        writer.close()
        if resume is None:
            store.discard_run(run_id)
        raise
    pipeline.bus = bus
    budget = budget_usd if budget_usd is not None else config.budget_usd
    _attach_budget(pipeline, budget, benchmark.models(config), _spent(store, run_id) if resume else 0.0)
    bus.publish(RunStarted(run_id, benchmark.name, config.record(), resume is not None, len(jobs)))
    resume_command = f"{benchmark.command} --resume {run_id}"
    status, message, seconds = execute(pipeline, jobs, writer, resume_command, on_notice)
    summary = benchmark.score(store, run_id, config, data, jobs)
    outcome = finish(store, run_id, status, message, previous_wall + seconds, summary, resume_command)
    bus.publish(RunEnded(run_id, benchmark.name, outcome.status, outcome.summary, outcome.message))
    return outcome


def run_to_resume(store: Store, ref: str, benchmark: Benchmark) -> Run:
    run = store.find_run(ref)
    if run.benchmark != benchmark.name:
        raise UserError(f"run {run.id} is a {run.benchmark} run; resume it with its own command")
    if run.status == COMPLETED:
        raise UserError(f"run {run.id} is already completed; nothing to resume")
    return run


def _attach_budget(
    pipeline: JobRunner, budget_usd: float | None, labels: dict[str, str | None], spent_usd: float
) -> None:
    """Give the pipeline a budget meter; every paid model needs a price (nothing is guessed)."""
    if budget_usd is None:
        return
    prices = load_prices()
    role_prices = {}
    for role, label in labels.items():
        model = next((m for m in pipeline.models if m.label == label), None)
        if label is None or model is None or not model.capabilities.priced:
            continue
        price = price_for(label, prices)
        if price is None:
            raise UserError(
                f"--budget-usd needs a price for {label}: add it to a price table "
                "(MEDOPS_PRICES=FILE; see src/medops/models/prices.yaml)"
            )
        role_prices[role] = price
    pipeline.budget = BudgetMeter(budget_usd, role_prices, spent_usd)


def _spent(store: Store, run_id: int) -> float:
    run = store.find_run(str(run_id))
    return run_cost(run, load_prices())["total_usd"] if run.summary else 0.0


def execute(
    pipeline: JobRunner, jobs: list[Job], writer: StoreWriter, resume_hint: str, on_notice: Callable[[str], None] | None
) -> tuple[str, str | None, float]:
    """Run the pipeline to the end, a stop or a fatal error; (status, message, seconds)."""
    started = time.monotonic()
    status, message = COMPLETED, None
    try:
        asyncio.run(_drive(pipeline, jobs, on_notice))
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
        summary["failed_by_cause"] = failure_causes(queries.failed_call_errors(store, run_id))
        by_role = ", ".join(f"{role}: {u['failed']}" for role, u in summary.get("usage", {}).items() if u["failed"])
        causes = ", ".join(f"{cause} {n}" for cause, n in summary["failed_by_cause"].items())
        plural = failed != 1
        note = (
            f"{failed} call{'s' if plural else ''} failed for good ({by_role}), by cause: {causes}, and "
            f"{'are' if plural else 'is'} left "
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


# Why a call failed for good, from its stored error: the first pattern that matches names the cause.
_CAUSES = (
    (r"PHI in the request", "PHI block"),
    (r"PHI detection is unavailable", "PHI detection unavailable"),
    (r"refused before sending", "refused before sending"),
    (
        r"Name or service not known|nodename nor servname|name resolution|getaddrinfo|No address associated"
        r"|Could not resolve|Name does not resolve",
        "DNS error",
    ),
    (r"[Cc]onnection refused|Connect call failed", "connection refused"),
    (r"connection error", "connection error"),
    (r"timed out", "timeout"),
    (r"HTTP (\d{3})", r"HTTP \1"),
    (r"no message content", "no content in the reply"),
    (r"unreadable response body", "unreadable response"),
    (r"unreadable grader reply", "unreadable grader reply"),
    (r"no single verdict", "no verdict in a grouped reply"),
)


def failure_cause(error: str) -> str:
    """``"DNS error"``, ``"PHI block"``, ``"HTTP 503"``, ...: a failed call's cause, for counting."""
    for pattern, cause in _CAUSES:
        if found := re.search(pattern, error):
            return found.expand(cause)
    return error.removeprefix("grader call failed: ").split(":")[0].strip()[:60] or "unknown"


def failure_causes(errors: list[str]) -> dict[str, int]:
    """Failed calls counted by cause, the most frequent first."""
    return dict(Counter(failure_cause(e) for e in errors).most_common())


async def _drive(pipeline: JobRunner, jobs: list[Job], on_notice: Callable[[str], None] | None) -> None:
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

    # Only the main thread may take signals: a run started from a worker thread (a web server, a
    # notebook's executor) is stopped by its caller instead.
    signals = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
    for sig in signals:
        loop.add_signal_handler(sig, on_signal)
    try:
        await pipeline.run(jobs)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        for model in {id(m): m for m in pipeline.models}.values():
            await model.aclose()
