"""Release gates: rules over a run (and optionally a baseline), for CI.

Policy YAML::

    rules:
      - {metric: overall_score, min: 0.45}
      - {metric: "theme:emergency_referrals", min: 0.6}
      - {max_ungraded_share: 0.02}
      - {max_cost_usd: 50, unpriced: pass}        # self-hosted models without a price pass, named
      - {metric: overall_score, max_drop: 0.02}   # against --baseline; only a significant drop counts
      - {max_failed_call_share: 0.01}             # lets an `incomplete` run through the `complete` rule
      - {metric: counterfactual.flip_rate, max: 0.05}   # `max` on any metric, beside `min`
      - {metric: counterfactual.sex, max_gap: 0.03}     # fails when the largest gap between two variants
                                                        # is larger and significant after Holm (docs/EQUITY.md)

The ``complete`` rule always comes first: a run that did not finish every call is not scored
on the same items as a finished one, so its numbers would pass or fail the other rules by
accident. ``max_drop`` significance is Holm-corrected over the ``max_drop`` metrics only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from xml.etree import ElementTree

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medops.errors import UserError
from medops.evaluation.registry import BENCHMARKS, benchmark
from medops.models.pricing import load_prices, run_cost
from medops.ops.compare import ALPHA, compare_runs
from medops.review.calibrated import calibrated
from medops.scoring.paired import holm
from medops.store.repository import COMPLETED, FAILED, INCOMPLETE, INTERRUPTED, RUNNING, Store, effective_status
from medops.store.schema import Run

COMPLETE = "complete"  # the rule's name in the output and in JUnit: a contract for CI
# the physician-anchored score (medops.review.calibrated): a `min` rule tests its interval's lower bound
CALIBRATED_SCORE = "calibrated_score"
COUNTERFACTUAL = "counterfactual."  # metrics read from the run's counterfactual block (--counterfactual)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    metric: str | None = None
    min: float | None = None
    max: float | None = None
    # a counterfactual attribute (``counterfactual.sex``): its largest gap between two variants
    max_gap: float | None = Field(default=None, ge=0)
    max_drop: float | None = Field(default=None, ge=0)
    max_ungraded_share: float | None = Field(default=None, ge=0, le=1)
    max_cost_usd: float | None = Field(default=None, ge=0)
    # with max_cost_usd: what a model without a price does to the rule (a self-hosted model has
    # none): fail it (the default: a cost is never guessed) or pass it, named in the detail
    unpriced: Literal["fail", "pass"] | None = None
    # not a rule of its own: it relaxes the `complete` rule for `incomplete` runs
    max_failed_call_share: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        kinds = [k for k in RULE_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"each rule sets exactly one of {', '.join(RULE_KINDS)}")
        if kinds[0] in ("min", "max", "max_drop", "max_gap") and not self.metric:
            raise ValueError(f"a {kinds[0]} rule needs a metric")
        if kinds[0] == "max_gap" and not self.metric.startswith(COUNTERFACTUAL):
            raise ValueError(f"a max_gap rule's metric is {COUNTERFACTUAL}ATTRIBUTE (e.g. {COUNTERFACTUAL}sex)")
        if self.unpriced is not None and kinds[0] != "max_cost_usd":
            raise ValueError("unpriced applies to a max_cost_usd rule only")
        return self

    def describe(self) -> str:
        if self.min is not None and self.metric == CALIBRATED_SCORE:
            return f"{self.metric} 95% lower bound >= {self.min:g}"
        if self.min is not None:
            return f"{self.metric} >= {self.min:g}"
        if self.max is not None:
            return f"{self.metric} <= {self.max:g}"
        if self.max_gap is not None:
            return f"{self.metric} largest gap <= {self.max_gap:g} (significant gaps only)"
        if self.max_drop is not None:
            return f"{self.metric} drops by at most {self.max_drop:g} (significant drops only)"
        if self.max_ungraded_share is not None:
            return f"ungraded share <= {self.max_ungraded_share:g}"
        if self.max_failed_call_share is not None:
            return f"failed-call share <= {self.max_failed_call_share:g}"
        return f"cost <= ${self.max_cost_usd:g}" + (" (unpriced models pass)" if self.unpriced == "pass" else "")


RULE_KINDS = ("min", "max", "max_gap", "max_drop", "max_ungraded_share", "max_cost_usd", "max_failed_call_share")


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


PolicyModel = TypeVar("PolicyModel", bound=BaseModel)


def read_policy(path: Path, model: type[PolicyModel]) -> PolicyModel:
    """A YAML policy file validated by ``model`` (the gate's, the monitor's): any problem is one
    UserError naming the file and the field (or the YAML line)."""
    try:
        raw = yaml.safe_load(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise UserError(f"{path}: cannot read policy ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"{path}{f':{mark.line + 1}' if mark else ''}: invalid YAML") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in error["loc"]) or "policy"
        message = str(error["msg"]).removeprefix("Value error, ").replace("\n", " ")
        raise UserError(f"{path}: {field}: {message}") from None


def load_policy(path: Path) -> list[Rule]:
    return read_policy(path, Policy).rules


def parse_flag_rules(
    mins: list[str],
    drops: list[str],
    max_ungraded: float | None,
    max_failed_calls: float | None = None,
    *,
    maxes: list[str] = (),
    max_gaps: list[str] = (),
) -> list[Rule]:
    rules = []
    for flag, values in (("min", mins), ("max", maxes), ("max_gap", max_gaps), ("max_drop", drops)):
        for text in values:
            metric, eq, value = text.rpartition("=")
            flag_name = f"--{flag.replace('_', '-')}"
            try:
                number = float(value)
            except ValueError:
                number = None
            if not eq or not metric or number is None:
                raise UserError(f"{flag_name} '{text}': expected METRIC=NUMBER")
            try:
                rules.append(Rule(metric=metric, **{flag: number}))
            except ValidationError as exc:
                message = str(exc.errors(include_url=False)[0]["msg"]).removeprefix("Value error, ")
                raise UserError(f"{flag_name} '{text}': {message}") from None
    if max_ungraded is not None:
        rules.append(Rule(max_ungraded_share=max_ungraded))
    if max_failed_calls is not None:
        rules.append(Rule(max_failed_call_share=max_failed_calls))
    return rules


def _ungraded_share(store: Store, run: Run) -> tuple[float, str]:
    return benchmark(run.benchmark).unscored_share(store, run)


def _resume_hint(run: Run) -> str:
    kind = BENCHMARKS.get(run.benchmark)
    if kind is None:
        return f"resume it with `--resume {run.id}` on the command that made it"
    return f"continue with `{kind.command} --resume {run.id}`"


def _failed_calls(summary: dict[str, Any]) -> str:
    """'3 of 120 calls failed (grader 3)': how many, and of which role."""
    by_role = ", ".join(
        f"{role} {usage['failed']}"
        for role, usage in (summary.get("usage") or {}).items()
        if isinstance(usage, dict) and usage.get("failed")
    )
    causes = ", ".join(f"{cause} {n}" for cause, n in (summary.get("failed_by_cause") or {}).items())
    return (
        f"{summary['n_failed_calls']} of {summary['n_calls_recorded']} calls failed for good"
        + (f" ({by_role})" if by_role else "")
        + (f", by cause: {causes}" if causes else "")
    )


def _completeness(run: Run, label: str, allowed_share: float | None) -> tuple[bool, str]:
    """Whether a run finished every call (or, when the policy allows it, nearly every call)."""
    status = effective_status(run)
    summary = run.summary or {}
    who = f"{label} run {run.id}"
    if status == COMPLETED:
        # Runs recorded before failed calls were counted carry no n_failed_calls: they pass
        # as they always did (their ungraded criteria still count in max_ungraded_share).
        return True, f"{who} completed"
    if status == RUNNING:
        return False, f"{who} is still running (pid {run.pid} on {run.hostname}); gate it when it has finished"
    if status == INTERRUPTED:
        return False, f"{who} was interrupted before every call was made; {_resume_hint(run)}"
    if status == FAILED:
        error = (run.error or "").strip()
        hint = "" if "--resume" in error else f"; {_resume_hint(run)}"
        return False, f"{who} failed{f': {error}' if error else ''}{hint}"
    if status != INCOMPLETE:
        return False, f"{who} has status '{status}', which the gate does not know; only completed runs pass"
    if not isinstance(summary.get("n_failed_calls"), int) or not isinstance(summary.get("n_calls_recorded"), int):
        return False, f"{who} is incomplete and its summary records no failed-call counts; {_resume_hint(run)}"
    failed, recorded = summary["n_failed_calls"], summary["n_calls_recorded"]
    detail = f"{who} is incomplete: {_failed_calls(summary)}"
    if recorded <= 0:
        return False, f"{detail}; no calls recorded, so no share to allow; {_resume_hint(run)}"
    share = failed / recorded
    if allowed_share is None:
        return False, f"{detail}; {_resume_hint(run)} (or allow a share with max_failed_call_share)"
    if share > allowed_share:
        return False, f"{detail}, share {share:.4f} > allowed {allowed_share:g}; {_resume_hint(run)}"
    return True, f"{detail}, share {share:.4f} <= allowed {allowed_share:g}"


def completeness_verdict(runs: list[tuple[str, Run]], allowed_share: float | None) -> Verdict:
    """The `complete` rule over the candidate and, when given, the baseline: both must pass."""
    results = [_completeness(run, label, allowed_share) for label, run in runs]
    return Verdict(COMPLETE, all(ok for ok, _ in results), "; ".join(detail for _, detail in results))


def _calibrated_verdict(store: Store, run: Run, name: str, minimum: float) -> Verdict:
    """The physician-anchored score passes when its 95% interval's lower bound is >= ``minimum``."""
    found = calibrated(store, run)
    if found is None:
        return Verdict(name, False, "the run has no physician labels of two or more examples (medops review)")
    return Verdict(
        name,
        found["ci_low"] >= minimum,
        f"lower bound {found['ci_low']:.4f} of {found['score']:.4f} "
        f"(95% CI {found['ci_low']:.4f}..{found['ci_high']:.4f}, {found['method']}, n_labels={found['n_labels']})",
    )


