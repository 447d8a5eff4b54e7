"""``medops report``."""

from __future__ import annotations

import os
import sys
import tempfile
from enum import Enum
from pathlib import Path

import typer

from medops import api
from medops.cli.console import err
from medops.cli.options import DB_OPTION
from medops.store.repository import Store


class ReportFormat(str, Enum):
    html = "html"
    md = "md"


def report(
    run: str = typer.Argument(..., metavar="RUN", help="The candidate run (id or name)."),
    baseline: str = typer.Option(
        None, "--baseline", "--vs", help="The baseline run: adds the paired comparison (--vs: the same, older name)."
    ),
    output: Path = typer.Option(None, "-o", "--output", help="File to write [default: stdout]."),
    fmt: ReportFormat = typer.Option(
        ReportFormat.html, "--format", help="html (self-contained page) or md (a summary for a pull-request comment)."
    ),
    db: str = DB_OPTION,
) -> None:
    """A report of a run: one self-contained HTML file, or Markdown."""
    text = api.report(run, db=Store.open(db, create=False), vs=baseline, fmt=fmt.value, destination=output)
    if output is None:
        sys.stdout.write(text)
        return
    fd, tmp = tempfile.mkstemp(dir=output.resolve().parent, prefix=f".{output.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, output)
    err.print(f"wrote {output}")
