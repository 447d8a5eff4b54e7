"""End-of-run summaries of every benchmark: a Rich table for people, a stable JSON shape for machines.

These are what ``--json`` prints and what ``runs show`` builds on; the keys are a public contract."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from medops.evaluation.config import HealthBenchConfig
from medops.store.schema import Dataset, Run


def healthbench_json(run: Run, dataset: Dataset, config: HealthBenchConfig, summary: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` document (metric names as in the reference: overall_score, theme:..., axis:...)."""
    return {
        "run_id": run.id,
        "name": run.name,
        "status": run.status,
        "benchmark": run.benchmark,
        "dataset": {
            "name": dataset.name,
            "path": dataset.path,
            "sha256": dataset.sha256,
            "n_examples": dataset.n_examples,
        },
        "model": run.model,
        "grader": run.grader,
        "score": summary.get("score"),
        "bootstrap_std": summary.get("bootstrap_std"),
        "n_examples": summary.get("n_examples", 0),
        "n_excluded_examples": summary.get("n_excluded_examples", 0),
        "n_ungraded_criteria": summary.get("n_ungraded_criteria", 0),
        "n_failed_calls": summary.get("n_failed_calls", 0),
        "failed_by_cause": summary.get("failed_by_cause", {}),
        "metrics": summary.get("metrics", {}),
        "usage": summary.get("usage", {}),
        "phi": summary.get("phi"),
        "wall_seconds": summary.get("wall_seconds", run.wall_seconds),
        "seed": config.seed,
        **({"jury": summary["jury"]} if "jury" in summary else {}),  # several graders: each juror, agreement
        **({"counterfactual": summary["counterfactual"]} if "counterfactual" in summary else {}),
    }


