"""Before and after: the base and the tuned model on the same items, asked as trained, paired.

Did training help (the held-out exam) and did it hurt anything else (optionally a rubric set
such as HealthBench, graded the same way for both)? Each side is an ordinary stored run, so a
run whose calls failed for good is compared on the items it has, said so, and can be finished
by running this again (only the failed calls are sent). Truncated answers and failed calls are
reported per run, never hidden in an accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from medops.errors import UserError
from medops.evaluation.config import HealthBenchConfig, McqaConfig
from medops.evaluation.run import run_healthbench, run_mcqa
from medops.events import EventBus
from medops.grading.templates import default_template
from medops.models.spec import ModelSpec
from medops.ops.compare import ALPHA, compare_runs
from medops.rl.asked import AskedAs
from medops.rl.train import Notice, Settings
from medops.scoring.paired import holm
from medops.store.repository import COMPLETED, INCOMPLETE, Store


class _Outcome(Protocol):
    """What a finished run reports (``run_mcqa`` / ``run_healthbench`` return one)."""

    @property
    def run_id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def summary(self) -> dict[str, Any]: ...
    @property
    def message(self) -> str | None: ...


@dataclass(frozen=True)
class BeforeAfter:
    """The paired reports (``exam``, and ``healthbench`` when asked for) and each run's facts
    (``runs[benchmark][side]``) for both sides."""

    settings: Settings
    exam: dict[str, Any]
    runs: dict[str, dict[str, dict[str, Any]]]
    healthbench: dict[str, Any] | None = None
    statuses: dict[str, str] = field(default_factory=dict)  # "exam base", "healthbench tuned", ... -> status

    @property
    def incomplete(self) -> bool:
        """A run has calls that failed for good (``medops rl evaluate`` exits 3)."""
        return any(status == INCOMPLETE for status in self.statuses.values())

    def as_json(self) -> dict[str, Any]:
        """The document ``medops rl evaluate`` prints (its keys are a public interface)."""
        document: dict[str, Any] = {"settings": self.settings, "exam": self.exam}
        if self.healthbench is not None:
            document["healthbench"] = self.healthbench
        document["runs"] = self.runs
        # what `medops gate` takes: each benchmark's tuned run, gated against its base run
        document["gate"] = [
            {"benchmark": benchmark, "run": sides["tuned"]["run_id"], "baseline": sides["base"]["run_id"]}
            for benchmark, sides in self.runs.items()
        ]
        return document


def evaluate_before_after(
    store: Store,
    base: ModelSpec,
    tuned: ModelSpec,
    data: str,
    asked: AskedAs,
    *,
    task: str = "generic",
    limit: int | None = None,
    healthbench_data: str | None = None,
    grader: ModelSpec | None = None,
    max_tries: int = 6,
    retry_base_delay_s: float = 1.0,
    on_notice: Notice | None = None,
    bus: EventBus | None = None,
    weak: Sequence[str] = (),
) -> BeforeAfter:
    """Run the exam ``data`` for ``base`` then ``tuned`` as ``asked`` (from
    ``medops.rl.asked.evaluation_settings``), and, with ``healthbench_data``, that rubric set for both,
    graded by ``grader``; then pair each benchmark's two runs (``medops compare``). A run that ended
    other than completed or incomplete (interrupted, failed) is refused: it has nothing to pair.

    ``weak``: the slices the training set was drawn for (``rl prepare --from-run``); each report
    then has ``slices``: those, and every other slice of the same kinds, paired and Holm-adjusted
    over that family (did it help where it was weak, did it hurt elsewhere)."""
    if healthbench_data and grader is None:
        raise UserError("a rubric set (healthbench_data) needs a grader")
    notice = on_notice or (lambda _message: None)
    specs = {"base": base, "tuned": tuned}
    chosen = asked.values()
    retries = {"max_tries": max_tries, "retry_base_delay_s": retry_base_delay_s}
    exam: dict[str, _Outcome] = {}
    for side, spec in specs.items():
        config = McqaConfig(task=task, data=data, limit=limit, model=spec, **chosen, **retries)
        exam[side] = run_mcqa(config, store, bus=bus)
        _usable(exam[side], str(spec), notice)
    runs = {"exam": {side: _exam_facts(o, str(specs[side]), chosen["max_tokens"], notice) for side, o in exam.items()}}
    statuses = {f"exam {side}": o.status for side, o in exam.items()}
    exam_report = with_slices(compare_runs(store, str(exam["base"].run_id), str(exam["tuned"].run_id)), weak)
    rubric_report = None
    if healthbench_data and grader is not None:
        rubric: dict[str, _Outcome] = {}
        for side, spec in specs.items():
            config = HealthBenchConfig(
                data=healthbench_data,
                model=spec,
                grader=grader,
                grader_template=default_template(),
                model_max_tokens=chosen["max_tokens"],
                # an in-process grader scores "yes"/"no" directly; an API grader writes its verdict
                grader_verdict="logprob" if grader.capabilities.choice_scoring else "text",
                **retries,
            )
            rubric[side] = run_healthbench(config, store, bus=bus)
            _usable(rubric[side], str(spec), notice)
        runs["healthbench"] = {
            side: {
                "run_id": o.run_id,
                "model": str(specs[side]),
                "status": o.status,
                "score": o.summary.get("score"),
                "n_failed_calls": o.summary.get("n_failed_calls"),
            }
            for side, o in rubric.items()
        }
        statuses.update({f"healthbench {side}": o.status for side, o in rubric.items()})
        rubric_report = with_slices(compare_runs(store, str(rubric["base"].run_id), str(rubric["tuned"].run_id)), weak)
    return BeforeAfter(asked.settings, exam_report, runs, rubric_report, statuses)


SLICE_KINDS = ("theme:", "axis:", "subject:")


def with_slices(report: dict[str, Any], weak: Sequence[str]) -> dict[str, Any]:
    """``report`` with ``slices`` (see :func:`evaluate_before_after`): the weak slices it has and
    every other slice of their kinds (of theme, axis and subject when none is weak)."""
    kinds = {name.partition(":")[0] + ":" for name in weak} or set(SLICE_KINDS)
    family = {
        name: paired
        for name, paired in report["metrics"].items()
        if name in weak or any(name.startswith(kind) for kind in kinds)
    }
    adjusted = holm({name: paired["p_value"] for name, paired in family.items()})
    entries: dict[str, list[dict[str, Any]]] = {"weak": [], "other": []}
    for name, paired in sorted(family.items()):
        significant = adjusted[name] < ALPHA
        entries["weak" if name in weak else "other"].append(
            {
                "slice": name,
                **{k: paired[k] for k in ("n", "mean_a", "mean_b", "difference", "ci95_low", "ci95_high", "p_value")},
                "p_holm": adjusted[name],
                "significant": significant,
                "change": ("better" if paired["difference"] > 0 else "worse") if significant else "unchanged",
            }
        )
    present = {name.partition(":")[0] for name in report["metrics"]}
    # a weak slice of a kind this benchmark scores, without a held-out item of its own
    entries["missing_weak"] = [name for name in weak if name not in family and name.partition(":")[0] in present]
    entries["helped_where_weak"] = any(e["change"] == "better" for e in entries["weak"])
    entries["hurt_elsewhere"] = any(e["change"] == "worse" for e in entries["other"])
    return {**report, "slices": entries}


def _exam_facts(outcome: _Outcome, spec: str, max_tokens: int | None, notice: Notice) -> dict[str, Any]:
    """One side of a comparison as it ran: truncations and failed calls shown, not hidden."""
    summary = outcome.summary
    facts = {
        "run_id": outcome.run_id,
        "model": spec,
        "status": outcome.status,
        "n_examples": summary.get("n_examples"),
        "accuracy": summary.get("score"),
        "n_truncated": summary["n_truncated"],
        "n_failed_calls": summary.get("n_failed_calls"),
    }
    if facts["n_truncated"]:
        notice(
            f"{spec}: {facts['n_truncated']} of {facts['n_examples']} answers stopped at the length limit "
            f"({max_tokens or 'model default'} tokens) and are scored as written (n_truncated)"
        )
    return facts


def _usable(outcome: _Outcome, spec: str, notice: Notice) -> None:
    """A run with calls that failed for good still compares on the items it has, and says so."""
    if outcome.status == INCOMPLETE:
        notice(
            f"run {outcome.run_id} for {spec} is incomplete ({outcome.summary.get('n_failed_calls')} calls failed "
            "for good) and is compared on the items it has; run `rl evaluate` again to retry only those calls"
        )
    elif outcome.status != COMPLETED:
        raise UserError(f"run {outcome.run_id} for {spec} did not complete ({outcome.message})")
