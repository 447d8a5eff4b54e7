"""Alerts: ``medops monitor check`` as a process against a real webhook receiver process on
127.0.0.1; cooldown and de-duplication, alert history, audit events, failed deliveries, exit codes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from medops.audit.trail import events as audit_events
from medops.audit.trail import verify
from medops.monitor.alerts import FIRED, SUPPRESSED, check, deliver
from medops.monitor.policy import MonitorPolicy, Webhook, load_monitor_policy
from medops.store.alerts import alerts, last_alert
from medops.store.exchanges import insert_exchanges
from medops.store.repository import Store
from medops.store.scores import add_scores


def traffic(now: datetime) -> list[dict]:
    """A reference week of short English prompts, then a current hour of long Korean prompts with
    more refusals (as in test_drift.py: 7 of 140 refusals before, 14 of 40 now)."""
    rows = []
    for i in range(180):
        current = i >= 140
        at = now - timedelta(minutes=1 + i - 140) if current else now - timedelta(hours=1, minutes=70 * (i + 1))
        korean = "두통이 심하고 열이 나며 구토도 합니다. " * (3 + i % 4)
        text = korean if current else "I have a headache" + "!" * (i % 7)
        refused = (i - 140) % 3 == 0 if current else i % 20 == 0
        answer = ("죄송하지만 답변드릴 수 없습니다." if current else "I can't help with that.") if refused else "Rest."
        rows.append(
            {
                "created_at": at,
                "source": "gateway",
                "route": "/v1/chat/completions",
                "status": 200,
                "latency_s": 1.0 + i % 3,
                "finish_reason": "stop",
                "department": "ER",
                "messages": [{"role": "user", "content": text}],
                "response": answer,
            }
        )
    return rows


RECEIVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

out = sys.argv[1]

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(out, "ab") as f:
            f.write(self.path.encode() + b"\t" + body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@pytest.fixture
def receiver(tmp_path):
    """A webhook receiver process: appends ``path<TAB>body`` of each POST to a file."""
    script, received = tmp_path / "receiver.py", tmp_path / "received.txt"
    script.write_text(RECEIVER)
    proc = subprocess.Popen([sys.executable, str(script), str(received)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}", received
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def posts(received: Path) -> list[tuple[str, dict]]:
    if not received.exists():
        return []
    return [
        (path, json.loads(body)) for path, body in (line.split("\t", 1) for line in received.read_text().splitlines())
    ]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_store(db: Path) -> Store:
    store = Store.open(str(db))
    now = datetime.now(timezone.utc)
    insert_exchanges(store, traffic(now))
    points = []
    for day in range(1, 8):  # a reference of steady online scores, then a bad last hour
        start = now - timedelta(days=day)
        points.append({"window_start": start, "window_end": start + timedelta(hours=1), "value": 0.7, "n": 20})
    start = now - timedelta(minutes=50)
    points.append({"window_start": start, "window_end": start + timedelta(minutes=30), "value": 0.3, "n": 20})
    add_scores(store, [{"source": "online", "metric": "overall_score", **p} for p in points])
    return store


POLICY = """
window: 1h
reference: 7d
cooldown: 1h
webhooks:
  - {{name: generic, url: "{url}/generic", format: json}}
  - {{name: chat, url_env: TEST_SLACK_URL, format: slack}}
  - {{name: down, url: "http://127.0.0.1:{closed}/hook", format: json, timeout_s: 2}}
rules:
  - {{min_exchanges: 20}}
  - {{name: prompt-length, metric: prompt_length, test: psi, max: 0.2}}
  - {{metric: language_mix, test: chi2, max_p: 0.001}}
  - {{metric: refusal_rate, max: 0.1}}
  - {{metric: error_rate, max: 0.05}}
  - {{metric: latency_p95_s, max: 30}}
  - {{metric: "online:overall_score", min: 0.5}}
  - {{metric: "canary:overall_score", min: 0.5}}
