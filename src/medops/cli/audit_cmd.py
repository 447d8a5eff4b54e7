"""``medops audit list``, ``medops audit verify`` and ``medops audit export``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from medops.audit import trail
from medops.cli.console import err, out
from medops.cli.options import DB_OPTION, JSON_OPTION
from medops.errors import UserError
from medops.store.repository import Store

app = typer.Typer(help="The tamper-evident audit trail (see docs/PRIVACY.md).", no_args_is_help=True)


def _short(details: dict) -> str:
    return ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in details.items() if v is not None)


@app.command("list")
def list_cmd(
    limit: int = typer.Option(None, "--limit", min=1, help="Only the newest N events."),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The recorded events, oldest first: time, actor, action, target, details."""
    found = trail.events(Store.open(db, create=False), last=limit)
    if as_json:
        print(json.dumps(found, ensure_ascii=False))
        return
    if not found:
        out.print("no audit events yet")
        return
    table = Table(show_edge=False)
    for column in ("seq", "time (UTC)", "actor", "action", "target", "details"):
        table.add_column(column, justify="right" if column == "seq" else "left", no_wrap=column != "details")
    for event in found:
        table.add_row(
            str(event["seq"]),
            event["time"],
            escape(event["actor"]),
            escape(event["action"]),
            escape(event["target"]),
            escape(_short(event["details"])),
        )
    out.print(table)


@app.command("verify")
def verify_cmd(db: str = DB_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Recompute every hash in order: exit 0 when the chain is intact, 1 naming the first event that
    was edited, deleted or reordered, 2 when keyed events cannot be checked (MEDOPS_AUDIT_KEY unset)."""
    result = trail.verify(Store.open(db, create=False))
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    if not result.intact:
        if not as_json:
            out.print(f"[red]{escape(result.describe())}[/]")
        raise typer.Exit(1)
    if result.unverified:
        raise UserError(
            f"{result.unverified} of {result.events} audit events are keyed (HMAC): set {trail.KEY_ENV} "
            "to the store's audit key to verify them"
        )
    if not as_json:
        out.print(escape(result.describe()))


@app.command("export")
def export_cmd(
    output: Path = typer.Option(..., "-o", "--output", help="JSONL file to write (one event per line)."),
    db: str = DB_OPTION,
) -> None:
    """Write the whole chain as JSONL, verifiable offline (docs/PRIVACY.md, "The audit trail")."""
    count = trail.export(Store.open(db, create=False), output)
    err.print(f"wrote {count} audit events to {output}")
