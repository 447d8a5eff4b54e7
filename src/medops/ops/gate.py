"""Release gates: rules over a run (and optionally a baseline), for CI.

Policy YAML::

    rules:
      - {metric: overall_score, min: 0.45}
      - {metric: "theme:emergency_referrals", min: 0.6}
      - {max_ungraded_share: 0.02}
      - {max_cost_usd: 50}
      - {metric: overall_score, max_drop: 0.02}   # against --baseline; only a significant drop counts
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import func, select

from medops.errors import UserError
from medops.models.pricing import load_prices
from medops.ops.compare import compare_runs
from medops.ops.costs import run_cost
from medops.store.repository import Store
from medops.store.schema import Grade


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    metric: str | None = None
    min: float | None = None
    max_drop: float | None = Field(default=None, ge=0)
    max_ungraded_share: float | None = Field(default=None, ge=0, le=1)
    max_cost_usd: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        kinds = [k for k in ("min", "max_drop", "max_ungraded_share", "max_cost_usd") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("each rule sets exactly one of min, max_drop, max_ungraded_share, max_cost_usd")
        if kinds[0] in ("min", "max_drop") and not self.metric:
            raise ValueError(f"a {kinds[0]} rule needs a metric")
        return self

    def describe(self) -> str:
        if self.min is not None:
            return f"{self.metric} >= {self.min:g}"
        if self.max_drop is not None:
            return f"{self.metric} drops by at most {self.max_drop:g} (significant drops only)"
        if self.max_ungraded_share is not None:
            return f"ungraded share <= {self.max_ungraded_share:g}"
        return f"cost <= ${self.max_cost_usd:g}"


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule]


@dataclass(frozen=True)
class Verdict:
    rule: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def load_policy(path: Path) -> list[Rule]:
    try:
        raw = yaml.safe_load(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: cannot read policy ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"{path}{f':{mark.line + 1}' if mark else ''}: invalid YAML") from None
    try:
        return Policy.model_validate(raw).rules
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in error["loc"])
        raise UserError(f"{path}: {field}: {error['msg'].removeprefix('Value error, ')}") from None


def parse_flag_rules(mins: list[str], drops: list[str], max_ungraded: float | None) -> list[Rule]:
    rules = []
    for flag, values in (("min", mins), ("max_drop", drops)):
        for text in values:
            metric, eq, value = text.rpartition("=")
            try:
                rules.append(Rule(metric=metric, **{flag: float(value)}))
            except (ValueError, ValidationError):
                raise UserError(f"--{flag.replace('_', '-')} '{text}': expected METRIC=NUMBER") from None
            if not eq or not metric:
                raise UserError(f"--{flag.replace('_', '-')} '{text}': expected METRIC=NUMBER")
    if max_ungraded is not None:
        rules.append(Rule(max_ungraded_share=max_ungraded))
    return rules


def _ungraded_share(store: Store, run) -> tuple[float, str]:
    summary = run.summary or {}
    if run.benchmark == "mcqa":
        rate = summary.get("unparsed_rate") or 0.0
        return rate, f"{summary.get('n_unparsed', 0)} of {summary.get('n_examples', 0)} answers unparsed"
    with store.session() as s:
        total = s.scalar(select(func.count()).select_from(Grade).where(Grade.run_id == run.id)) or 0
        missing = (
            s.scalar(
                select(func.count()).select_from(Grade).where(Grade.run_id == run.id, Grade.criteria_met.is_(None))
            )
            or 0
        )
    return (missing / total if total else 0.0), f"{missing} of {total} criteria ungraded"


def evaluate_gate(
    store: Store, ref: str, rules: list[Rule], *, baseline: str | None = None, seed: int = 0
) -> list[Verdict]:
    run = store.find_run(ref)
    metrics = (run.summary or {}).get("metrics", {})
    comparison = None
    if any(r.max_drop is not None for r in rules):
        if baseline is None:
            raise UserError("max-drop rules need --baseline RUN")
        comparison = compare_runs(store, baseline, ref, seed=seed)["metrics"]
    verdicts = []
    for rule in rules:
        name = rule.describe()
        if rule.min is not None:
            stats = metrics.get(rule.metric)
            if stats is None:
                verdicts.append(Verdict(name, False, f"the run has no metric {rule.metric}"))
            else:
                verdicts.append(
                    Verdict(name, stats["mean"] >= rule.min, f"{stats['mean']:.4f} (n={stats['n_samples']})")
                )
        elif rule.max_drop is not None:
            result = (comparison or {}).get(rule.metric)
            if result is None:
                verdicts.append(Verdict(name, False, f"no shared items carry {rule.metric}"))
                continue
            drop = -result["difference"]
            failed = drop > rule.max_drop and result["significant"]
            verdicts.append(
                Verdict(
                    name,
                    not failed,
                    f"change {result['difference']:+.4f} "
                    f"(95% CI {result['ci95_low']:+.4f}..{result['ci95_high']:+.4f}, "
                    f"Holm p={result['p_holm']:.3g}{', significant' if result['significant'] else ''})",
                )
            )
        elif rule.max_ungraded_share is not None:
            share, detail = _ungraded_share(store, run)
            verdicts.append(Verdict(name, share <= rule.max_ungraded_share, f"{share:.4f} ({detail})"))
        else:
            cost = run_cost(run, load_prices())
            if cost["unpriced"]:
                verdicts.append(
                    Verdict(
                        name,
                        False,
                        f"no price for {', '.join(cost['unpriced'])} (add it to a "
                        "price table: --prices / MEDOPS_PRICES)",
                    )
                )
            else:
                verdicts.append(Verdict(name, cost["total_usd"] <= rule.max_cost_usd, f"${cost['total_usd']:.4f}"))
    return verdicts


def write_junit(path: Path, run_ref: str, verdicts: list[Verdict]) -> None:
    """One test case per rule, so CI systems show the gate natively."""
    suite = ElementTree.Element(
        "testsuite",
        name=f"medops gate {run_ref}",
        tests=str(len(verdicts)),
        failures=str(sum(not v.passed for v in verdicts)),
    )
    for verdict in verdicts:
        case = ElementTree.SubElement(suite, "testcase", classname="medops.gate", name=verdict.rule)
        if verdict.passed:
            ElementTree.SubElement(case, "system-out").text = verdict.detail
        else:
            ElementTree.SubElement(case, "failure", message=verdict.detail).text = verdict.detail
    Path(path).write_bytes(
        ElementTree.tostring(ElementTree.ElementTree(suite).getroot(), encoding="utf-8", xml_declaration=True)
    )
