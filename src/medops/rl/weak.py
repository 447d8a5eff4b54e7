"""``medops runs weak``: where a run falls short, slice by slice, with intervals.

A slice is a breakdown the run's benchmark already scores (``theme:*`` and ``axis:*`` of a rubric
run, any tag its criteria carry, ``subject:*`` of an exam). Its shortfall is how far its score is
from a perfect one (1 - the clipped mean), or, against a baseline run on the same items, how far
it fell below the baseline (paired, as ``medops compare`` pairs). The interval is the same
seeded paired bootstrap ``compare`` and ``gate`` use (against a perfect score, every item paired
with 1.0), so the numbers agree with theirs; paired shortfalls carry the sign-flip (or McNemar)
test, Holm-adjusted over the slices ranked. The criteria missed most often come with examples.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from medops.errors import UserError
from medops.evaluation.records import SampleRecord
from medops.evaluation.results import RunResults, load_results, sample_records
from medops.ops.compare import ALPHA, compare_runs
from medops.scoring.paired import paired_bootstrap_ci
from medops.store.repository import Store

BY = ("theme", "axis", "subject", "criterion-tag")
EXAMPLES = 3  # examples shown per missed criterion


def slice_names(results: RunResults, records: list[SampleRecord], by: str) -> list[str]:
    """The run's slices of one kind: metric names its items report."""
    if by not in BY:
        raise UserError(f"--by '{by}': expected one of {', '.join(BY)}")
    metrics = {name for values in results.items.values() for name in values}
    if by == "criterion-tag":
        tags = {t for r in records for a in r.assessments for t in a.tags}
        return sorted(metrics & tags)
    return sorted(m for m in metrics if m.startswith(f"{by}:"))


def _missed(assessment: Any) -> bool | None:
    """A positive criterion not met, or a negative one met (what cost the answer points)."""
    if not isinstance(assessment.value, bool) or assessment.points is None:
        return None
    return (assessment.points > 0 and not assessment.value) or (assessment.points < 0 and assessment.value)


def in_slice(record: SampleRecord, name: str) -> bool:
    if name in record.tags:
        return True
    key, _, value = name.partition(":")
    return str(record.metadata.get(key)) == value or any(name in a.tags for a in record.assessments)


def missed_criteria(records: list[SampleRecord], *, slice_name: str | None = None, top: int = 5) -> list[dict]:
    """Criteria that cost points most often (in one slice, or over the run), with examples."""
    asked: dict[str, int] = defaultdict(int)
    missed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    facts: dict[str, dict[str, Any]] = {}
    for record in records:
        for assessment in record.assessments:
            # an example's slice (a theme) takes all its criteria; a criterion's slice (an axis) its own
            if slice_name is not None and slice_name not in record.tags and slice_name not in assessment.tags:
                continue
            was_missed = _missed(assessment)
            if was_missed is None:
                continue
            asked[assessment.name] += 1
            facts.setdefault(assessment.name, {"points": assessment.points, "tags": list(assessment.tags)})
            if was_missed:
                missed[assessment.name].append(
                    {"item_id": record.item_id, "index": record.index, "explanation": assessment.explanation}
                )
    ranked = sorted(missed, key=lambda name: (-len(missed[name]), -abs(facts[name]["points"] or 0), name))
    return [
        {
            "criterion": name,
            **facts[name],
            "missed": len(missed[name]),
            "asked": asked[name],
            "miss_rate": len(missed[name]) / asked[name],
            "examples": missed[name][:EXAMPLES],
        }
        for name in ranked[:top]
    ]


def _wrong_items(records: list[SampleRecord], name: str) -> list[dict]:
    """An exam slice's examples: items answered wrong."""
    wrong = [r for r in records if in_slice(r, name) and ({"wrong", "unparsed"} & r.flags)]
    return [{"item_id": r.item_id, "index": r.index, "target": r.target} for r in wrong[:EXAMPLES]]


def weak_slices(
    store: Store,
    ref: str,
    *,
    by: str | None = None,
    vs: str | None = None,
    top: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The run's slices of kind ``by`` ranked by shortfall, largest first (``top`` of them)."""
    run = store.find_run(ref)
    results = load_results(store, ref)
    records = sample_records(store, run)
    by = by or ("subject" if results.binary else "theme")
    names = slice_names(results, records, by)
    if not names:
        kinds = [k for k in BY if slice_names(results, records, k)]
        raise UserError(f"run {run.id} has no {by} slices (it has: {', '.join(kinds) or 'none'})")
    slices: list[dict[str, Any]] = []
    baseline = None
    if vs is None:
        for name in names:
            values = np.asarray([v[name] for v in results.items.values() if name in v], dtype=float)
            perfect = np.ones_like(values)
            clip = not results.binary
            score = float(np.clip(values.mean(), 0, 1)) if clip else float(values.mean())
            low, high = paired_bootstrap_ci(values, perfect, seed, clip)  # 1 - score, resampled
            slices.append(
                {
                    "slice": name,
                    "n": len(values),
                    "score": score,
                    "shortfall": 1.0 - score,
                    "ci95_low": low,
                    "ci95_high": high,
                }
            )
    else:
        report = compare_runs(store, vs, ref, seed=seed, metrics=names)  # a = baseline, b = this run
        baseline = report["run_a"]
        for name, paired in report["metrics"].items():
            slices.append(
                {
                    "slice": name,
                    "n": paired["n"],
                    "score": paired["mean_b"],
                    "baseline_score": paired["mean_a"],
                    "shortfall": -paired["difference"],  # baseline - run: positive where the run fell behind
                    "ci95_low": -paired["ci95_high"],
                    "ci95_high": -paired["ci95_low"],
                    "p_value": paired["p_value"],
                    "p_holm": paired["p_holm"],
                    "significant": paired["significant"],
                    "test": paired["test"],
                }
            )
    slices.sort(key=lambda s: (-s["shortfall"], -s["n"], s["slice"]))
    for entry in slices:
        if results.binary:
            entry["wrong_items"] = _wrong_items(records, entry["slice"])
        else:
            entry["missed_criteria"] = missed_criteria(records, slice_name=entry["slice"], top=3)
    return {
        "run": {"run_id": run.id, "name": run.name, "model": run.model, "benchmark": run.benchmark},
        "baseline": baseline,
        "by": by,
        "mode": "paired" if vs else "absolute",
        "seed": seed,
        "alpha": ALPHA,
        "n_slices": len(slices),
        "slices": slices[:top] if top else slices,
        "missed_criteria": [] if results.binary else missed_criteria(records, top=10),
    }
