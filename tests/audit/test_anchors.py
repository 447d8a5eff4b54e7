"""Anchors (issue 19.4): the trail's head written outside the database to an append-only file,
syslog (a real UDP socket) and a webhook (a real loopback HTTP receiver), after every gate and on
demand; ``medops audit verify --anchors`` fails, naming the anchor, when the trail was cut short
or cut and re-chained, which the chain alone cannot show."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from test_audit_cli import run_set, seed_events, sql

from medops.audit import anchors, record, trail
from medops.errors import UserError
from medops.store.repository import Store


class Receiver:
    """A webhook receiver on loopback: keeps every body POSTed to it, answers ``status``."""

    def __init__(self, status: int = 204) -> None:
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/medops?secret=abc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.close()


def test_truncation_is_caught_by_the_anchor_it_fails(cli, tmp_path):
    """issue 19.4: deleting the last events, or cutting the tail and re-chaining, left an intact chain."""
    anchor_file = tmp_path / "worm" / "anchors.jsonl"
    anchor_file.parent.mkdir()
    seed_events(cli, 4)
    first = cli.run("audit", "anchor", "--to", str(anchor_file), "--json", check=True).json()
    seed_events(cli, 2)
    second = cli.run("audit", "anchor", "--to", str(anchor_file), "--json", check=True).json()
    assert (first["seq"], second["seq"]) == (4, 6) and second["key_id"] is None
    lines = [json.loads(line) for line in anchor_file.read_text().splitlines()]
    assert lines == [first, second] and set(first) == {"seq", "hash", "time", "key_id"}
    ok = cli.run("audit", "verify", "--anchors", str(anchor_file))
    assert ok.returncode == 0 and "2 anchors agree" in ok.stdout, ok.stdout + ok.stderr

    sql(cli, "DELETE FROM audit_events WHERE id >= 5")  # the newest events deleted
    assert cli.run("audit", "verify").returncode == 0  # what is left is an intact chain
    cut = cli.run("audit", "verify", "--anchors", str(anchor_file), "--json")
    assert cut.returncode == 1 and cut.json()["broken_seq"] == 6
    assert "anchors.jsonl:2" in cut.json()["reason"] and "truncated" in cut.json()["reason"]

    sql(cli, "DELETE FROM audit_events WHERE id >= 3")  # cut further and re-chained to the old length
    seed_events(cli, 3)
    rechained = cli.run("audit", "verify", "--anchors", str(anchor_file))
    assert rechained.returncode == 1 and "anchors.jsonl:1" in rechained.stdout and "rewritten" in rechained.stdout

    anchor_file.write_text('{"seq": 1, "hash": "x", "time": "t"}\nnot an anchor\n')
    bad = cli.run("audit", "verify", "--anchors", str(anchor_file))
    assert bad.returncode == 2 and "anchors.jsonl:2" in bad.stderr and bad.stdout == ""


def test_anchors_go_to_syslog_and_a_webhook(tmp_path, receiver, monkeypatch):
    monkeypatch.delenv("MEDOPS_AUDIT_KEY", raising=False)
    store = Store.open(str(tmp_path / "audit.db"))
    monkeypatch.setenv("MEDOPS_AUDIT_KEY", "k1")
    record(store, "test.event", "run:1", {})
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    written = anchors.anchor(store, [f"syslog:127.0.0.1:{udp.getsockname()[1]}", receiver.url])
    datagram = udp.recv(65536).decode().rstrip("\x00")
    udp.close()
    assert "medops audit anchor " in datagram
    assert json.loads(datagram[datagram.index("{") :]) == written == receiver.bodies[0]
    assert written["seq"] == 1 and written["key_id"] == trail.events(store)[0]["key_id"] is not None
    # a syslog line copied into a file is read back as the anchor it carries
    copied = tmp_path / "from-syslog.log"
    copied.write_text(f"Dec  4 18:33:01 host {datagram.strip()}\n")
    assert trail.verify(store, anchors=anchors.read(copied)).intact

    failing = Receiver(status=500)
    try:
        with pytest.raises(UserError) as refused:
            anchors.anchor(store, [failing.url, str(tmp_path / "ok.jsonl")])
    finally:
        failing.close()
    assert "not written to http://127.0.0.1" in str(refused.value) and "secret" not in str(refused.value)
    assert (tmp_path / "ok.jsonl").read_text().count("\n") == 1  # the other sinks are still written
    store.engine.dispose()


def test_every_gate_decision_is_anchored(cli, server, tmp_path, receiver):
    anchor_file = tmp_path / "anchors.jsonl"
    env = {"MEDOPS_AUDIT_ANCHORS": f"{anchor_file},{receiver.url}"}
    cli.run(*cli.eval_args(server, run_set(tmp_path)), "--name", "r1", check=True)
    assert not anchor_file.exists()  # runs are not anchored, gates are
    assert cli.run("gate", "r1", "--min", "overall_score=0.1", env=env).returncode == 0
    [decision] = [e for e in cli.run("audit", "list", "--json").json() if e["action"] == "gate.decision"]
    [written] = [json.loads(line) for line in anchor_file.read_text().splitlines()]
    assert (written["seq"], written["hash"]) == (decision["seq"], decision["hash"]) and receiver.bodies == [written]
    assert cli.run("audit", "verify", "--anchors", str(anchor_file)).returncode == 0
    with sqlite3.connect(cli.db) as connection:
        connection.execute("DELETE FROM audit_events WHERE id = ?", (decision["seq"],))  # the gate erased
    erased = cli.run("audit", "verify", "--anchors", str(anchor_file))
    assert erased.returncode == 1 and "truncated" in erased.stdout


def test_an_anchor_needs_a_sink(cli):
    missing = cli.run("audit", "anchor")
    assert missing.returncode == 2 and "MEDOPS_AUDIT_ANCHORS" in missing.stderr
