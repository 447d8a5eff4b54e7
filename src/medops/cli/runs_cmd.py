"""``medops runs list``, ``medops runs show`` and ``medops runs weak``."""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from medops import api
from medops.cli.console import out
from medops.cli.options import DB_OPTION, JSON_OPTION
from medops.evaluation.registry import BENCHMARKS
from medops.rl.weak import weak_slices
from medops.store.repository import Store

app = typer.Typer(help="Inspect recorded runs.", no_args_is_help=True)


@app.command("list")
def list_runs(db: str = DB_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Every run in the store, newest first (as the dashboard and /api/runs list them)."""
    records = list(reversed(api.runs(Store.open(db, create=False))))
    if as_json:
        print(json.dumps(records, ensure_ascii=False))
        return
    table = Table(show_edge=False)
    for column in ("id", "name", "status", "benchmark", "dataset", "model", "grader", "score", "created"):
        table.add_column(column)
    for r in records:
        score = "-" if r["score"] is None else f"{r['score']:.3f}"
        table.add_row(
            str(r["run_id"]),
            escape(r["name"] or ""),
            r["status"],
            r["benchmark"],
            escape(r["dataset"]),
            escape(r["model"] or ""),
            escape(r["grader"] or ""),
            score,
            r["created_at"][:19],
        )
    out.print(table)


@app.command("show")
def show_run(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id or name."),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """One run: status, configuration and every metric."""
    store = Store.open(db, create=False)
    document = api.run(run_ref, db=store)
    kind = BENCHMARKS.get(document["benchmark"])
    if as_json or kind is None:
        print(json.dumps(document, ensure_ascii=False, indent=None if as_json else 2))
        return
    run = store.find_run(run_ref)
    out.print(f"status: {document['status']}   medops {run.medops_version}   created {document['created_at'][:19]}")
    if run.error:
        out.print(f"error: {escape(run.error)}")
    kind.print_summary(out, run, store.dataset(run.dataset_id), run.summary or {})


@app.command("weak")
def weak_run(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id or name."),
    by: str = typer.Option(
        None, "--by", help="theme, axis, subject or criterion-tag [default: theme for rubric runs, subject for exams]."
    ),
    vs: str = typer.Option(None, "--vs", metavar="BASELINE", help="Rank by the paired drop against this run."),
    top: int = typer.Option(None, "--top", min=1, help="Show only the weakest N slices."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap and permutation seed."),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The run's slices ranked by shortfall (absolute, or paired against a baseline), with 95%
    intervals, and the criteria it missed most often, with examples."""
    document = weak_slices(Store.open(db, create=False), run_ref, by=by, vs=vs, top=top, seed=seed)
    if as_json:
        print(json.dumps(document, ensure_ascii=False))
        return
    table = Table(show_edge=False)
    for column in ("slice", "n", "score", "shortfall", "95% interval", *(("p (Holm)",) if vs else ())):
        table.add_column(column)
    for s in document["slices"]:
        row = [escape(s["slice"]), str(s["n"]), f"{s['score']:.3f}", f"{s['shortfall']:+.3f}"]
        row.append(f"{s['ci95_low']:+.3f}..{s['ci95_high']:+.3f}")
        if vs:
            row.append(f"{s['p_holm']:.3g}")
        table.add_row(*row)
    out.print(table)
    for c in document["missed_criteria"][:5]:
        out.print(f"missed {c['missed']}/{c['asked']}: {escape(c['criterion'])}", soft_wrap=True)
