"""``medops store prune``, ``medops store backup`` and ``medops store restore`` (docs/OPERATIONS.md)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import typer

from medops.audit import trail
from medops.cli.console import out
from medops.cli.options import DB_OPTION, JSON_OPTION
from medops.errors import UserError
from medops.monitor.retention import Retention, prune
from medops.monitor.windows import parse_duration
from medops.store import backup as backups
from medops.store.repository import Store

app = typer.Typer(help="Retention, backups and restores of the store.", no_args_is_help=True)


def _limit(value: str | None, flag: str):
    if value is None:
        return None
    try:
        return parse_duration(value)
    except UserError as exc:
        raise UserError(f"{flag}: {exc}") from None


@app.command("prune")
def prune_cmd(
    exchanges: str = typer.Option(None, "--exchanges-older-than", help="Delete exchanges older than DURATION (90d)."),
    scores: str = typer.Option(None, "--scores-older-than", help="Delete monitor score rows older than DURATION."),
    canary_runs: str = typer.Option(
        None, "--canary-runs-older-than", help="Delete runs canary rounds made, older than DURATION."
    ),
    online_runs: str = typer.Option(
        None, "--online-runs-older-than", help="Delete runs online grading made, older than DURATION."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be deleted; delete nothing."),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Delete what is older than its limit (runs a gate decision or a review set refers to are kept);
    the counts go to the audit trail (store.prune)."""
    retention = Retention(
        exchanges=_limit(exchanges, "--exchanges-older-than"),
        scores=_limit(scores, "--scores-older-than"),
        canary_runs=_limit(canary_runs, "--canary-runs-older-than"),
        online_runs=_limit(online_runs, "--online-runs-older-than"),
    )
    if not retention.limits():
        raise UserError(
            "store prune: give at least one of --exchanges-older-than, --scores-older-than, "
            "--canary-runs-older-than, --online-runs-older-than"
        )
    result = prune(Store.open(db, create=False), retention, dry_run=dry_run)
    if as_json:
        print(json.dumps(result))
        return
    counts = result["would_delete" if dry_run else "deleted"]
    verb = "would delete" if dry_run else "deleted"
    out.print(f"{verb}: " + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items()))
    if result["kept_referenced_runs"]:
        kept = ", ".join(map(str, result["kept_referenced_runs"]))
        out.print(f"kept (a gate decision or a review set refers to them): runs {kept}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@app.command("backup")
def backup_cmd(
    output: Path = typer.Option(..., "-o", "--output", help="The backup file to write."),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """An online, consistent copy of the store (SQLite's backup API; pg_dump on PostgreSQL). The
    backup is recorded in the trail first (store.backup), so the copy holds its own record."""
    store = Store.open(db, create=False)
    event = trail.record(store, "store.backup", "store", {"file": output.name})
    store.engine.dispose()
    kind = backups.backup(db, output)
    result = {"file": str(output), "kind": kind, "sha256": _sha256(output), "audit_head_seq": event["seq"]}
    if as_json:
        print(json.dumps(result))
        return
    out.print(
        f"backup of the {kind} store written to {output} (sha256 {result['sha256'][:16]}..., "
        f"audit trail to event {event['seq']})"
    )


@app.command("restore")
def restore_cmd(
    backup_file: Path = typer.Argument(..., help="A file written by `medops store backup`."),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Replace the store at --db with a backup (stop the gateway and the dashboard first), then
    verify its audit trail and record the restore in it (store.restore). Exit 1 when the restored
    trail does not verify."""
    if not backup_file.is_file():
        raise UserError(f"no backup file at {backup_file}")
    kind = backups.restore(backup_file, db)
    store = Store.open(db, create=False)  # migrated here when the backup came from an older medops
    checked = trail.verify(store)
    if checked.intact:
        trail.record(store, "store.restore", "store", {"file": backup_file.name, "sha256": _sha256(backup_file)})
    result = {"file": str(backup_file), "kind": kind, "audit": checked.to_dict()}
    if as_json:
        print(json.dumps(result))
    else:
        out.print(f"restored the {kind} store from {backup_file}; audit trail: {checked.describe()}")
    if not checked.intact:
        raise typer.Exit(1)
