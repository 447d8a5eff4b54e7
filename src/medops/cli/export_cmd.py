"""``medops export``: one row per graded criterion, for analysis elsewhere."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from enum import Enum
from pathlib import Path

import typer

from medops.cli.options import DB_OPTION
from medops.reports.export import criterion_rows
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
    """Export a run: example_index, prompt_id, criterion_index, criterion, points, tags, criteria_met, ..."""
    rows = criterion_rows(Store.open(db), run_ref)
    buffer = io.StringIO()
    if fmt is ExportFormat.jsonl:
        for row in rows:
            buffer.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["example_index"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "tags": ";".join(row["tags"])})
    if output is None:
        sys.stdout.write(buffer.getvalue())
        return
    # Write beside the target, then rename: a failure never leaves half a file.
    fd, tmp = tempfile.mkstemp(dir=output.resolve().parent, prefix=f".{output.name}.")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(buffer.getvalue())
    os.replace(tmp, output)
