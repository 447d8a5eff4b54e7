"""Runs: configure, evaluate, resume, read, compare, gate, report and export (what the CLI calls)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

from medops.audit import record
from medops.evaluation.config import HealthBenchConfig, McqaConfig
from medops.evaluation.engine import Counters
from medops.evaluation.lifecycle import RunOutcome
from medops.evaluation.registry import benchmark_for
from medops.evaluation.results import export_rows, run_document
from medops.evaluation.run import evaluate as _evaluate
from medops.evaluation.settings import exam_config as _exam_config
from medops.evaluation.settings import healthbench_config as _healthbench_config
from medops.evaluation.subscribers import run_subscribers
from medops.evaluation.variants import VARIANTS
from medops.events import EventBus
from medops.ops.compare import compare_runs
from medops.ops.gate import Rule, Verdict, evaluate_gate, load_policy
from medops.reports.export import render_rows
from medops.reports.report import build_report
from medops.review.bias import run_bias
from medops.review.calibrated import calibrated
from medops.review.grader_calibration import run_grader_calibration
from medops.store.repository import Store, effective_status

StoreRef = str | Path | Store | None
Notice = Callable[[str], None]

DEMO_GRADER = "local:smollm2"


class RunNotice(UserWarning):
    """What a user should know about a run (its settings, why it is stopping): every front shows it.
    ``evaluate`` and ``resume`` hand each to ``on_notice``, or warn with this class without one."""


def open_store(db: StoreRef = None, *, create: bool = True) -> Store:
    """An open store: ``db`` as a path or URL (``MEDOPS_DB`` or ``./medops.db`` when None);
    ``create=False`` (every reader below): a missing store is a UserError, never created."""
    return db if isinstance(db, Store) else Store.open(str(db) if db is not None else None, create=create)


def healthbench_config(*, explicit: Collection[str] | None = None, **options: Any) -> HealthBenchConfig:
    """Settings of a HealthBench-format run; keywords are the CLI's flags in snake case
    (``model_base_url=`` for ``--model-base-url``). ``explicit``: the options the user chose, which a
    ``preset`` never overrides (default: every option given)."""
    return _healthbench_config(options, explicit=options.keys() if explicit is None else explicit)


def meta_eval_config(*, explicit: Collection[str] | None = None, **options: Any) -> HealthBenchConfig:
    """Settings of a meta-evaluation (a grader against physicians)."""
    chosen = options.keys() if explicit is None else explicit
    return _healthbench_config(options, explicit=chosen, benchmark="meta-eval")


def exam_config(**options: Any) -> McqaConfig:
    """Settings of an exam run (``task=``, ``data=``, ``model=``, ``style=``, ...)."""
    return _exam_config(options)


def config_notes(config: HealthBenchConfig | McqaConfig) -> list[str]:
    """What a user should know before a run with these settings starts; ``evaluate`` emits them."""
    if not isinstance(config, HealthBenchConfig):
        return []
    notes = []
    if config.preset and config.grader_template_source == "medops-default":
        notes.append(
            f"note: --preset {config.preset} keeps medops's grader template; give "
            "--grader-template FILE holding simple-evals' GRADER_TEMPLATE for the reference's grader "
            "prompts byte for byte."
        )
    variant = VARIANTS.get(config.data)
    if variant is not None and str(config.grader) != variant.grader:
        notes.append(
            f"note: the reference grades {variant.name} with {variant.grader} (reasoning effort "
            f"{variant.grader_reasoning_effort}) and simple-evals' GRADER_TEMPLATE; scores from another grader are "
            f"not comparable with published ones. Length adjustment: center {config.length_center} chars, "
            f"{config.length_penalty} per 500 chars."
        )
    if str(config.grader) == DEMO_GRADER and not benchmark_for(config).measures_grader:
        notes.append(
            f"note: {DEMO_GRADER} is a 135M-parameter demo grader, not a valid judge: its "
            "scores check the plumbing and say nothing about the model. Use a strong grader (or one you have "
            "validated with `medops meta-eval`) for real evaluations."
        )
    return notes


def _notifier(on_notice: Notice | None) -> Notice:
    if on_notice is not None:
        return on_notice
    return lambda message: warnings.warn(message, RunNotice, stacklevel=2)


def evaluate(
    config: HealthBenchConfig | McqaConfig,
    *,
    db: StoreRef = None,
    name: str | None = None,
    subscribers: Iterable[object] = (),
    phi_policy: str | None = None,
    on_progress: Callable[[Counters], None] | None = None,
    on_notice: Notice | None = None,
) -> RunOutcome:
    """Run an evaluation to its end and record it. ``subscribers`` receive the run's events
    (``medops.events``): they may log, audit, or rewrite and refuse calls. Every run also gets the
    PHI guard (``phi_policy``: redact, block or allow for every endpoint; None: ``MEDOPS_PHI_POLICY``,
    else redact external endpoints and allow internal ones) and the audit trail. The settings'
    notes (``config_notes``) and the run's notices go to ``on_notice``, else warn (``RunNotice``)."""
    notify = _notifier(on_notice)
    for note in config_notes(config):
        notify(note)
    store = open_store(db)
    bus = EventBus(run_subscribers(store, subscribers, phi_policy=phi_policy))
    return _evaluate(config, store, name=name, bus=bus, on_progress=on_progress, on_notice=notify)


