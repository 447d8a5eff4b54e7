"""What a run cost: recorded tokens times a price table (USD per million input / output tokens)."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medops.errors import UserError
from medops.store.schema import Run


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0)
    output: float = Field(ge=0)


def load_prices(path: str | Path | None = None) -> dict[str, Price]:
    """The packaged table, overridden entry by entry by ``path`` or ``MEDOPS_PRICES``."""
    table = _read(files("medops.ops").joinpath("prices.yaml").read_text("utf-8"), "prices.yaml")
    extra = path or os.environ.get("MEDOPS_PRICES")
    if extra:
        try:
            text = Path(extra).read_text("utf-8")
        except OSError as exc:
            raise UserError(f"{extra}: cannot read price table ({exc})") from None
        table.update(_read(text, str(extra)))
    return table


def _read(text: str, where: str) -> dict[str, Price]:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise UserError(f"{where}{f':{line + 1}' if line is not None else ''}: invalid YAML") from None
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a mapping of model spec -> {{input, output}}")
    prices = {}
    for key, value in raw.items():
        try:
            prices[str(key)] = Price.model_validate(value)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            field = ".".join(str(p) for p in error["loc"])
            raise UserError(f"{where}: {key}{'.' + field if field else ''}: {error['msg']}") from None
    return prices


def price_for(label: str | None, prices: dict[str, Price]) -> Price | None:
    if not label or label in ("given", "ideal"):
        return Price(input=0, output=0)
    if label.startswith(("local:", "hf:")):
        return prices.get(label, Price(input=0, output=0))
    return prices.get(label) or prices.get(label.split(":", 1)[-1])


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
