"""Canary evaluations: a fixed evaluation (a rubric set, or an exam with ``task``) re-run against
the live endpoint and compared with a baseline run by the same paired tests as ``medops compare``.

Each round is an ordinary run (cached, resumable, PHI guard and audit trail). Its comparison goes
to ``monitor_scores`` (source ``canary``): one row per compared metric, the new run's mean as the
value and the difference, interval, p-values and significance in ``details``. A round without a
baseline (the first) stores its headline score alone. The default baseline is the previous
completed canary run on the same data (same sha256) with the same model label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from medops.errors import UserError
from medops.evaluation.engine import Counters
from medops.evaluation.run import evaluate
from medops.evaluation.settings import exam_config, healthbench_config
from medops.evaluation.subscribers import run_subscribers
from medops.events import EventBus
from medops.models.targets import canary_target
from medops.ops.compare import compare_runs
from medops.store.repository import COMPLETED, Store, effective_status
from medops.store.schema import MonitorScore, Run
from medops.store.scores import add_scores

SOURCE = "canary"
HEADLINE = ("overall_score", "accuracy")


@dataclass
class CanaryOutcome:
    run_id: int
    status: str
    started: datetime
    finished: datetime
    baseline_run_id: int | None = None
    comparison: dict[str, Any] | None = None  # what ``medops compare --json`` prints
    dropped: list[str] = field(default_factory=list)  # metrics significantly worse than the baseline
    score: float | None = None
    exit_code: int = 0  # 1 a significant drop, 3 the run is incomplete, 2 a fatal endpoint error, 130 stopped
    message: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "score": self.score,
            "baseline_run_id": self.baseline_run_id,
            "dropped": self.dropped,
            "exit_code": self.exit_code,
            "message": self.message,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "comparison": self.comparison,
        }


def canary_run_ids(store: Store) -> set[int]:
    """Runs that canary rounds made (each stores at least one ``canary`` score row)."""
    with store.session() as s:
        return {
            int(run_id)
            for run_id in s.scalars(
                select(MonitorScore.run_id).where(MonitorScore.source == SOURCE, MonitorScore.run_id.is_not(None))
            )
        }


def default_baseline(store: Store, run_id: int) -> int | None:
    """The previous completed canary run on the same data (sha256) with the same model label."""
    new = store.find_run(str(run_id))
    sha = store.dataset(new.dataset_id).sha256
    earlier = sorted((i for i in canary_run_ids(store) if i < run_id), reverse=True)
    for candidate_id in earlier:
        with store.session() as s:
            run = s.get(Run, candidate_id)
        if run is None or run.benchmark != new.benchmark or run.model != new.model:
            continue
        if effective_status(run) != COMPLETED or store.dataset(run.dataset_id).sha256 != sha:
            continue
        return run.id
    return None


def canary_config(
    *,
    data: str,
    model: str,
    task: str | None = None,
    grader: str | None = None,
    model_base_url: str | None = None,
    model_api_key_env: str | None = None,
    grader_base_url: str | None = None,
    grader_api_key_env: str | None = None,
    seed: int = 0,
    run_options: dict[str, Any] | None = None,
) -> Any:
    """The run settings of one round: an exam when ``task`` is given, else a rubric set (``grader`` needed).
    The model is the canary target (``models.targets``) the round evaluates."""
    target = canary_target(model, model_base_url, model_api_key_env)
    common = {"data": data, **target.model_options()}
    if task is not None:
        return exam_config({**common, "task": task, "seed": seed, **(run_options or {})})
    if not grader:
        raise UserError("--grader is required for a rubric set (or give --task for an exam)")
    options = {
        **common,
        "grader": grader,
        "grader_base_url": grader_base_url,
        "grader_api_key_env": grader_api_key_env,
        "seed": seed,
        **(run_options or {}),
    }
    return healthbench_config(options, explicit=[k for k, v in options.items() if v is not None])


def run_canary(
    store: Store,
    config: Any,
    *,
    baseline: str | None = None,
    seed: int = 0,
    phi_policy: str | None = None,
    subscribers: Iterable[object] = (),
    on_progress: Callable[[Counters], None] | None = None,
) -> CanaryOutcome:
    """One round: run ``config``, compare it with ``baseline`` (default: the previous canary run),
    store the score rows. The exit code says whether cron should alert."""
    if baseline is not None:
        store.find_run(baseline)  # an unknown baseline is refused before anything is spent
    started = datetime.now(timezone.utc)
    bus = EventBus(run_subscribers(store, subscribers, phi_policy=phi_policy))
    result = evaluate(config, store, bus=bus, on_progress=on_progress)
    finished = datetime.now(timezone.utc)
    summary = result.summary or {}
    outcome = CanaryOutcome(
        result.run_id, result.status, started, finished, score=summary.get("score"), message=result.message
    )
    base_details = {"run_status": result.status}
    headline = next((name for name in HEADLINE if name in (summary.get("metrics") or {})), HEADLINE[0])
    if result.status != COMPLETED:
        outcome.exit_code = result.exit_code or 3
        outcome.rows = [_row(outcome, headline, outcome.score, summary.get("n_examples") or 0, base_details)]
        add_scores(store, outcome.rows)
        return outcome
    baseline_id = store.find_run(baseline).id if baseline is not None else default_baseline(store, result.run_id)
    outcome.baseline_run_id = baseline_id
    if baseline_id is None:
        outcome.message = "no baseline yet: this run is the baseline of the next round"
        n = summary.get("n_examples") or summary.get("n_items") or 0
        outcome.rows = [_row(outcome, headline, outcome.score, n, {**base_details, "baseline_run_id": None})]
        add_scores(store, outcome.rows)
        return outcome
    report = compare_runs(store, str(baseline_id), str(result.run_id), seed=seed)
    outcome.comparison = report
    for metric, r in report["metrics"].items():
        if r["significant"] and r["difference"] < 0:
            outcome.dropped.append(metric)
        details = {
            **base_details,
            "baseline_run_id": baseline_id,
            "mean_baseline": r["mean_a"],
            "difference": r["difference"],
            "ci95_low": r["ci95_low"],
            "ci95_high": r["ci95_high"],
            "p_value": r["p_value"],
            "p_holm": r["p_holm"],
            "significant": r["significant"],
            "test": r["test"],
        }
        outcome.rows.append(_row(outcome, metric, r["mean_b"], r["n"], details))
    add_scores(store, outcome.rows)
    outcome.exit_code = 1 if outcome.dropped else 0
    if outcome.dropped:
        outcome.message = f"significant drop against run {baseline_id}: {', '.join(outcome.dropped)}"
    return outcome


def _row(outcome: CanaryOutcome, metric: str, value: float | None, n: int, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": SOURCE,
        "window_start": outcome.started,
        "window_end": outcome.finished,
        "tag": "all",
        "metric": metric,
        "value": value,
        "n": int(n),
        "run_id": outcome.run_id,
        "details": details,
    }
