"""A stored run's per-item results, rebuilt from the store for comparison and gating."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from medops.evaluation.lifecycle import recorded
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


def export_rows(store: Store, ref: str) -> list[dict[str, Any]]:
    """One flat row per scored unit of a run (a criterion, an exam answer), from the store only."""
    run = store.find_run(ref)
    kind = benchmark(run.benchmark)
    found = recorded(kind, store, run)
    return kind.export_rows(store, run, found.config, found.data)


def report_items(store: Store, run: Run) -> dict[str, Any]:
    """What a report shows of a run's items (examples with verdicts, wrong exam answers)."""
    kind = benchmark(run.benchmark)
    found = recorded(kind, store, run)
    return kind.report_items(store, run, found.config, found.data)


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