def resume(
    run_ref: str,
    *,
    db: StoreRef = None,
    budget_usd: float | None = None,
    subscribers: Iterable[object] = (),
    phi_policy: str | None = None,
    on_progress: Callable[[Counters], None] | None = None,
    on_notice: Notice | None = None,
    benchmarks: Collection[str] | None = None,
) -> RunOutcome:
    """Continue an interrupted or incomplete run: only the calls that failed or never ran are made
    (the PHI policy is chosen anew, as for ``evaluate``). ``benchmarks``: refuse a run of any other
    benchmark (a command resumes only its own runs)."""
    store = open_store(db)
    return _evaluate(
        None,
        store,
        resume=run_ref,
        kinds=tuple(benchmarks) if benchmarks is not None else None,
        budget_usd=budget_usd,
        bus=EventBus(run_subscribers(store, subscribers, phi_policy=phi_policy)),
        on_progress=on_progress,
        on_notice=_notifier(on_notice),
    )


def runs(db: StoreRef = None) -> list[dict[str, Any]]:
    """Every run, oldest first: id, name, benchmark, status, dataset, model, grader, score,
    created_at, wall_seconds."""
    return [
        {
            "run_id": run.id,
            "name": run.name,
            "benchmark": run.benchmark,
            "status": effective_status(run),
            "dataset": dataset.name,
            "model": run.model,
            "grader": run.grader,
            "score": (run.summary or {}).get("score"),
            "created_at": run.created_at.isoformat(),
            "wall_seconds": run.wall_seconds,
        }
        for run, dataset in open_store(db, create=False).list_runs()
    ]


def run(run_ref: str, *, db: StoreRef = None) -> dict[str, Any]:
    """One run's document (what ``medops runs show --json`` prints); with physician labels of the run
    (``medops review``), ``calibrated``: the physician-anchored score and its 95% interval,
    ``bias``: where the grader departs from the physicians (``medops.review.bias``), and with P(met)
    verdicts ``calibration`` against them (``medops.review.grader_calibration``)."""
    store = open_store(db, create=False)
    document = run_document(store, run_ref)
    found = store.find_run(run_ref)
    anchored = calibrated(store, found)
    if anchored is not None:
        document["calibrated"] = anchored
    departures = run_bias(store, found)
    if departures is not None:
        document["bias"] = departures
    grader_calibration = run_grader_calibration(store, found)
    if grader_calibration is not None:  # P(met) against the physicians (--grader-verdict logprob)
        document.update(grader_calibration)
    return document


def compare(
    baseline: str,
    candidate: str,
    *,
    db: StoreRef = None,
    allow_partial: bool = False,
    seed: int = 0,
    metrics: Collection[str] | None = None,
) -> dict[str, Any]:
    """The paired comparison of two runs (what ``medops compare --json`` prints)."""
    store = open_store(db, create=False)
    return compare_runs(store, baseline, candidate, allow_partial=allow_partial, seed=seed, metrics=metrics)


def gate(
    run_ref: str,
    rules: list[Rule] | str | Path,
    *,
    db: StoreRef = None,
    baseline: str | None = None,
    seed: int = 0,
    actor: str | None = None,
) -> list[Verdict]:
    """The gate's verdicts, the ``complete`` rule first; ``rules`` is a list or a policy YAML file.
    The gate passes when every verdict passed. The decision (each rule and its outcome) goes to
    the audit trail, by ``actor`` (``medops.audit.actor()``: the OS user unless a token id is given)."""
    store = open_store(db, create=False)
    chosen = load_policy(Path(rules)) if isinstance(rules, str | Path) else rules
    verdicts = evaluate_gate(store, run_ref, chosen, baseline=baseline, seed=seed)
    run_id = store.find_run(run_ref).id
    details = {
        "run_id": run_id,
        "baseline_run_id": store.find_run(baseline).id if baseline is not None else None,
        "policy_file": Path(rules).name if isinstance(rules, str | Path) else None,
        "passed": all(v.passed for v in verdicts),
        "rules": [{"rule": v.rule, "passed": v.passed, "detail": v.detail} for v in verdicts],
    }
    record(store, "gate.decision", f"run:{run_id}", details, actor=actor)
    return verdicts


def report(
    run_ref: str,
    *,
    db: StoreRef = None,
    vs: str | None = None,
    fmt: str = "html",
    destination: str | Path | None = None,
    actor: str | None = None,
) -> str:
    """A self-contained HTML report (or Markdown with ``fmt="md"``), read from the store only.
    Recorded in the audit trail (``destination``: the file it is written to, by name only)."""
    store = open_store(db, create=False)
    text = build_report(store, run_ref, vs=vs, fmt=fmt)
    run_id = store.find_run(run_ref).id
    details = {
        "run_id": run_id,
        "vs_run_id": store.find_run(vs).id if vs is not None else None,
        "format": fmt,
        "file": Path(destination).name if destination is not None else None,
        "bytes": len(text.encode()),
    }
    record(store, "run.report", f"run:{run_id}", details, actor=actor)
    return text


def export(
    run_ref: str,
    *,
    db: StoreRef = None,
    fmt: str | None = None,
    destination: str | Path | None = None,
    actor: str | None = None,
) -> list[dict[str, Any]] | str:
    """A run's rows (a criterion or an exam answer each); as JSONL or CSV text when ``fmt`` is given.
    Recorded in the audit trail (``destination``: the file it is written to, by name only)."""
    store = open_store(db, create=False)
    rows = export_rows(store, run_ref)
    run_id = store.find_run(run_ref).id
    details = {
        "run_id": run_id,
        "format": fmt,
        "rows": len(rows),
        "file": Path(destination).name if destination is not None else None,
    }
    record(store, "run.export", f"run:{run_id}", details, actor=actor)
    return rows if fmt is None else render_rows(rows, fmt)
