"""``medops compare``: two runs on the items they share, metric by metric.

Holm's correction runs over the metrics in the report, so the family is what the caller asks
for: ``medops compare`` asks for every metric and tag; ``medops gate`` only for the metrics
its ``max_drop`` rules name (a real overall drop must not be diluted by dozens of breakdowns
nobody gates on).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from medops.errors import UserError
from medops.evaluation.results import RunResults, load_results
from medops.scoring.paired import compare_paired, holm
from medops.store.repository import Store

ALPHA = 0.05


def compare_runs(
    store: Store,
    ref_a: str,
    ref_b: str,
    *,
    allow_partial: bool = False,
    seed: int = 0,
    metrics: Collection[str] | None = None,
) -> dict[str, Any]:
    """Every shared metric, or only ``metrics``; Holm runs over exactly the metrics compared."""
    a0, b0 = store.find_run(ref_a), store.find_run(ref_b)
    if a0.benchmark != b0.benchmark:
        raise UserError(f"run {a0.id} is {a0.benchmark} and run {b0.id} is {b0.benchmark}: nothing to pair")
    same_data = store.dataset(a0.dataset_id).sha256 == store.dataset(b0.dataset_id).sha256
    if not same_data and not allow_partial:
        raise UserError(
            f"runs {a0.id} and {b0.id} were made on different datasets (sha256 differs); "
            "--allow-partial pairs them on the items they share (by id)"
        )
    a = load_results(store, ref_a, by_identity=not same_data)
    b = load_results(store, ref_b, by_identity=not same_data)
    return paired_report(a, b, seed=seed, metrics=metrics)


def paired_report(
    a: RunResults, b: RunResults, *, seed: int = 0, metrics: Collection[str] | None = None
) -> dict[str, Any]:
    shared = sorted(set(a.items) & set(b.items))  # a fixed order: the permutation test is seeded
    if not shared:
        raise UserError(f"runs {a.run.id} and {b.run.id} share no scored items")
    names = sorted(
        {m for key in shared for m in a.items[key]} & {m for key in shared for m in b.items[key]},
        key=lambda n: (n not in ("overall_score", "accuracy"), n),
    )
    if metrics is not None:
        names = [n for n in names if n in metrics]
    results = {}
    for name in names:
        pairs = [(a.items[k][name], b.items[k][name]) for k in shared if name in a.items[k] and name in b.items[k]]
        if pairs:
            results[name] = compare_paired(
                [p[0] for p in pairs], [p[1] for p in pairs], seed=seed, binary=a.binary
            ).to_dict()
    adjusted = holm({name: r["p_value"] for name, r in results.items()})
    for name, r in results.items():
        r["p_holm"] = adjusted[name]
        r["significant"] = adjusted[name] < ALPHA
    return {
        "run_a": {"run_id": a.run.id, "name": a.run.name, "model": a.run.model, "n_items": len(a.items)},
        "run_b": {"run_id": b.run.id, "name": b.run.name, "model": b.run.model, "n_items": len(b.items)},
        "benchmark": a.run.benchmark,
        "n_shared": len(shared),
        "seed": seed,
        "alpha": ALPHA,
        "metrics": results,
    }