def _metric_value(summary: dict[str, Any], name: str) -> tuple[float, str] | None:
    """A metric's value and its note: a summary metric's mean, or a number in the counterfactual
    block (``counterfactual.flip_rate``, ``counterfactual.sex.flip_rate``)."""
    stats = summary.get("metrics", {}).get(name)
    if isinstance(stats, dict) and stats.get("mean") is not None:
        return stats["mean"], f"{stats['mean']:.4f} (n={stats['n_samples']})"
    if name.startswith(COUNTERFACTUAL):
        value: Any = summary.get("counterfactual")
        n = value.get("n_items") if isinstance(value, dict) else None
        for key in name.removeprefix(COUNTERFACTUAL).split("."):
            value = value.get(key) if isinstance(value, dict) else None
            n = value.get("n_items", n) if isinstance(value, dict) else n
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value), f"{value:.4f} (n={n} items with variants)"
    return None


def _max_gap_verdict(summary: dict[str, Any], name: str, metric: str, limit: float) -> Verdict:
    """Fails when the attribute's largest gap between two variants is > ``limit`` and its
    Holm-adjusted p-value (over the attribute's pairs) is below ALPHA."""
    attribute = metric.removeprefix(COUNTERFACTUAL)
    block = (summary.get("counterfactual") or {}).get(attribute)
    if not isinstance(block, dict) or "max_gap" not in block:
        return Verdict(name, False, f"the run has no {metric} (evaluate it with --counterfactual {attribute})")
    gap = block["max_gap"]
    if gap is None:
        return Verdict(name, False, f"no item of the run was answered under every {attribute} variant")
    significant = gap["p_holm"] < ALPHA
    pairs = len(block.get("pairs", []))
    family = f"{pairs} pair{'s' if pairs != 1 else ''}{', significant' if significant else ''}"
    return Verdict(
        name,
        not (gap["gap"] > limit and significant),
        f"largest gap {gap['gap']:.4f} ({gap['a']} vs {gap['b']}, n={block['n_items']}; "
        f"Holm p={gap['p_holm']:.3g} over {family})",
    )


