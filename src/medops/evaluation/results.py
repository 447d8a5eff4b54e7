"""Reading a stored run back: per-item results (compare, gate), sample records and what its
benchmark declares views show (export, reports, the dashboard), and the run document."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from medops.evaluation.lifecycle import recorded
from medops.evaluation.records import Headline, MetricGroup, SampleRecord, View
from medops.evaluation.registry import BENCHMARKS, benchmark
from medops.models.pricing import load_prices, run_cost
from medops.store.repository import Store, effective_status
from medops.store.schema import Dataset, Run


@dataclass
class RunResults:
    run: Run
    dataset: Dataset
    binary: bool  # exam runs: right/wrong items
    # (item key, repeat) -> metric values; an item key is its position, or with
    # by_identity its id plus which occurrence of that id it is (ids may repeat)
    items: dict[tuple, dict[str, float]]


@dataclass(frozen=True)
class Presentation:
    headline: Headline
    views: tuple[View, ...]
    metric_groups: tuple[MetricGroup, ...]

    def group(self, name: str) -> MetricGroup:
        for group in self.metric_groups:
            if group.name == name:
                return group
        raise LookupError(f"no metric group '{name}' declared (metric_groups: {[g.name for g in self.metric_groups]})")


def _identity_keys(ids: list[str]) -> list[tuple[str, int]]:
    seen: Counter[str] = Counter()
    keys = []
    for item_id in ids:
        keys.append((item_id, seen[item_id]))
        seen[item_id] += 1
    return keys


def load_results(store: Store, ref: str, *, by_identity: bool = False) -> RunResults:
    """Per-item metric values of a run, from the store (its items and plan included)."""
    run = store.find_run(ref)
    kind = benchmark(run.benchmark)
    found = recorded(kind, store, run)
    results = kind.item_results(store, run, found.config, found.data, found.jobs)
    keys = _identity_keys(results.ids) if by_identity else None
    items = {((keys[i] if keys else i), r): values for (i, r), values in results.values.items()}
    return RunResults(run, found.dataset, results.binary, items)


def sample_records(store: Store, run: Run) -> list[SampleRecord]:
    """A run's sample records (one per answered item and repeat), from the store only: the one
    reader behind export, reports and the dashboard."""
    kind = benchmark(run.benchmark)
    found = recorded(kind, store, run)
    return kind.records(store, run, found.config, found.data)


def export_rows(store: Store, ref: str) -> list[dict[str, Any]]:
    """One flat row per scored unit of a run (a criterion, an exam answer), as its benchmark's
    export spec lays out its records."""
    run = store.find_run(ref)
    return benchmark(run.benchmark).export.rows(sample_records(store, run))


def presentation(run: Run) -> Presentation:
    """What a run's benchmark declares views show (headline, charts, sample lists, metric groups);
    nothing but a headline for runs that are not evaluations (``rl-train``)."""
    kind = BENCHMARKS.get(run.benchmark)
    if kind is None:
        return Presentation(Headline("examples"), (), ())
    return Presentation(kind.headline, kind.views, kind.metric_groups)


def run_document(store: Store, ref: str) -> dict[str, Any]:
    """What ``runs show --json`` prints: the benchmark's own document plus status, cost, the
    configuration (templates left out), version and timing. Runs that are not evaluations
    (``rl-train``) get their configuration and summary as stored."""
    run = store.find_run(ref)
    dataset = store.dataset(run.dataset_id)
    kind = BENCHMARKS.get(run.benchmark)
    if kind is None:
        return {
            "run_id": run.id,
            "name": run.name,
            "benchmark": run.benchmark,
            "status": effective_status(run),
            "model": run.model,
            "dataset": {"name": dataset.name, "path": dataset.path, "sha256": dataset.sha256},
            "config": run.config,
            "summary": run.summary,
            "error": run.error,
        }
    document = kind.document(run, dataset, kind.config_type.model_validate(run.config), run.summary or {})
    document.update(
        status=effective_status(run),
        cost=run_cost(run, load_prices()),
        config={k: v for k, v in run.config.items() if k != "grader_template"},
        medops_version=run.medops_version,
        created_at=run.created_at.isoformat(),
        error=run.error,
    )
    return document
