"""``medops audit list``, ``medops audit verify`` and ``medops audit export``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from medops.audit import anchors, trail
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
    store = Store.open(db, create=False)
    trail.flush(store)  # refusal tallies of the minutes that have passed
    found = trail.events(store, last=limit)
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
def verify_cmd(
    unkeyed_before: int = typer.Option(
        None,
        "--unkeyed-before",
        min=1,
        help="Declare (recorded, keyed) that the unkeyed events before SEQ were recorded before the site set "
        "MEDOPS_AUDIT_KEY; without it, a keyed check refuses every unkeyed event.",
    ),
    anchor_file: Path = typer.Option(
        None, "--anchors", help="A file of anchors (medops audit anchor): fail when the trail is shorter or differs."
    ),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Recompute every hash in order: exit 0 when the chain is intact, 1 naming the first event that
    was edited, deleted or reordered (or the anchor it fails), 2 when keyed events cannot be checked
    (MEDOPS_AUDIT_KEY unset)."""
    found_anchors = anchors.read(anchor_file) if anchor_file is not None else None
    store = Store.open(db, create=False)
    trail.flush(store)
    if unkeyed_before is not None:
        declared = trail.declare_unkeyed_before(store, unkeyed_before)
        if not declared.intact:
            if as_json:
                print(json.dumps(declared.to_dict(), ensure_ascii=False))
            else:
                out.print(f"[red]{escape(declared.describe())}[/] (nothing declared)")
            raise typer.Exit(1)
    result = trail.verify(store, anchors=found_anchors)
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
        checked = f"; {result.anchors} anchors agree" if result.anchors else ""
        out.print(escape(result.describe() + checked))


@app.command("anchor")
def anchor_cmd(
    to: list[str] = typer.Option(
        None,
        "--to",
        help="Where to write the head: a file (appended), syslog[:ADDRESS], or an http(s):// webhook. "
        f"Repeatable; default {anchors.SINKS_ENV} (comma-separated).",
    ),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Write the trail's head (seq, hash, time, key id) outside the database, for verify --anchors.
    Run it on a schedule (docs/PRIVACY.md); medops also writes one after every gate decision."""
    sinks = anchors.chosen_sinks(list(to) if to else None)  # a missing sink is said before the store is read
    found = anchors.anchor(Store.open(db, create=False), sinks)
    if as_json:
        print(json.dumps(found, ensure_ascii=False))
    else:
        out.print(f"anchored event {found['seq']}, hash {found['hash']}")


@app.command("export")
def export_cmd(
    output: Path = typer.Option(..., "-o", "--output", help="JSONL file to write (one event per line)."),
    db: str = DB_OPTION,
) -> None:
    """Write the whole chain as JSONL, verifiable offline (docs/PRIVACY.md, "The audit trail")."""
    store = Store.open(db, create=False)
    trail.flush(store)
    count = trail.export(store, output)
    err.print(f"wrote {count} audit events to {output}")
