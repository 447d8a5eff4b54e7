"""``medops export``: one row per graded criterion (or exam answer), for analysis elsewhere."""

from __future__ import annotations

import os
import sys
import tempfile
from enum import Enum
from pathlib import Path

import typer

from medops import api
from medops.cli.options import DB_OPTION
from medops.store.repository import Store


class ExportFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"


def export(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id or name."),
    fmt: ExportFormat = typer.Option(ExportFormat.jsonl, "--format"),
    output: Path = typer.Option(None, "-o", "--output", help="File to write [default: stdout]."),
    db: str = DB_OPTION,
) -> None:
    """Export a run: one row per criterion (example_index, prompt_id, criterion, points, tags, criteria_met, ...)
    or per exam answer (item_id, gold, predicted, rule, correct, ...)."""
    text = api.export(run_ref, db=Store.open(db, create=False), fmt=fmt.value, destination=output)
    if output is None:
        sys.stdout.write(text)
        return
    # Write beside the target, then rename: a failure never leaves half a file.
    fd, tmp = tempfile.mkstemp(dir=output.resolve().parent, prefix=f".{output.name}.")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    os.replace(tmp, output)
