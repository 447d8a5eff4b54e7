"""``medops monitor check``, ``medops monitor drift`` and ``medops monitor alerts``.

``check`` exits 1 when a NEW alert fired in the (last) round, 0 when none did (rules that fail
inside their cooldown are printed as suppressed and do not count: cron and CI see each alert
once), 2 for a usage error (a bad policy, a webhook URL variable that is not set).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from medops import api
from medops.cli.console import err, out
from medops.cli.monitor_cmd import app
from medops.cli.options import DB_OPTION, JSON_OPTION
from medops.monitor.alerts import FAILED, FIRED, SKIPPED, SUPPRESSED, CheckResult, Finding, check
from medops.monitor.drift import drift_table, iso
from medops.monitor.policy import MonitorPolicy, load_monitor_policy
from medops.monitor.windows import parse_duration, parse_since
from medops.store.repository import Store


def _delivery_text(finding: Finding) -> str:
    parts = [
        f"{d['webhook']} ok" if d["ok"] else f"{d['webhook']} FAILED ({d.get('error') or d.get('status')})"
        for d in finding.deliveries
    ]
    return "; ".join(parts) or "no webhooks"


def arms_counted(policy: MonitorPolicy) -> str:
    """Which arms the policy's exchange rules count (rules may name their own ``arm``)."""
    own = sorted({r.arm for r in policy.rules if r.arm is not None})
    base = f"arm {policy.arm}" if policy.arm is not None else "every arm (primary, candidate, shadow)"
    return base + (f"; rules naming their own: {', '.join(own)}" if own else "")


def _print_round(result: CheckResult, policy: MonitorPolicy) -> None:
    out.print(f"exchange rules count {arms_counted(policy)} (the policy's `arm`; `monitor traffic` counts every arm)")
    for f in result.findings:
        if f.outcome == FIRED:
            mark = "[red]FIRED[/]     "
            tail = escape(f" [alert {f.alert_id}; {_delivery_text(f)}]")
        elif f.outcome == SUPPRESSED:
            mark = "[yellow]SUPPRESSED[/]"
            tail = escape(f" [alert {f.alert_id} fired within the cooldown; not sent again]")
        elif f.status == SKIPPED:
            mark, tail = "[dim]SKIPPED[/]   ", ""
        else:
            mark, tail = "[green]OK[/]        ", ""
        out.print(f"{mark} {escape(f.rule)}: {escape(f.message)}{tail}")
    failed = sum(f.status == FAILED for f in result.findings)
    out.print(
        f"{len(result.fired)} alert{'s' if len(result.fired) != 1 else ''} fired, "
        f"{len(result.suppressed)} suppressed (cooldown), {failed} rule{'s' if failed != 1 else ''} failing, "
        f"{sum(f.status == SKIPPED for f in result.findings)} skipped"
    )


def _warn_failed_deliveries(result: CheckResult) -> None:
    for f in result.fired:
        for d in f.deliveries:
            if not d["ok"]:
                err.print(
                    f"[yellow]warning:[/] alert {f.alert_id} ({escape(f.rule)}) was not delivered to webhook "
                    f"{escape(d['webhook'])}: {escape(str(d.get('error') or d.get('status')))} "
                    f"after {d['attempts']} tries (recorded in the alert's deliveries)",
                    soft_wrap=True,
                )