def evaluate_gate(
    store: Store, ref: str, rules: list[Rule], *, baseline: str | None = None, seed: int = 0
) -> list[Verdict]:
    run = store.find_run(ref)
    base = store.find_run(baseline) if baseline is not None else None
    shares = [r.max_failed_call_share for r in rules if r.max_failed_call_share is not None]
    allowed_share = min(shares) if shares else None  # every rule must hold: the strictest one
    verdicts = [completeness_verdict([("candidate", run)] + ([("baseline", base)] if base else []), allowed_share)]
    summary = run.summary or {}
    metrics = summary.get("metrics", {})
    drop_metrics = list(dict.fromkeys(r.metric for r in rules if r.max_drop is not None and r.metric))
    comparison: dict[str, Any] = {}
    holm_p: dict[str, float] = {}
    if drop_metrics:
        if baseline is None:
            raise UserError("max-drop rules need --baseline RUN")
        # Each metric's own paired test; Holm across the gated metrics only (not every breakdown).
        comparison = compare_runs(store, baseline, ref, seed=seed, metrics=drop_metrics)["metrics"]
        holm_p = holm({name: result["p_value"] for name, result in comparison.items()})
    for rule in rules:
        name = rule.describe()
        if rule.max_failed_call_share is not None:
            continue  # folded into the `complete` verdict above
        if rule.min is not None and rule.metric == CALIBRATED_SCORE:
            verdicts.append(_calibrated_verdict(store, run, name, rule.min))
        elif rule.min is not None and rule.metric in metrics:
            stats = metrics[rule.metric]
            verdicts.append(Verdict(name, stats["mean"] >= rule.min, f"{stats['mean']:.4f} (n={stats['n_samples']})"))
        elif rule.min is not None or rule.max is not None:
            found = _metric_value(summary, rule.metric)
            if found is None:
                verdicts.append(Verdict(name, False, f"the run has no metric {rule.metric}"))
            else:
                value, detail = found
                passed = value >= rule.min if rule.min is not None else value <= rule.max
                verdicts.append(Verdict(name, passed, detail))
        elif rule.max_gap is not None:
            verdicts.append(_max_gap_verdict(summary, name, rule.metric, rule.max_gap))
        elif rule.max_drop is not None:
            result = comparison.get(rule.metric)
            if result is None:
                verdicts.append(Verdict(name, False, f"no shared items carry {rule.metric}"))
                continue
            p_holm = holm_p[rule.metric]
            significant = p_holm < ALPHA
            drop = -result["difference"]
            failed = drop > rule.max_drop and significant
            family = f"{len(holm_p)} max_drop metric{'s' if len(holm_p) != 1 else ''}"
            verdicts.append(
                Verdict(
                    name,
                    not failed,
                    f"change {result['difference']:+.4f} "
                    f"(95% CI {result['ci95_low']:+.4f}..{result['ci95_high']:+.4f}, "
                    f"p={result['p_value']:.3g}, Holm p={p_holm:.3g} over {family}"
                    f"{', significant' if significant else ''})",
                )
            )
        elif rule.max_ungraded_share is not None:
            share, detail = _ungraded_share(store, run)
            verdicts.append(Verdict(name, share <= rule.max_ungraded_share, f"{share:.4f} ({detail})"))
        else:
            cost = run_cost(run, load_prices())
            unpriced = ", ".join(cost["unpriced"])
            if unpriced and rule.unpriced != "pass":
                hint = "price it in a table named by MEDOPS_PRICES=FILE, or let it pass with `unpriced: pass`"
                verdicts.append(Verdict(name, False, f"no price for {unpriced} ({hint})"))
            else:
                passed = cost["total_usd"] <= rule.max_cost_usd
                note = f" for priced models; unpriced, passed by the policy: {unpriced}" if unpriced else ""
                verdicts.append(Verdict(name, passed, f"${cost['total_usd']:.4f}{note}"))
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
