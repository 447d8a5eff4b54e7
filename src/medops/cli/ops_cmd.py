"""``medops compare`` and ``medops gate``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from medops import api
from medops.cli.console import out
from medops.cli.options import DB_OPTION, JSON_OPTION
from medops.errors import UserError
from medops.ops.compare import compare_runs
from medops.ops.gate import load_policy, parse_flag_rules, write_junit
from medops.store.repository import Store


def compare(
    run_a: str = typer.Argument(..., metavar="BASELINE", help="The baseline run (id or name)."),
    run_b: str = typer.Argument(..., metavar="CANDIDATE", help="The candidate run."),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="Pair runs made on different datasets on the items they share (by id)."
    ),
    seed: int = typer.Option(0, "--seed"),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Paired comparison of a candidate with its baseline: change (candidate - baseline), 95%
    paired-bootstrap interval, p-value, Holm-adjusted significance (JSON: run_a is the baseline)."""
    report = compare_runs(Store.open(db, create=False), run_a, run_b, allow_partial=allow_partial, seed=seed)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return
    a, b = report["run_a"], report["run_b"]
    table = Table(
        title=escape(
            f"baseline run {a['run_id']} ({a['model']}), candidate run {b['run_id']} ({b['model']}): "
            f"{report['n_shared']} shared items"
        ),
        title_justify="left",
        show_edge=False,
    )
    for column in ("metric", "baseline", "candidate", "change", "95% CI", "p", "p (Holm)", "better/worse/same", ""):
        table.add_column(
            column, justify="left" if column in ("metric", "") else "right", no_wrap=column in ("metric", "95% CI")
        )
    for name, r in report["metrics"].items():
        table.add_row(
            escape(name),
            f"{r['mean_a']:.3f}",
            f"{r['mean_b']:.3f}",
            f"{r['difference']:+.3f}",
            f"{r['ci95_low']:+.3f}..{r['ci95_high']:+.3f}",
            f"{r['p_value']:.3g}",
            f"{r['p_holm']:.3g}",
            f"{r['better']}/{r['worse']}/{r['unchanged']}",
            "significant" if r["significant"] else "",
        )
    out.print(table)
    test = next(iter(report["metrics"].values()))["test"] if report["metrics"] else "-"
    out.print(f"change = candidate - baseline; test: {test}; significant = Holm-adjusted p < {report['alpha']}")


def gate(
    run: str = typer.Argument(..., metavar="RUN", help="The run to gate (id or name)."),
    policy: Path = typer.Option(None, "--policy", help="YAML policy file (see docs/OPERATIONS.md)."),
    baseline: str = typer.Option(
        None, "--baseline", help="Run to compare against for max-drop rules (it must be complete too)."
    ),
    min_rules: list[str] = typer.Option([], "--min", help="METRIC=VALUE: the metric's mean must be >= VALUE."),
    max_rules: list[str] = typer.Option(
        [], "--max", help="METRIC=VALUE: the metric must be <= VALUE (e.g. counterfactual.flip_rate=0.05)."
    ),
    max_gap_rules: list[str] = typer.Option(
        [],
        "--max-gap",
        help="counterfactual.ATTR=VALUE: a largest gap between variants above VALUE, significant after Holm, fails.",
    ),
    max_drop_rules: list[str] = typer.Option(
        [], "--max-drop", help="METRIC=VALUE: vs --baseline, a significant drop larger than VALUE fails."
    ),
    max_ungraded_share: float = typer.Option(None, "--max-ungraded-share", min=0, max=1),
    max_failed_call_share: float = typer.Option(
        None,
        "--max-failed-call-share",
        min=0,
        max=1,
        help="Let an 'incomplete' run pass the complete rule when at most this share of its calls failed.",
    ),
    junit: Path = typer.Option(None, "--junit", help="Write one JUnit test case per rule."),
    seed: int = typer.Option(0, "--seed"),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """A release gate for CI: exit 0 when every rule holds, 1 when any fails, 2 for usage errors.

    The `complete` rule always comes first: only a completed run (and baseline) passes it."""
    rules = (load_policy(policy) if policy else []) + parse_flag_rules(
        min_rules, max_drop_rules, max_ungraded_share, max_failed_call_share, maxes=max_rules, max_gaps=max_gap_rules
    )
    if not rules:
        raise UserError("no rules: give --policy FILE or --min / --max / --max-gap / --max-drop / --max-ungraded-share")
    verdicts = api.gate(run, rules, db=Store.open(db, create=False), baseline=baseline, seed=seed)
    if junit:
        write_junit(junit, run, verdicts)
    passed = all(v.passed for v in verdicts)
    if as_json:
        print(json.dumps({"run": run, "passed": passed, "rules": [v.to_dict() for v in verdicts]}, ensure_ascii=False))
    else:
        for v in verdicts:
            mark = "[green]PASS[/]" if v.passed else "[red]FAIL[/]"
            out.print(f"{mark} {escape(v.rule)}: {escape(v.detail)}")
        out.print("[green]gate passed[/]" if passed else "[red]gate failed[/]")
    raise typer.Exit(0 if passed else 1)