@app.command("check")
def check_cmd(
    policy: Path = typer.Option(..., "--policy", help="Monitor policy YAML (see docs/monitor.yaml)."),
    every: str = typer.Option(
        None, "--every", help="Check again every DURATION (5m, 1h) until Ctrl-C; the exit status is the last round's."
    ),
    since: str = typer.Option(
        None, "--since", help="The current window starts here (duration back from now, or ISO time), not at -window."
    ),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Evaluate the policy's drift and alert rules; send new alerts to its webhooks.

    Exit 1 when a new alert fired (in the last round), 0 when none did (alerts inside their
    cooldown are printed as suppressed), 2 for a usage error."""
    rules = load_monitor_policy(policy)
    interval = parse_duration(every).total_seconds() if every else None
    since_at = parse_since(since)
    for webhook in rules.webhooks:  # an unset URL variable is a usage error before the store is read
        webhook.resolved_url()
    store = Store.open(db, create=False)
    status = 0
    try:
        while True:
            started = time.monotonic()
            result = check(store, rules, since=since_at)
            status = 1 if result.fired else 0
            pruned = _apply_retention(store, rules)
            if as_json:
                checked = {"checked_at": iso(datetime.now(timezone.utc)), "arms": arms_counted(rules)}
                print(json.dumps({**checked, **result.to_dict(), **pruned}), flush=True)
            else:
                _print_round(result, rules)
                if pruned:
                    counts = pruned["retention"]["deleted"]
                    out.print(
                        "retention: deleted " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items())
                    )
            _warn_failed_deliveries(result)
            if interval is None:
                break
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        err.print("stopped")
    raise typer.Exit(status)


def _apply_retention(store: Store, rules: MonitorPolicy) -> dict[str, Any]:
    """The policy's ``retention``, applied after the round's rules have read the window."""
    if rules.retention is None or not rules.retention.limits():
        return {}
    from medops.monitor.retention import Retention, prune

    return {"retention": prune(store, Retention(**rules.retention.limits()))}


def _summary(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.2f}" for k, v in list(value.items())[:3]) + (" ..." if len(value) > 3 else "")
    return f"{value:.4g}"


@app.command("drift")
def drift_cmd(
    window: str = typer.Option("1h", "--window", help="The current window: the last DURATION."),
    reference: str = typer.Option("7d", "--reference", help="The reference: the DURATION before the window."),
    arm: str = typer.Option("primary", "--arm", help="Which arm's traffic ('all' for every arm)."),
    min_samples: int = typer.Option(20, "--min-samples", min=1, help="Tests need this many values per window."),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The drift table: every exchange metric of the window against the reference (no alerts)."""
    table_doc = drift_table(
        Store.open(db, create=False),
        window=parse_duration(window),
        reference=parse_duration(reference),
        arm=None if arm == "all" else arm,
        min_samples=min_samples,
    )
    if as_json:
        print(json.dumps(table_doc, ensure_ascii=False))
        return
    cur, ref = table_doc["current"], table_doc["reference"]
    table = Table(
        title=f"window {cur['start']}..{cur['end']} ({cur['exchanges']} exchanges) vs reference "
        f"{ref['start']}..{ref['end']} ({ref['exchanges']})",
        title_justify="left",
        show_edge=False,
    )
    for column in ("metric", "n ref", "n cur", "reference", "current", "PSI", "test", "statistic", "p", "note"):
        table.add_column(column, justify="left" if column in ("metric", "reference", "current", "note") else "right")
    for row in table_doc["metrics"]:
        table.add_row(
            row["metric"],
            str(row["n_reference"]),
            str(row["n_current"]),
            escape(_summary(row["reference"])),
            escape(_summary(row["current"])),
            _summary(row["psi"]),
            row["test"] or "-",
            _summary(row["statistic"]),
            "-" if row["p_value"] is None else f"{row['p_value']:.3g}",
            row["note"] or "",
        )
    out.print(table)
    p95 = table_doc["latency_p95_s"]
    out.print(f"latency p95: {_summary(p95['reference'])} s (reference), {_summary(p95['current'])} s (window)")
    out.print("PSI: < 0.1 no real change, 0.1-0.25 moderate, > 0.25 major; p small: the windows differ")


@app.command("alerts")
def alerts_cmd(
    since: str = typer.Option(None, "--since", help="Only alerts since (duration back from now, or ISO time)."),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many, newest first."),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Alert history, newest first: what fired, when, and where it was delivered."""
    records = api.alerts(db=Store.open(db, create=False), since=parse_since(since), limit=limit)
    if as_json:
        print(json.dumps(records, ensure_ascii=False))
        return
    if not records:
        out.print("no alerts")
        return
    table = Table(show_edge=False)
    for column in ("id", "time", "severity", "rule", "message", "deliveries"):
        table.add_column(column)
    for r in records:
        delivered = ", ".join(f"{d['webhook']} {'ok' if d['ok'] else 'failed'}" for d in r["deliveries"]) or "-"
        table.add_row(
            str(r["id"]), r["created_at"], r["severity"], escape(r["rule"]), escape(r["message"]), escape(delivered)
        )
    out.print(table)
