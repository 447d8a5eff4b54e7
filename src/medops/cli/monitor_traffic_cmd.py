"""``medops gateway``, ``medops monitor traffic`` and ``medops monitor ingest``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from medops.cli.console import err, out
from medops.cli.monitor_cmd import app
from medops.cli.options import DB_OPTION, JSON_OPTION
from medops.errors import UserError
from medops.monitor.windows import parse_since
from medops.privacy.guard import chosen_policy

GATEWAY_PHI_HELP = (
    "redact | block | allow: what of the request and answer text is stored (default: MEDOPS_PHI_POLICY, "
    "else redact). block stores metadata only."
)


def _policy(flag: str | None) -> str:
    return chosen_policy(flag) or "redact"


def _key(env: str | None, option: str) -> str | None:
    if not env:
        return None
    value = os.environ.get(env)
    if not value:
        raise UserError(f"{option} {env}: the variable is not set")
    return value


def gateway(
    upstream: str = typer.Option(..., "--upstream", help="The production model server (OpenAI-compatible base URL)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port to listen on."),
    candidate: str = typer.Option(None, "--candidate", help="A/B: the candidate model server's base URL."),
    split: float = typer.Option(0.1, "--split", min=0.0, max=1.0, help="A/B: share of conversations it answers."),
    seed: int = typer.Option(0, "--seed", help="A/B: seed of the per-conversation assignment."),
    shadow: str = typer.Option(
        None, "--shadow", help="Copy every request to this server; its answers are recorded, never returned."
    ),
    shadow_timeout: float = typer.Option(60.0, "--shadow-timeout", min=0.001, help="Seconds a shadow copy may take."),
    timeout: float = typer.Option(600.0, "--timeout", min=0.001, help="Seconds an upstream request may take."),
    api_key_env: str = typer.Option(
        None, "--api-key-env", help="Clients must present this variable's key (Authorization: Bearer or X-Medops-Key)."
    ),
    upstream_key_env: str = typer.Option(
        None, "--upstream-key-env", help="Send this variable's key upstream (default: the client's Authorization)."
    ),
    phi_policy: str = typer.Option(None, "--phi-policy", help=GATEWAY_PHI_HELP),
    queue_size: int = typer.Option(10_000, "--queue-size", min=1, help="Exchanges waiting to be recorded, at most."),
    redaction_workers: int = typer.Option(
        None,
        "--redaction-workers",
        min=1,
        help="Processes applying the PHI policy to recorded text (default: one per core the gateway may use).",
    ),
    record_overflow: str = typer.Option(
        "drop",
        "--record-overflow",
        help="drop | backpressure: when recording cannot keep up, drop the exchange and count it (queue_full), "
        "or make requests wait for room so that nothing served goes unrecorded.",
    ),
    max_connections: int = typer.Option(1000, "--max-connections", min=1, help="Connections to the upstream."),
    max_body_mb: float = typer.Option(
        16.0, "--max-body-mb", min=0.001, help="Larger request bodies are refused (413) before they are read."
    ),
    db: str = DB_OPTION,
) -> None:
    """Serve an OpenAI-compatible proxy in front of --upstream, recording every exchange; /metrics for Prometheus."""
    import uvicorn

    from medops.models.spec import mask_url_credentials
    from medops.models.targets import gateway_targets
    from medops.monitor.gateway import Gateway
    from medops.monitor.recorder import Recorder
    from medops.monitor.routing import Routing

    targets = gateway_targets(upstream, candidate=candidate, shadow=shadow, upstream_key_env=upstream_key_env)
    policy = _policy(phi_policy)
    api_key = _key(api_key_env, "--api-key-env")
    upstream_key = targets["production"].api_key("--upstream-key-env")
    from medops.monitor.recorder import OVERFLOW_POLICIES

    if record_overflow not in OVERFLOW_POLICIES:
        raise UserError(f"--record-overflow {record_overflow}: must be one of {', '.join(OVERFLOW_POLICIES)}")
    recorder = Recorder(
        db, policy=policy, queue_size=queue_size, redaction_workers=redaction_workers, overflow=record_overflow
    )
    routing = Routing.for_targets(targets, split=split, seed=seed)
    proxy = Gateway(
        upstream,
        recorder=recorder,
        routing=routing,
        api_key=api_key,
        upstream_key=upstream_key,
        timeout_s=timeout,
        shadow_timeout_s=shadow_timeout,
        max_connections=max_connections,
        max_body_mb=max_body_mb,
    )
    mode = ""
    if candidate:
        mode = f", {split:.0%} of conversations to the candidate (seed {seed})"
    elif shadow:
        mode = ", shadow copies to the candidate"
    err.print(
        f"medops gateway on http://{host}:{port} -> {escape(mask_url_credentials(upstream) or '')}{mode}; "
        f"PHI policy {policy}"
        + (f" ({recorder.redaction_workers} redaction workers)" if policy == "redact" else "")
        + f"; recording overflow: {record_overflow}; /metrics for Prometheus",
        soft_wrap=True,
    )
    uvicorn.run(
        proxy.app(),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=75,
        backlog=4096,
    )


def _exchange_dict(ex: Any) -> dict[str, Any]:
    return {
        "id": ex.id,
        "created_at": ex.created_at.isoformat() if ex.created_at else None,
        "source": ex.source,
        "route": ex.route,
        "model": ex.model,
        "response_model": ex.response_model,
        "arm": ex.arm,
        "pair_id": ex.pair_id,
        "conversation_id": ex.conversation_id,
        "department": ex.department,
        "application": ex.application,
        "stream": ex.stream,
        "status": ex.status,
        "error": ex.error,
        "latency_s": ex.latency_s,
        "ttft_s": ex.ttft_s,
        "prompt_tokens": ex.prompt_tokens,
        "completion_tokens": ex.completion_tokens,
        "finish_reason": ex.finish_reason,
        "messages": ex.messages,
        "response": ex.response,
        "notes": ex.notes,
    }


@app.command("traffic")
def traffic(
    since: str = typer.Option("1h", "--since", help="How far back: 90s, 30m, 1h, 7d, or an ISO time."),
    limit: int = typer.Option(20, "--limit", min=0, help="The newest N exchanges to list."),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """What the gateway recorded (and what was ingested): how many exchanges of every arm (primary,
    candidate, shadow copies; `monitor check` counts the arm its policy names), and the newest ones."""
    from medops.store.exchanges import count_by_arm, count_exchanges, exchanges
    from medops.store.repository import Store

    start = parse_since(since)
    store = Store.open(db, create=False)
    total = count_exchanges(store, since=start)
    by_arm = count_by_arm(store, since=start)
    newest = exchanges(store, since=start, limit=limit, newest_first=True) if limit else []
    if as_json:
        document = {
            "since": start.isoformat(),
            "n_exchanges": total,
            "arms": "all",
            "n_by_arm": by_arm,
            "exchanges": [_exchange_dict(e) for e in newest],
        }
        print(json.dumps(document, ensure_ascii=False, default=str))
        return
    arms = ", ".join(f"{arm} {n}" for arm, n in by_arm.items())
    out.print(
        f"{total} exchanges of every arm{f' ({arms})' if arms else ''} since {start:%Y-%m-%d %H:%M:%S} UTC"
        + (f"; the newest {len(newest)}:" if newest else "")
    )
    if not newest:
        return
    table = Table(show_edge=False)
    for column in (
        "time (UTC)",
        "arm",
        "model",
        "status",
        "latency",
        "ttft",
        "tokens in/out",
        "department",
        "application",
    ):
        table.add_column(column, no_wrap=True)
    for e in newest:
        table.add_row(
            f"{e.created_at:%H:%M:%S}",
            e.arm,
            escape(e.model or "-"),
            str(e.status) if e.status is not None else escape(f"- ({e.error or 'no answer'})"),
            f"{e.latency_s * 1000:.0f} ms" if e.latency_s is not None else "-",
            f"{e.ttft_s * 1000:.0f} ms" if e.ttft_s is not None else "-",
            f"{e.prompt_tokens if e.prompt_tokens is not None else '-'}/"
            f"{e.completion_tokens if e.completion_tokens is not None else '-'}",
            escape(e.department or "-"),
            escape(e.application or "-"),
        )
    out.print(table)


@app.command("ingest")
def ingest(
    file: Path = typer.Argument(
        ..., help="JSONL of OpenAI-style request/response pairs, or OpenTelemetry GenAI spans."
    ),
    phi_policy: str = typer.Option(None, "--phi-policy", help=GATEWAY_PHI_HELP),
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Record traffic logged elsewhere, as the gateway would have (PHI policy included)."""
    from medops.monitor.ingest import read_traffic
    from medops.store.exchanges import insert_exchanges
    from medops.store.repository import Store

    policy = _policy(phi_policy)
    found = read_traffic(file, policy=policy)
    store = Store.open(db)
    written = insert_exchanges(store, found.rows)
    result = {
        "file": file.name,
        "ingested": written,
        "formats": found.formats,
        "skipped_spans": found.skipped,
        "phi_policy": policy,
        "phi_entities": found.phi_entities,
    }
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    kinds = ", ".join(f"{n} {kind}" for kind, n in found.formats.items() if n) or "nothing"
    skipped = f"; {found.skipped} spans without gen_ai attributes skipped" if found.skipped else ""
    redacted = sum(found.phi_entities.values())
    out.print(
        f"ingested {written} exchanges from {escape(file.name)} ({kinds}){skipped}; PHI policy {policy}"
        + (f", {redacted} entities redacted" if redacted else "")
    )
    if written == 0:
        print("nothing to ingest", file=sys.stderr)