def usage_line(role: str, u: dict[str, int]) -> str:
    """``model: 12 calls (3 cached, 1 failed), 900+400 tokens;`` for the closing line of a run."""
    notes = ", ".join(f"{u[key]:,} {key}" for key in ("cached", "failed") if u.get(key))
    return (
        f"{role}: {u['calls']:,} calls{f' ({notes})' if notes else ''}, "
        f"{u['prompt_tokens']:,}+{u['completion_tokens']:,} tokens;"
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_healthbench_summary(console: Console, run: Run, dataset: Dataset, summary: dict[str, Any]) -> None:
    metrics: dict[str, dict[str, float]] = summary.get("metrics", {})
    title = f"run {run.id}{f' ({run.name})' if run.name else ''}: {run.model} graded by {run.grader} on {dataset.name}"
    table = Table(title=escape(title), title_justify="left", show_edge=False)
    table.add_column("metric", no_wrap=True)
    table.add_column("mean", justify="right")
    table.add_column("± bootstrap std", justify="right")
    table.add_column("n", justify="right")
    for group in ("overall", "theme:", "axis:"):
        for metric, stats in metrics.items():
            in_group = metric.startswith("overall") if group == "overall" else metric.startswith(group)
            if in_group:
                table.add_row(
                    escape(metric), _fmt(stats["mean"]), _fmt(stats["bootstrap_std"]), str(stats["n_samples"])
                )
        table.add_section()
    console.print(table)
    usage = summary.get("usage", {})
    calls = " ".join(usage_line(role, u) for role, u in usage.items())
    others = sum(1 for m in metrics if not m.startswith(("overall", "theme:", "axis:")))
    console.print(
        f"score {_fmt(summary.get('score'))} ± {_fmt(summary.get('bootstrap_std'))} over "
        f"{summary.get('n_examples', 0)} examples; {summary.get('n_excluded_examples', 0)} excluded, "
        f"{summary.get('n_ungraded_criteria', 0)} ungraded criteria; {calls} "
        f"{summary.get('wall_seconds', 0):.1f}s wall. {others} more tag metrics in --json / `medops runs show`."
    )
    print_counterfactual(console, summary.get("counterfactual"))


def meta_eval_json(run: Run, dataset: Dataset, summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "name": run.name,
        "status": run.status,
        "benchmark": run.benchmark,
        "dataset": {"name": dataset.name, "path": dataset.path, "sha256": dataset.sha256},
        "grader": run.grader,
        "score": summary.get("score"),
        "n_rows": summary.get("n_examples", 0),
        "n_ungraded": summary.get("n_ungraded_criteria", 0),
        "n_failed_calls": summary.get("n_failed_calls", 0),
        "failed_by_cause": summary.get("failed_by_cause", {}),
        "agreement": summary.get("agreement", {}),
        **({"jury": summary["jury"]} if "jury" in summary else {}),
        # the verdicts' P(met) against the physicians' majority (None before this was recorded)
        "calibration": summary.get("calibration"),
        "n_with_confidence": summary.get("n_with_confidence", 0),
        "n_missing_confidence": summary.get("n_missing_confidence", summary.get("n_examples", 0)),
        "usage": summary.get("usage", {}),
        "phi": summary.get("phi"),
        "wall_seconds": summary.get("wall_seconds", run.wall_seconds),
    }


def print_meta_eval_summary(console: Console, run: Run, dataset: Dataset, summary: dict[str, Any]) -> None:
    title = f"run {run.id}: grader {run.grader} against physicians on {dataset.name}"
    table = Table(title=escape(title), title_justify="left", show_edge=False)
    for column in (
        "category",
        "rows",
        "grader bal. F1",
        "physicians bal. F1 (min / median / max)",
        "grader percentile",
        "grader vs majority macro F1",
        "ECE",
    ):
        table.add_column(column, justify="left" if column == "category" else "right")
    for category, block in summary.get("agreement", {}).items():
        physicians = block["physicians_balanced_f1"]
        spread = (
            f"{_fmt(physicians['min'])} / {_fmt(physicians['median'])} / {_fmt(physicians['max'])}"
            if physicians["n_physicians"]
            else "-"
        )
        percentile = physicians["grader_percentile"]
        table.add_row(
            escape(category),
            str(block["n_rows"]),
            _fmt(block["grader_pairwise"]["balanced_f1"]),
            spread,
            "-" if percentile is None else f"{100 * percentile:.0f}%",
            _fmt(block["grader_vs_majority_macro_f1"]),
            _fmt(block["calibration"]["ece"]) if "calibration" in block else "-",
        )
        if category == "overall":
            table.add_section()
    console.print(table)
    if jury := summary.get("jury"):
        jurors = Table(title=f"each juror against the physicians (jury: {jury['reducer']})", title_justify="left")
        for column in ("juror", "rows", "bal. F1", "vs majority macro F1", "percentile"):
            jurors.add_column(column, justify="left" if column == "juror" else "right")
        for j in jury["jurors"]:
            percentile = j["grader_percentile"]
            jurors.add_row(
                escape(j["judge"]),
                str(j["n_rows"]),
                _fmt(j["balanced_f1"]),
                _fmt(j["grader_vs_majority_macro_f1"]),
                "-" if percentile is None else f"{100 * percentile:.0f}%",
            )
        console.print(jurors)
        console.print(f"jurors' Fleiss' kappa {_fmt(jury['fleiss_kappa'])} over {jury['n_rows_compared']} rows")
    console.print(f"{summary.get('n_ungraded_criteria', 0)} rows ungraded; {summary.get('wall_seconds', 0):.1f}s wall.")


def exam_json(run: Run, dataset: Dataset, summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "name": run.name,
        "status": run.status,
        "benchmark": run.benchmark,
        "task": summary.get("task"),
        "dataset": {
            "name": dataset.name,
            "path": dataset.path,
            "sha256": dataset.sha256,
            "n_examples": dataset.n_examples,
        },
        "model": run.model,
        "score": summary.get("score"),
        "bootstrap_std": summary.get("bootstrap_std"),
        "n_examples": summary.get("n_examples", 0),
        "n_unparsed": summary.get("n_unparsed", 0),
        "unparsed_rate": summary.get("unparsed_rate"),
        "n_excluded_examples": summary.get("n_excluded_examples", 0),
        "n_failed_calls": summary.get("n_failed_calls", 0),
        "failed_by_cause": summary.get("failed_by_cause", {}),
        "n_truncated": summary.get("n_truncated", 0),
        "skipped_items": summary.get("skipped_items", {}),
        "rules": summary.get("rules", {}),
        "metrics": summary.get("metrics", {}),
        # confidence of the answers against correctness; a run scored before confidences has none
        "calibration": summary.get("calibration"),
        "n_with_confidence": summary.get("n_with_confidence", 0),
        "n_missing_confidence": summary.get("n_missing_confidence", summary.get("n_examples", 0)),
        "abstention": summary.get("abstention"),
        "usage": summary.get("usage", {}),
        "phi": summary.get("phi"),
        "wall_seconds": summary.get("wall_seconds", run.wall_seconds),
        # --counterfactual: per attribute, each variant's accuracy, the flip rate, the largest gap
        **({"counterfactual": summary["counterfactual"]} if "counterfactual" in summary else {}),
    }


def print_counterfactual(console: Console, block: dict[str, Any] | None) -> None:
    """Per attribute: each variant's accuracy or score, the flip rate, the largest gap (Holm p)."""
    if not block:
        return
    metric = block.get("metric", "accuracy")
    table = Table(title="counterfactual variants", title_justify="left", show_edge=False)
    for column in ("attribute", "variant", metric, "n", "flip rate", "largest gap", "Holm p", "kept / left out"):
        table.add_column(column, justify="left" if column in ("attribute", "variant", "kept / left out") else "right")
    for attribute in block.get("attributes", []):
        a = block[attribute]
        gap = a.get("max_gap")
        kept = ", ".join(f"{k} {v}" for k, v in {**a.get("kept", {}), **a.get("left_out", {})}.items()) or "-"
        for i, (value, v) in enumerate(a["variants"].items()):
            first = i == 0
            table.add_row(
                escape(attribute) if first else "",
                escape(value),
                _fmt(v.get(metric)),
                str(v["n"]),
                _fmt(a["flip_rate"]) if first else "",
                (f"{gap['gap']:.3f} ({escape(gap['a'])} vs {escape(gap['b'])})" if gap else "-") if first else "",
                (f"{gap['p_holm']:.3g}" if gap else "-") if first else "",
                escape(kept) if first else "",
            )
        table.add_section()
    console.print(table)


def print_exam_summary(console: Console, run: Run, dataset: Dataset, summary: dict[str, Any]) -> None:
    metrics = summary.get("metrics", {})
    table = Table(
        title=escape(f"run {run.id}: {run.model} on {dataset.name} ({summary.get('task')})"),
        title_justify="left",
        show_edge=False,
    )
    for column in ("breakdown", "accuracy", "95% CI", "n"):
        table.add_column(column, justify="left" if column == "breakdown" else "right")
    for name, m in metrics.items():
        table.add_row(
            escape(name), f"{m['mean']:.3f}", f"{m['ci95_low']:.3f}-{m['ci95_high']:.3f}", str(m["n_samples"])
        )
        if name == "accuracy":
            table.add_section()
    console.print(table)
    skipped = ", ".join(f"{k} {v}" for k, v in summary.get("skipped_items", {}).items()) or "none"
    rate = summary.get("unparsed_rate")
    console.print(
        f"unparsed {summary.get('n_unparsed', 0)} ({0 if rate is None else 100 * rate:.1f}%); "
        f"items skipped: {skipped}; rules: {summary.get('rules', {})}; {summary.get('wall_seconds', 0):.1f}s wall."
    )
    figures = summary.get("calibration") or {}
    if figures.get("ece") is not None:
        console.print(
            f"calibration: ECE {figures['ece']:.3f} (adaptive {figures['ece_adaptive']:.3f}), "
            f"Brier {figures['brier']:.3f}, AUROC {_fmt(figures['auroc'])}; "
            f"{summary.get('n_with_confidence', 0)} answers with a confidence, "
            f"{summary.get('n_missing_confidence', 0)} without."
        )
    if summary.get("abstention"):
        abstention = summary["abstention"]
        console.print(
            f"abstained {abstention['n_abstained']}; abstention-aware score (right - wrong) / n: "
            f"{_fmt(abstention['score'])}."
        )
    print_counterfactual(console, summary.get("counterfactual"))
