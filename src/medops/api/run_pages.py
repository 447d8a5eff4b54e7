"""The dashboard's run pages as plain data: filtered runs, a run with intervals and the charts its
benchmark declares, comparisons, gate history and datasets."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from medops.api.examples import run_summary
from medops.api.formatting import interval, iso, moment
from medops.api.runs import StoreRef, compare, open_store, run, runs
from medops.audit.trail import events as trail_events
from medops.evaluation.records import Bars, Histogram, Reliability
from medops.evaluation.results import presentation, sample_records
from medops.reports.plots import bars, counterfactual_chart, histogram, reliability
from medops.store.repository import effective_status


def runs_filtered(
    db: StoreRef = None,
    *,
    benchmark: str | None = None,
    model: str | None = None,
    dataset: str | None = None,
    status: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    search: str | None = None,
) -> list[dict[str, Any]]:
    """``runs`` newest first, narrowed: exact benchmark / model / dataset / status, created in
    ``[since, until]`` (dates or ISO times), and ``search`` (case-insensitive) in the run's id,
    name, benchmark, dataset, model or grader."""
    start, end = moment(since), moment(until, end=True)
    needle = (search or "").strip().casefold()
    chosen = []
    for row in reversed(runs(db)):
        created = datetime.fromisoformat(row["created_at"])  # aware: the store reads back UTC
        if benchmark and row["benchmark"] != benchmark:
            continue
        if model and row["model"] != model:
            continue
        if dataset and row["dataset"] != dataset:
            continue
        if status and row["status"] != status:
            continue
        if (start and created < start) or (end and created >= end):
            continue
        fields = (str(row["run_id"]), row["name"], row["benchmark"], row["dataset"], row["model"], row["grader"])
        if needle and not any(needle in (f or "").casefold() for f in fields):
            continue
        chosen.append(row)
    return chosen


def run_detail(run_ref: str, *, db: StoreRef = None) -> dict[str, Any]:
    """A run for the dashboard: its document (``run``), each metric with a 95% interval (Wilson
    for exam accuracies, mean ± 1.96 bootstrap std otherwise), the charts (SVG) its benchmark
    declares, and ``unit``, what its items are called. The charts' text is escaped by the plot helpers.
    With physician labels, the document has ``calibrated`` and ``bias`` (``run``)."""
    store = open_store(db)
    document = run(run_ref, db=store)
    metrics = []
    summary_metrics = document.get("metrics") or (document.get("summary") or {}).get("metrics") or {}
    for name, m in summary_metrics.items():
        if not isinstance(m, dict):
            continue
        low, high = interval(m)
        metrics.append(
            {
                "name": name,
                "mean": m.get("mean"),
                "ci95_low": low,
                "ci95_high": high,
                "bootstrap_std": m.get("bootstrap_std"),
                "n": m.get("n_samples"),
            }
        )
    recorded = store.find_run(run_ref)
    found = presentation(recorded)
    charts: list[str] = []
    prepared = run_summary(store, recorded)  # a finished run's histogram values, prepared once
    values = iter(prepared["histograms"]) if prepared is not None else None
    for view in found.views:
        if isinstance(view, Bars):
            charts.append(bars(view.title, found.group(view.group).rows(summary_metrics)))
        elif isinstance(view, Histogram):
            shown = next(values) if values is not None else view.values(sample_records(store, recorded))
            charts.append(histogram(view.title, shown))
        elif isinstance(view, Reliability):
            charts.append(reliability(view.title, *view.of(recorded.summary or {})))
    charts.append(counterfactual_chart(document.get("counterfactual")))  # --counterfactual runs
    return {"run": document, "metrics": metrics, "charts": [c for c in charts if c], "unit": found.headline.unit}


def compare_detail(baseline: str, candidate: str, *, db: StoreRef = None, seed: int = 0) -> dict[str, Any]:
    """``compare`` plus the report's chart of the paired differences (candidate - baseline, 95% CI)."""
    report = compare(baseline, candidate, db=db, seed=seed)
    rows = [(name, r["difference"], (r["ci95_high"] - r["ci95_low"]) / 2) for name, r in report["metrics"].items()]
    chart = bars("Paired difference, candidate - baseline (95% CI)", rows, lo=-1.0, hi=1.0, zero_line=True)
    return {"comparison": report, "chart": chart}


def gate_history(*, db: StoreRef = None, run_ref: str | None = None) -> list[dict[str, Any]]:
    """Every recorded gate decision, newest first (from the audit trail's ``gate.decision`` events):
    when, by whom, the run and baseline, passed, and each rule with its outcome."""
    store = open_store(db)
    wanted = store.find_run(run_ref).id if run_ref is not None else None
    names = {row["run_id"]: row["name"] for row in runs(store)}
    history = []
    for event in reversed(trail_events(store)):
        if event["action"] != "gate.decision":
            continue
        d = event["details"]
        if wanted is not None and d.get("run_id") != wanted:
            continue
        history.append(
            {
                "seq": event["seq"],
                "time": iso(event["time"]),
                "actor": event["actor"],
                "run_id": d.get("run_id"),
                "run_name": names.get(d.get("run_id")),
                "baseline_run_id": d.get("baseline_run_id"),
                "baseline_name": names.get(d.get("baseline_run_id")),
                "policy_file": d.get("policy_file"),
                "passed": d.get("passed"),
                "rules": d.get("rules") or [],
            }
        )
    return history


def datasets(*, db: StoreRef = None) -> list[dict[str, Any]]:
    """Every dataset content (by sha256) runs used: its names and files, size, rows, and the runs."""
    store = open_store(db)
    found: dict[str, dict[str, Any]] = {}
    for run_row, dataset in store.list_runs():
        entry = found.setdefault(
            dataset.sha256,
            {
                "sha256": dataset.sha256,
                "names": [],
                "files": [],
                "n_rows": dataset.n_examples,
                "size_bytes": dataset.size_bytes,
                "first_seen": iso(dataset.created_at),
                "runs": [],
            },
        )
        if dataset.name not in entry["names"]:
            entry["names"].append(dataset.name)
        if Path(dataset.path).name not in entry["files"]:
            entry["files"].append(Path(dataset.path).name)
        entry["runs"].append(
            {
                "run_id": run_row.id,
                "name": run_row.name,
                "benchmark": run_row.benchmark,
                "status": effective_status(run_row),
                "model": run_row.model,
                "score": (run_row.summary or {}).get("score"),
                "created_at": iso(run_row.created_at),
            }
        )
    return sorted(found.values(), key=lambda d: d["runs"][-1]["run_id"], reverse=True)
