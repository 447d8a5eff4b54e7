"""``medops review``: review sets for physicians (create, list, status, export, import)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from medops import api
from medops.cli.console import out
from medops.cli.options import DB_OPTION, JSON_OPTION
from medops.store.repository import Store

app = typer.Typer(help="Review sets: physicians label a sample of a rubric run.", no_args_is_help=True)


@app.command("create")
def create(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id or name (a recorded rubric run)."),
    name: str = typer.Option(..., "--name", help="A unique name for the set."),
    sample: int = typer.Option(20, "--sample", min=1, help="How many examples (every criterion of each goes in)."),
    reviewers: int = typer.Option(2, "--reviewers", min=1, help="How many reviewers label each example."),
    strategy: str = typer.Option(
        "stratified", "--strategy", help="stratified (theme x language) | random | disagreement | uncertain."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling."),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Sample examples of a recorded run into a self-contained review set."""
    made = api.create_review_set(
        run_ref, name, sample=sample, reviewers=reviewers, strategy=strategy, seed=seed, db=Store.open(db, create=False)
    )
    if as_json:
        print(json.dumps(made, ensure_ascii=False))
        return
    out.print(
        f"review set {escape(made['name'])}: {made['n_examples']} examples, {made['n_criteria']} criteria "
        f"from run {made['run_id']} ({made['strategy']}), {made['reviewers']} reviewer(s) each"
    )


@app.command("list")
def list_sets(db: str = DB_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Every review set."""
    found = api.review_sets(Store.open(db, create=False))
    if as_json:
        print(json.dumps(found, ensure_ascii=False))
        return
    table = Table(show_edge=False)
    for column in ("name", "run", "strategy", "examples", "criteria", "reviewers", "labels", "created"):
        table.add_column(column)
    for s in found:
        table.add_row(
            escape(s["name"]),
            str(s["run_id"]),
            s["strategy"],
            str(s["n_examples"]),
            str(s["n_criteria"]),
            str(s["reviewers"]),
            str(s["n_labels"]),
            s["created_at"][:19],
        )
    out.print(table)


@app.command("status")
def status(name: str = typer.Argument(..., metavar="NAME"), db: str = DB_OPTION, as_json: bool = JSON_OPTION) -> None:
    """A set's labels, progress per reviewer and agreement."""
    document = api.review_status(name, db=Store.open(db, create=False))
    if as_json:
        print(json.dumps(document, ensure_ascii=False))
        return
    out.print(
        f"review set {escape(document['name'])}: {document['n_examples']} examples, {document['n_criteria']} "
        f"criteria, {document['n_labels']} labels; {document['progress']['n_examples_complete']} examples labelled "
        f"by {document['reviewers']} reviewer(s)"
    )
    for reviewer, p in document["progress"]["reviewers"].items():
        out.print(f"  {escape(reviewer)}: {p['n_labels']} labels ({p['share']:.0%}), {p['n_examples_done']} examples")
    for measure, v in document["agreement"]["physicians"].items():
        if v["value"] is not None:
            interval = f" (95% CI {v['ci_low']:.3f}..{v['ci_high']:.3f})" if v["ci_low"] is not None else ""
            out.print(f"  physicians {measure.replace('_', ' ')}: {v['value']:.3f}{interval}")
    overall = document["agreement"]["grader"]["overall"]
    for key, label in (("grader_vs_majority_macro_f1", "macro-F1"), ("grader_vs_majority_cohen_kappa", "kappa")):
        if overall[key] is not None:
            baseline = overall["physicians_leave_one_out"][key.rsplit("majority_", 1)[1]]
            shown = "-" if baseline is None else f"{baseline:.3f}"
            out.print(f"  grader vs majority {label}: {overall[key]:.3f} (physicians leave-one-out: {shown})")


@app.command("export")
def export(
    name: str = typer.Argument(..., metavar="NAME"),
    output: Path = typer.Option(..., "-o", "--output", help="JSONL file (HealthBench meta-evaluation rows)."),
    db: str = DB_OPTION,
) -> None:
    """The labels as HealthBench meta-evaluation rows: `medops meta-eval --data FILE` measures a grader on them."""
    text = api.export_review(name, db=Store.open(db, create=False), destination=output)
    fd, tmp = tempfile.mkstemp(dir=output.resolve().parent, prefix=f".{output.name}.")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    os.replace(tmp, output)
    out.print(f"wrote {text.count(chr(10))} rows to {escape(str(output))}")


@app.command("import")
def import_labels(
    name: str = typer.Argument(..., metavar="NAME"),
    path: Path = typer.Argument(..., metavar="FILE", help="JSONL or CSV: example_index, criterion_index, met."),
    reviewer: str = typer.Option(..., "--reviewer", help="Who made the labels."),
    db: str = DB_OPTION,
) -> None:
    """A reviewer's labels made elsewhere; nothing is stored when any row is bad."""
    done = api.import_review_labels(name, path, reviewer=reviewer, db=Store.open(db, create=False))
    out.print(f"{done['n_labels']} labels by {escape(done['reviewer'])} stored in review set {escape(name)}")
