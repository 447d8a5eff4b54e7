"""Model prices (USD per million input / output tokens), the budget meter that spends them, and
what a finished run cost (``run_cost``: below the store and evaluation, so both may use it)."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medops.errors import UserError
from medops.models.backends import BACKENDS


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0)
    output: float = Field(ge=0)


def load_prices(path: str | Path | None = None) -> dict[str, Price]:
    """The packaged table, overridden entry by entry by ``path`` or ``MEDOPS_PRICES``."""
    table = _read(files("medops.models").joinpath("prices.yaml").read_text("utf-8"), "prices.yaml")
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


def priced(label: str) -> bool:
    """Whether calls to the model a stored label (``backend:name``) names cost money by the price
    table; an unknown backend counts as priced, so its price is asked for, never assumed zero."""
    backend = BACKENDS.get(label.partition(":")[0])
    return backend is None or backend.capabilities.priced


def price_for(label: str | None, prices: dict[str, Price]) -> Price | None:
    if not label or label in ("given", "ideal"):
        return Price(input=0, output=0)
    if not priced(label):  # in-process: free unless the table prices it (e.g. GPU time)
        return prices.get(label, Price(input=0, output=0))
    return prices.get(label) or prices.get(label.split(":", 1)[-1])


class CostedRun(Protocol):
    """What ``run_cost`` reads of a run (a stored ``medops.store.schema.Run`` is one)."""

    @property
    def model(self) -> str | None: ...

    @property
    def grader(self) -> str | None: ...

    @property
    def summary(self) -> dict[str, Any] | None: ...


def run_cost(run: CostedRun, prices: dict[str, Price]) -> dict[str, Any]:
    """What a run cost: its recorded tokens times the price table. Cost by role and in total, and
    per scored example; unpriced models are named, not guessed."""
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


class BudgetMeter:
    """Stops new paid calls before spend plus the projected cost of the calls in flight would
    pass the budget. A call's cost is projected from the calls of its role so far (or, before
    any, from its prompt length at ~4 characters per token and its ``max_tokens``)."""

    def __init__(self, budget_usd: float, prices: dict[str, Price], spent_usd: float = 0.0):
        self.budget_usd, self.prices, self.spent_usd = budget_usd, prices, spent_usd
        self.in_flight_usd = 0.0
        self._calls: dict[str, int] = {}
        self._cost: dict[str, float] = {}

    def _projection(self, role: str, prompt_chars: int, max_tokens: int | None) -> float:
        if self._calls.get(role):
            return self._cost[role] / self._calls[role]
        price = self.prices[role]
        return (prompt_chars / 4 * price.input + (max_tokens or 1024) * price.output) / 1e6

    def admit(self, role: str, prompt_chars: int, max_tokens: int | None) -> float | None:
        """Reserve the projected cost of a call, or None when it would pass the budget."""
        projected = self._projection(role, prompt_chars, max_tokens)
        if self.spent_usd + self.in_flight_usd + projected > self.budget_usd:
            return None
        self.in_flight_usd += projected
        return projected

    def settle(self, role: str, projected: float, prompt_tokens: int, completion_tokens: int) -> None:
        price = self.prices[role]
        cost = (prompt_tokens * price.input + completion_tokens * price.output) / 1e6
        self.in_flight_usd -= projected
        self.spent_usd += cost
        self._calls[role] = self._calls.get(role, 0) + 1
        self._cost[role] = self._cost.get(role, 0.0) + cost
