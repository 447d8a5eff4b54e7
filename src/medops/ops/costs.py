"""What a run cost: its recorded tokens times the price table."""

from __future__ import annotations

from typing import Any

from medops.models.pricing import Price, price_for
from medops.store.schema import Run


def run_cost(run: Run, prices: dict[str, Price]) -> dict[str, Any]:
    """Cost by role and in total, and per scored example; unpriced models are named, not guessed."""
    usage = (run.summary or {}).get("usage", {})
    labels = {"model": run.model, "grader": run.grader}
    by_role, unpriced = {}, []
    for role, counts in usage.items():
        price = price_for(labels.get(role), prices)
        if price is None:
            unpriced.append(labels.get(role))
            continue
        by_role[role] = (counts["prompt_tokens"] * price.input + counts["completion_tokens"] * price.output) / 1e6
    total = sum(by_role.values())
    n = (run.summary or {}).get("n_examples") or 0
    return {
        "usd": by_role,
        "total_usd": total,
        "per_example_usd": total / n if n else None,
        "unpriced": sorted({u for u in unpriced if u}),
    }
