"""Start or resume any evaluation run: the benchmark is looked up, the one lifecycle runs it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medops.errors import UserError
from medops.evaluation.engine import Counters
from medops.evaluation.lifecycle import RunOutcome, run_benchmark
from medops.evaluation.registry import benchmark, benchmark_for
from medops.events import EventBus
from medops.store.repository import Store

__all__ = ["RunOutcome", "evaluate", "run_healthbench", "run_mcqa"]


def evaluate(
    config: Any | None,
    store: Store,
    *,
    name: str | None = None,
    resume: str | None = None,
    kinds: tuple[str, ...] | None = None,
    bus: EventBus | None = None,
    on_progress: Callable[[Counters], None] | None = None,
    on_notice: Callable[[str], None] | None = None,
    budget_usd: float | None = None,
) -> RunOutcome:
    """Run ``config`` to the end (or continue run ``resume``); ``kinds`` limits which benchmarks
    a resumed run may be (a command resumes only its own runs)."""
    if resume is not None:
        run = store.find_run(resume)
        if kinds is not None and run.benchmark not in kinds:
            raise UserError(f"run {run.id} is a {run.benchmark} run; resume it with its own command")
        chosen = benchmark(run.benchmark)
    elif config is None:
        raise ValueError("evaluate needs a config or a run to resume")
    else:
        chosen = benchmark_for(config)
    return run_benchmark(
        chosen,
        config,
        store,
        name=name,
        resume=resume,
        bus=bus,
        on_progress=on_progress,
        on_notice=on_notice,
        budget_usd=budget_usd,
    )


def run_healthbench(config: Any | None, store: Store, **options: Any) -> RunOutcome:
    """A HealthBench-format run or a meta-evaluation (``medops eval healthbench``, ``medops meta-eval``)."""
    return evaluate(config, store, kinds=("healthbench", "meta-eval"), **options)


def run_mcqa(config: Any | None, store: Store, **options: Any) -> RunOutcome:
    """An exam run (``medops eval mcqa``)."""
    return evaluate(config, store, kinds=("mcqa",), **options)