"""
FIRING = {"prompt-length", "language_mix:chi2", "refusal_rate", "online:overall_score"}


def test_check_fires_delivers_records_and_cools_down(cli, receiver, tmp_path):
    url, received = receiver
    store = seed_store(cli.db)
    policy = tmp_path / "monitor.yaml"
    policy.write_text(POLICY.format(url=url, closed=closed_port()))
    env = {"TEST_SLACK_URL": f"{url}/slack"}

    first = cli.run("monitor", "check", "--policy", str(policy), "--json", env=env)
    assert first.returncode == 1, first.stderr
    doc = first.json()
    outcome = {f["rule"]: (f["status"], f["outcome"]) for f in doc["findings"]}
    assert {rule for rule, (_, fired) in outcome.items() if fired == FIRED} == FIRING
    assert outcome["min_exchanges"] == ("ok", None) and outcome["error_rate"] == ("ok", None)
    assert outcome["latency_p95_s"] == ("ok", None)
    assert outcome["canary:overall_score"] == ("skipped", None)  # no canary points: nothing to judge
    assert doc["fired"] == 4 and doc["suppressed"] == 0

    # every fired alert reached the generic and the Slack receiver once; the closed port failed twice
    got = posts(received)
    generic = [body for path, body in got if path == "/generic"]
    slack = [body for path, body in got if path == "/slack"]
    assert len(generic) == 4 and len(slack) == 4 and len(got) == 8
    refusal = next(body for body in generic if body["rule"] == "refusal_rate")
    assert set(refusal) >= {"alert", "rule", "metric", "value", "threshold", "window", "message", "medops_version"}
    assert refusal["metric"] == "refusal_rate" and refusal["value"] == pytest.approx(14 / 40)
    assert refusal["threshold"] == {"max": 0.1} and refusal["window"]["span"] == "1h"
    assert set(slack[0]) == {"text"} and "medops alert" in slack[0]["text"]
    assert any("refusal_rate" in body["text"] and "0.35" in body["text"] for body in slack)
    assert "not delivered to webhook down" in first.stderr

    # alert history in the store, with each webhook's outcome (names, never URLs)
    rows = alerts(store)
    assert sorted(a.rule for a in rows) == sorted(FIRING)
    for alert in rows:
        by_name = {d["webhook"]: d for d in alert.deliveries}
        assert by_name["generic"]["ok"] and by_name["chat"]["ok"]
        assert not by_name["down"]["ok"] and by_name["down"]["attempts"] == 2 and by_name["down"]["error"]
        assert url not in json.dumps(alert.deliveries)
    assert last_alert(store, "refusal_rate|all").details["value"] == pytest.approx(14 / 40)

    # one alert.fired audit event per alert: ids, rule, metric, value; no text
    fired = [e for e in audit_events(store) if e["action"] == "alert.fired"]
    assert sorted(e["details"]["alert_id"] for e in fired) == sorted(a.id for a in rows)
    assert all(set(e["details"]) >= {"alert_id", "rule", "metric", "value"} for e in fired)
    assert verify(store).intact

    # within the cooldown: nothing new fires or is sent; the repeats are printed as suppressed; exit 0
    second = cli.run("monitor", "check", "--policy", str(policy), env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("SUPPRESSED") == 4 and "0 alerts fired, 4 suppressed" in second.stdout
    assert len(posts(received)) == 8 and len(alerts(store)) == 4

    listed = cli.run("monitor", "alerts", "--json")
    assert listed.returncode == 0 and len(listed.json()) == 4
    assert {d["webhook"] for d in listed.json()[0]["deliveries"]} == {"generic", "chat", "down"}

    drift = cli.run("monitor", "drift", "--json")
    assert drift.returncode == 0, drift.stderr
    drift_rows = {row["metric"]: row for row in drift.json()["metrics"]}
    assert drift_rows["language_mix"]["current"] == {"ko": 1.0}
    score = drift_rows["online:overall_score"]  # quality drift: 7 steady points, then one at 0.3
    assert (score["n_reference"], score["n_current"], score["reference"], score["current"]) == (7, 1, 0.7, 0.3)
    assert score["test"] is None and "CUSUM needs" in score["note"]  # no spread in the reference
    table = cli.run("monitor", "drift")
    assert table.returncode == 0 and "prompt_length" in table.stdout and "PSI" in table.stdout


def test_cooldown_expires_and_every_loops(cli, receiver, tmp_path):
    url, received = receiver
    store = seed_store(cli.db)
    policy = load_monitor_policy_text(
        tmp_path,
        f"""
