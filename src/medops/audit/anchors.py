"""Anchors: the trail's head (seq, hash, time, key id) written outside the database, so that
cutting the newest events (and re-chaining what is left) shows: ``medops audit verify --anchors``
fails when the trail is shorter than, or disagrees with, any anchor. See docs/PRIVACY.md.

A sink is a file path (appended to, one JSON line per anchor: keep it on another volume, made
append-only), ``syslog`` / ``syslog:/dev/log`` / ``syslog:HOST:PORT`` (UDP), or an ``http(s)://``
URL (the anchor POSTed as JSON). ``MEDOPS_AUDIT_ANCHORS`` (comma-separated sinks) is where
``medops audit anchor`` writes by default, and where an anchor goes after every gate decision.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import socket
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from medops.audit import trail
from medops.errors import UserError
from medops.store import audit as rows
from medops.store.repository import Store

SINKS_ENV = "MEDOPS_AUDIT_ANCHORS"
AFTER = frozenset({"gate.decision"})  # actions followed by an anchor when sinks are configured
FIELDS = ("seq", "hash", "time", "key_id")


def sinks_from_env() -> list[str]:
    return [part.strip() for part in os.environ.get(SINKS_ENV, "").split(",") if part.strip()]


def _label(sink: str) -> str:
    """A sink as it may be shown: a URL without credentials, query or path."""
    if sink.startswith(("http://", "https://")):
        parts = urlsplit(sink)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/..."
    return sink


def head(store: Store) -> dict[str, Any]:
    """The anchor of the trail as it is now: its last event's seq and hash (0 and 64 zeros when
    empty), the time, and the key id of that event."""
    last = list(rows.events(store, last=1))
    event = last[0] if last else {"seq": 0, "hash": rows.GENESIS, "key_id": None}
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"seq": event["seq"], "hash": event["hash"], "time": now, "key_id": event["key_id"]}


def _to_file(path: str, line: str) -> None:
    with open(Path(path).expanduser(), "a", encoding="utf-8") as handle:  # O_APPEND: never rewrites
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _to_syslog(address: str, line: str) -> None:
    if not address:
        target: Any = "/dev/log"
    elif address.startswith("/"):
        target = address
    else:
        host, _, port = address.rpartition(":")
        target = (host or "localhost", int(port))
    handler = logging.handlers.SysLogHandler(
        address=target, facility=logging.handlers.SysLogHandler.LOG_AUTH, socktype=socket.SOCK_DGRAM
    )
    try:
        handler.emit(logging.makeLogRecord({"msg": f"medops audit anchor {line}", "levelno": logging.INFO,
                                            "levelname": "INFO"}))  # fmt: skip
    finally:
        handler.close()


def _to_webhook(url: str, line: str) -> None:
    request = urllib.request.Request(
        url, data=line.encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        if not 200 <= answer.status < 300:
            raise OSError(f"answered {answer.status}")


def write(anchor: dict[str, Any], sinks: list[str]) -> None:
    """Write one anchor to every sink; a UserError naming each sink that failed, after trying all."""
    line = json.dumps({field: anchor[field] for field in FIELDS}, sort_keys=True)
    failures = []
    for sink in sinks:
        try:
            if sink.startswith(("http://", "https://")):
                _to_webhook(sink, line)
            elif sink == "syslog" or sink.startswith("syslog:"):
                _to_syslog(sink.partition(":")[2], line)
            else:
                _to_file(sink.removeprefix("file:"), line)
        except (OSError, ValueError, urllib.error.URLError) as exc:
            failures.append(f"{_label(sink)}: {getattr(exc, 'reason', None) or exc}")
    if failures:
        raise UserError(f"audit anchor (event {anchor['seq']}) not written to " + "; ".join(failures))


def chosen_sinks(sinks: list[str] | None) -> list[str]:
    """``sinks``, else those of ``MEDOPS_AUDIT_ANCHORS``; none at all is a one-line error."""
    sinks = sinks if sinks is not None else sinks_from_env()
    if not sinks:
        raise UserError(f"no anchor sink: give --to FILE|syslog|URL or set {SINKS_ENV}")
    return sinks


def anchor(store: Store, sinks: list[str] | None = None) -> dict[str, Any]:
    """Write the trail's head to ``sinks`` (default ``MEDOPS_AUDIT_ANCHORS``), after appending the
    refusal tallies of the minutes that have passed; returns the anchor."""
    sinks = chosen_sinks(sinks)
    trail.flush(store)
    found = head(store)
    write(found, sinks)
    return found


def after_gate(store: Store, event: dict[str, Any]) -> None:
    """The hook on every recorded event: after a gate decision, anchor the head (that decision
    included) to the configured sinks."""
    if event["action"] in AFTER and sinks_from_env():
        write(head(store), sinks_from_env())


def read(path: Path) -> list[dict[str, Any]]:
    """Anchors from a file of JSON lines (what a file sink holds; syslog or webhook lines copied
    into one); each gets ``where`` (``FILE:LINE``). A bad line is a UserError naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        start = line.find("{")  # a syslog line carries the JSON after its prefix
        try:
            value = json.JSONDecoder().raw_decode(line[start:])[0] if start >= 0 else None
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise UserError(f"{path}:{number}: not an anchor (a JSON object with {', '.join(FIELDS)})")
        for field, kind in (("seq", int), ("hash", str), ("time", str)):
            if not isinstance(value.get(field), kind) or isinstance(value.get(field), bool):
                raise UserError(f"{path}:{number}: field {field!r} is missing or not {kind.__name__}")
        found.append({**value, "where": f"{path.name}:{number}"})
    return found


trail.AFTER_RECORD.append(after_gate)
