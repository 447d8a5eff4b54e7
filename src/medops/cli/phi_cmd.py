"""`medops phi scan FILE` and `medops phi redact IN -o OUT`: PHI in JSONL, CSV and text files."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from medops.cli.console import err, out

app = typer.Typer(
    help="Find and redact PHI (names, resident numbers, phones, addresses, ...) in files.", no_args_is_help=True
)


@app.command("scan")
def scan(
    file: Path = typer.Argument(..., help="A .jsonl, .csv or text file.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
    show: bool = typer.Option(False, "--show", help="Also print the values found (PHI: off by default)."),
) -> None:
    """Count PHI by type and line; the values themselves only with --show."""
    from medops.privacy.files import scan_file

    report = scan_file(file, show=show)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return
    out.print(
        f"{escape(report['file'])}: {report['entities']} PHI entities on {report['lines_with_phi']} of "
        f"{report['lines']} lines"
    )
    if report["counts"]:
        table = Table("type", "count", "lines")
        lines: dict[str, list[int]] = {}
        for f in report["findings"]:
            lines.setdefault(f["type"], [])
            if f["line"] not in lines[f["type"]]:
                lines[f["type"]].append(f["line"])
        for kind, n in report["counts"].items():
            shown = ", ".join(map(str, lines[kind][:12])) + (" ..." if len(lines[kind]) > 12 else "")
            table.add_row(kind, str(n), shown)
        out.print(table)
    if show:
        for f in report["findings"]:
            where = f"{f['line']}" + (f" {f['field']}" if "field" in f else "")
            out.print(f"{escape(where)}: {f['type']} {escape(f['value'])}")


@app.command("redact")
def redact(
    src: Path = typer.Argument(..., metavar="IN", help="A .jsonl, .csv or text file.", show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the redacted copy.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT when it exists."),
) -> None:
    """Write a copy with PHI replaced by [TYPE_n] placeholders (consistent within a line / row / file)."""
    from medops.errors import UserError
    from medops.privacy.files import redact_file

    if output.resolve() == src.resolve():
        raise UserError(f"{output}: the output must not be the input file")
    if output.exists() and not force:
        raise UserError(f"{output} exists; give --force to overwrite it")
    report = redact_file(src, output)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return
    counts = ", ".join(f"{k} {v}" for k, v in report["counts"].items()) or "none found"
    err.print(f"redacted {report['entities']} PHI entities ({escape(counts)}) -> {escape(report['output'])}")