cooldown: 30m
webhooks: [{{name: generic, url: "{url}/generic"}}]
rules: [{{metric: refusal_rate, max: 0.1}}]
""",
    )
    now = datetime.now(timezone.utc)
    assert [f.outcome for f in check(store, policy, now=now).findings] == [FIRED]
    assert [f.outcome for f in check(store, policy, now=now + timedelta(minutes=29)).findings] == [SUPPRESSED]
    again = check(store, policy, now=now + timedelta(minutes=31))
    assert [f.outcome for f in again.findings] == [FIRED]
    assert len(posts(received)) == 2 and len(alerts(store)) == 2

    # --every: rounds until interrupted; the exit status is the last round's (suppressed: 0)
    proc = cli.popen("monitor", "check", "--policy", str(tmp_path / "policy.yaml"), "--every", "1s", "--json")
    try:
        deadline = time.monotonic() + 60
        lines = []
        while len(lines) < 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line:
                lines.append(json.loads(line))
    finally:
        proc.send_signal(2)  # SIGINT, as Ctrl-C
        proc.wait(timeout=30)
    assert [doc["suppressed"] for doc in lines] == [1, 1] and proc.returncode == 0


def load_monitor_policy_text(tmp_path: Path, text: str) -> MonitorPolicy:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return load_monitor_policy(path)


def test_a_delivery_failure_is_recorded_not_raised():
    calls = []

    def refusing(url, body, timeout):
        calls.append(url)
        raise ConnectionRefusedError(111, "Connection refused")

    result = deliver(Webhook(name="x", url="http://127.0.0.1:9/"), "http://127.0.0.1:9/", {"a": 1}, post=refusing)
    assert result["ok"] is False and result["attempts"] == 2 and "ConnectionRefusedError" in result["error"]
    assert len(calls) == 2
    ok = deliver(Webhook(name="x", url="http://127.0.0.1:9/"), "http://127.0.0.1:9/", {}, post=lambda *a: 204)
    assert ok == {"webhook": "x", "format": "json", "ok": True, "status": 204, "attempts": 1, "error": None}


def test_usage_errors_exit_2_in_one_line(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {metric: refusal_rate, test: psi, max: 0.1}\n")
    result = cli.run("monitor", "check", "--policy", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and str(bad) in result.stderr and "rules.0" in result.stderr

    unset = tmp_path / "unset.yaml"
    unset.write_text("webhooks: [{name: s, url_env: MEDOPS_TEST_UNSET_URL}]\nrules: [{min_exchanges: 1}]\n")
    result = cli.run("monitor", "check", "--policy", str(unset))
    assert result.returncode == 2 and "MEDOPS_TEST_UNSET_URL is not set" in result.stderr

    result = cli.run("monitor", "check", "--policy", str(unset), "--every", "soon")
    assert result.returncode == 2 and "not a duration" in result.stderr


def test_cusum_rule_fires_on_a_sustained_drop_only(tmp_path):
    store = Store.open(str(tmp_path / "medops.db"))
    now = datetime.now(timezone.utc)
    rng = np.random.default_rng(11)

    def series(metric: str, current_mean: float) -> list[dict]:
        points = [(now - timedelta(days=8) + timedelta(hours=2 * h), 0.7) for h in range(80)]  # reference
        points += [(now - timedelta(hours=23) + timedelta(minutes=30 * i), current_mean) for i in range(40)]
        return [
            {"source": "online", "metric": metric, "window_start": at, "window_end": at, "value": value + noise}
            for (at, value), noise in zip(points, rng.normal(0, 0.03, len(points)), strict=True)
        ]

    add_scores(store, series("steady", 0.7) + series("dropped", 0.66))  # a drop of ~1.3 sd
    policy = load_monitor_policy_text(
        tmp_path,
        """
rules:
  - {metric: "online:steady", test: cusum, window: 1d}
  - {metric: "online:dropped", test: cusum, window: 1d}
  - {metric: "online:dropped", min: 0.5, window: 1d}
""",
    )
    findings = {f.key: f for f in check(store, policy, now=now).findings}
    assert findings["online:steady:cusum|tag=all"].status == "ok"
    dropped = findings["online:dropped:cusum|tag=all"]
    assert dropped.outcome == FIRED and dropped.value > 5 and dropped.n_reference > 2 and dropped.n_current == 40
    assert findings["online:dropped|tag=all"].status == "ok"  # still above the floor: only CUSUM sees it


CONCURRENT_CHECK = r"""
import json, sys, time
from datetime import datetime
import medops.store.alerts as store_alerts
from medops.monitor.alerts import check
from medops.monitor.policy import load_monitor_policy
from medops.store.repository import Store

db, policy_path, now, start_at = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3]), float(sys.argv[4])
real_insert = store_alerts.insert

def slow_insert(*args, **kwargs):  # widen the gap between reading the last alert and inserting
    time.sleep(0.5)
    return real_insert(*args, **kwargs)

store_alerts.insert = slow_insert
store, policy = Store.open(db), load_monitor_policy(policy_path)
time.sleep(max(0.0, start_at - time.time()))
result = check(store, policy, now=now)
fired, suppressed = sorted(f.key for f in result.fired), sorted(f.key for f in result.suppressed)
print(json.dumps({"fired": fired, "suppressed": suppressed}))
"""


def test_two_concurrent_checks_fire_each_alert_key_once(tmp_path):
    db = tmp_path / "medops.db"
    store = seed_store(db)
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(
        "window: 1h\nreference: 7d\ncooldown: 1h\nrules:\n"
        "  - {metric: refusal_rate, max: 0.1}\n  - {name: prompt-length, metric: prompt_length, test: psi, max: 0.2}\n"
    )
    now = datetime.now(timezone.utc).isoformat()
    start_at = str(time.time() + 4.0)  # both processes past their imports, then checking at the same moment
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_CHECK, str(db), str(policy_path), now, start_at],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    fired = [key for r in results for key in r["fired"]]
    suppressed = [key for r in results for key in r["suppressed"]]
    keys = set(fired)
    assert len(keys) == 2 and any(k.startswith("refusal_rate") for k in keys)
    assert sorted(fired) == sorted(keys)  # each key fired by exactly one of the two processes
    assert sorted(suppressed) == sorted(keys)  # and suppressed by the other
    assert sorted(a.key for a in alerts(store)) == sorted(keys)
