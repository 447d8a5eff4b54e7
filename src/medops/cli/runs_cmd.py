"""``medops runs list`` and ``medops runs show``."""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from medops.cli.console import out
from medops.cli.mcqa_cmd import print_exam_summary
from medops.cli.options import DB_OPTION, JSON_OPTION
from medops.evaluation.config import HealthBenchConfig
from medops.evaluation.mcqa import exam_json
from medops.models.pricing import load_prices
from medops.ops.costs import run_cost
from medops.reports.summary import (
    healthbench_json,
    meta_eval_json,
    print_healthbench_summary,
    print_meta_eval_summary,
)
from medops.store.repository import Store, effective_status

app = typer.Typer(help="Inspect recorded runs.", no_args_is_help=True)


@app.command("list")
def list_runs(db: str = DB_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Every run in the store, oldest first."""
    rows = Store.open(db).list_runs()
    records = [
        {
            "run_id": run.id,
            "name": run.name,
            "benchmark": run.benchmark,
            "status": effective_status(run),
            "dataset": dataset.name,
            "model": run.model,
            "grader": run.grader,
            "score": (run.summary or {}).get("score"),
            "created_at": run.created_at.isoformat(),
            "wall_seconds": run.wall_seconds,
        }
        for run, dataset in rows
    ]
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
    store = Store.open(db)
    run = store.find_run(run_ref)
    dataset = store.dataset(run.dataset_id)
    if run.benchmark == "rl-train":
        document = {
            "run_id": run.id,
            "name": run.name,
            "benchmark": run.benchmark,
            "status": effective_status(run),
            "model": run.model,
            "dataset": {"name": dataset.name, "path": dataset.path, "sha256": dataset.sha256},
            "config": run.config,
            "summary": run.summary,
            "error": run.error,
        }
        print(json.dumps(document, ensure_ascii=False, indent=None if as_json else 2))
        return
    if run.benchmark == "mcqa":
        document = exam_json(run, dataset, run.summary or {})
        document.update(
            status=effective_status(run),
            config=run.config,
            medops_version=run.medops_version,
            created_at=run.created_at.isoformat(),
            error=run.error,
            cost=run_cost(run, load_prices()),
        )
        if as_json:
            print(json.dumps(document, ensure_ascii=False))
        else:
            out.print(f"status: {document['status']}   medops {run.medops_version}")
            print_exam_summary(run, dataset, run.summary or {})
        return
    config = HealthBenchConfig.model_validate(run.config)
    if config.task == "meta-eval":
        document = meta_eval_json(run, dataset, run.summary or {})
    else:
        document = healthbench_json(run, dataset, config, run.summary or {})
    document["status"] = effective_status(run)
    document["cost"] = run_cost(run, load_prices())
    document["config"] = {k: v for k, v in run.config.items() if k != "grader_template"}
    document["medops_version"] = run.medops_version
    document["created_at"] = run.created_at.isoformat()
    document["error"] = run.error
    if as_json:
        print(json.dumps(document, ensure_ascii=False))
        return
    out.print(f"status: {document['status']}   medops {run.medops_version}   created {document['created_at'][:19]}")
    if run.error:
        out.print(f"error: {escape(run.error)}")
    if config.task == "meta-eval":
        print_meta_eval_summary(out, run, dataset, run.summary or {})
    else:
        print_healthbench_summary(out, run, dataset, run.summary or {})
