"""``medops store prune`` (retention, audited; runs a gate or a review set refers to kept), the
``retention`` block of a monitor policy, and ``medops store backup`` / ``restore`` (SQLite's
online backup API; after a restore the trail verifies and every run reports as before)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from datetime import timedelta

import pytest

from conftest import SECRET, example, write_jsonl
from medops import api
from medops.store.exchanges import count_exchanges, insert_exchanges
from medops.store.repository import Store
from medops.store.schema import MonitorScore, utcnow
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread

WRITER = """
import sys
from pathlib import Path
from medops.store.exchanges import insert_exchanges
from medops.store.repository import Store
store, stop, written = Store.open(sys.argv[1]), Path(sys.argv[2]), 0
while not stop.exists():
    insert_exchanges(store, [{"source": "gateway", "route": "/v1/chat/completions"}] * 50)
    written += 50
    if written == 50:
        print("writing", flush=True)
print(written)
"""


@pytest.fixture
def endpoint(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("MEDOPS_AUDIT_KEY", raising=False)
    with ServerThread(FakeOpenAIServer(FakeBehaviour())) as running:
        yield running


def evaluate(endpoint, tmp_path, db, name: str) -> int:
    data = tmp_path / "rubrics.jsonl"
    if not data.exists():
        write_jsonl(
            data,
            [
                example("p1", [("Advises rest {met}", 5, ["axis:completeness"]), ("Mentions fluids {unmet}", 3, [])]),
                example("p2", [("Recommends a doctor {met}", 4, [])], text="My child has a fever."),
            ],
        )
    config = api.healthbench_config(
        data=str(data),
        model="openai:fake-model",
        grader="openai:fake-grader",
        model_base_url=endpoint.base_url,
        grader_base_url=endpoint.base_url,
        retry_base_delay=0.05,
        no_cache=True,
    )
    return api.evaluate(config, db=db, name=name).run_id


def canary_score(store: Store, run_id: int | None, age: timedelta, source: str = "canary") -> None:
    at = utcnow() - age
    with store.session() as s:
        s.add(
            MonitorScore(
                source=source, window_start=at, window_end=at, metric="overall_score", value=0.5, run_id=run_id
            )
        )


def age_runs(db, run_ids: list[int], age: timedelta) -> None:
    with sqlite3.connect(db) as connection:
        then = (utcnow() - age).strftime("%Y-%m-%d %H:%M:%S.%f")
        connection.executemany("UPDATE runs SET created_at = ? WHERE id = ?", [(then, i) for i in run_ids])


def stored_exchanges(db) -> int:
    store = Store.open(str(db), create=False)
    try:
        return count_exchanges(store)
    finally:
        store.engine.dispose()


def audit_actions(cli, db) -> list[dict]:
    return [e for e in cli.run("audit", "list", "--json", "--db", str(db), check=True).json()]


def test_prune_deletes_only_what_is_past_its_limit_keeps_referenced_runs_and_is_audited(cli, endpoint, tmp_path):
    db = tmp_path / "medops.db"
    ids = {
        name: evaluate(endpoint, tmp_path, db, name)
        for name in ("baseline", "gated", "reviewed", "old", "young", "eval")
    }
    api.gate("gated", [api.Rule(metric="overall_score", min=0.1)], db=db, baseline="baseline")
    api.create_review_set("reviewed", "physicians-1", sample=1, reviewers=1, strategy="random", db=db)
    age_runs(db, [ids[n] for n in ("baseline", "gated", "reviewed", "old", "eval")], timedelta(days=200))
    store = Store.open(str(db))
    for name in ("baseline", "gated", "reviewed", "old"):
        canary_score(store, ids[name], timedelta(days=200))
    canary_score(store, ids["young"], timedelta(hours=1))
    canary_score(store, None, timedelta(days=1), source="online")
    old, new = utcnow() - timedelta(days=100), utcnow()
    rows = [
        {"source": "gateway", "route": "/v1/chat/completions", "created_at": at} for at in (old, old, old, new, new)
    ]
    insert_exchanges(store, rows)
    limits = ("--exchanges-older-than", "90d", "--scores-older-than", "90d", "--canary-runs-older-than", "90d")

    dry = cli.run("store", "prune", *limits, "--dry-run", "--json", "--db", str(db), check=True).json()
    assert dry["would_delete"] == {"canary_runs": 1, "scores": 4, "exchanges": 3}
    assert dry["kept_referenced_runs"] == sorted(ids[n] for n in ("baseline", "gated", "reviewed"))
    assert stored_exchanges(db) == 5 and len(api.runs(db=db)) == 6  # nothing deleted
    assert not [e for e in audit_actions(cli, db) if e["action"] == "store.prune"]

    done = cli.run("store", "prune", *limits, "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert "deleted: 1 canary runs, 4 scores, 3 exchanges" in done.stdout
    assert stored_exchanges(db) == 2
    assert sorted(r["name"] for r in api.runs(db=db)) == ["baseline", "eval", "gated", "reviewed", "young"]
    event = [e for e in audit_actions(cli, db) if e["action"] == "store.prune"][-1]
    assert event["details"]["deleted"] == {"canary_runs": 1, "scores": 4, "exchanges": 3}
    assert event["details"]["kept_referenced_runs"] == 3
    assert event["details"]["older_than"] == {"exchanges": "90d", "scores": "90d", "canary_runs": "90d"}
    assert cli.run("audit", "verify", "--db", str(db)).returncode == 0
    assert api.run("gated", db=db)["status"] == "completed"  # still reports

    again = cli.run("store", "prune", *limits, "--json", "--db", str(db), check=True).json()
    assert again["deleted"] == {"canary_runs": 0, "scores": 0, "exchanges": 0}
    nothing = cli.run("store", "prune", "--db", str(db))
    assert nothing.returncode == 2 and "give at least one of" in nothing.stderr
    bad = cli.run("store", "prune", "--exchanges-older-than", "ninety days", "--db", str(db))
    assert bad.returncode == 2 and "--exchanges-older-than" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_monitor_check_applies_the_policys_retention(cli, tmp_path):
    db = tmp_path / "medops.db"
    store = Store.open(str(db))
    old = utcnow() - timedelta(days=40)
    insert_exchanges(store, [{"source": "gateway", "route": "/v1/chat/completions", "created_at": old}] * 4)
    insert_exchanges(store, [{"source": "gateway", "route": "/v1/chat/completions"}] * 3)
    policy = tmp_path / "monitor.yaml"
    policy.write_text("window: 1h\nreference: 7d\nrules:\n  - {min_exchanges: 1}\nretention:\n  exchanges: 30d\n")
    checked = cli.run("monitor", "check", "--policy", str(policy), "--db", str(db), "--json")
    assert checked.returncode in (0, 1), checked.stderr
    assert json.loads(checked.stdout)["retention"]["deleted"] == {"exchanges": 4}
    assert stored_exchanges(db) == 3
    short = tmp_path / "short.yaml"
    short.write_text("window: 1h\nreference: 7d\nrules:\n  - {min_exchanges: 1}\nretention:\n  exchanges: 3d\n")
    refused = cli.run("monitor", "check", "--policy", str(short), "--db", str(db))
    assert refused.returncode == 2 and "retention" in refused.stderr and "short.yaml" in refused.stderr
    typo = tmp_path / "typo.yaml"
    typo.write_text("rules:\n  - {min_exchanges: 1}\nretention:\n  exchange: 30d\n")
    refused = cli.run("monitor", "check", "--policy", str(typo), "--db", str(db))
    assert refused.returncode == 2 and "exchange" in refused.stderr
    assert stored_exchanges(db) == 3


def reports(cli, db, names) -> dict:
    shown = {n: cli.run("runs", "show", n, "--json", "--db", str(db), check=True).json() for n in names}
    for n in names:
        shown[n + ":report"] = cli.run("report", n, "--format", "md", "--db", str(db), check=True).stdout
    return shown


def test_backup_is_online_and_restores_to_a_store_whose_trail_verifies_and_runs_report_as_before(
    cli, endpoint, tmp_path
):
    db = tmp_path / "medops.db"
    for name in ("first", "second"):
        evaluate(endpoint, tmp_path, db, name)
    api.gate("second", [api.Rule(metric="overall_score", min=0.1)], db=db, baseline="first")
    before = reports(cli, db, ["first", "second"])

    # another process goes on recording (as the gateway would) while the backup is taken; a thread
    # here would share this process's SQLite locks with every store the test opened and closed
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(stop)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"  # (this process does not read the file meanwhile)
        backup = tmp_path / "backup.db"
        made = cli.run("store", "backup", "-o", str(backup), "--json", "--db", str(db))
    finally:
        stop.touch()
        written = int(writer.communicate(timeout=60)[0].split()[-1])
    assert made.returncode == 0, made.stderr
    assert made.json()["kind"] == "sqlite" and written > stored_exchanges(backup) > 0
    with sqlite3.connect(backup) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert connection.execute("SELECT action FROM audit_events ORDER BY id DESC LIMIT 1").fetchone() == (
            "store.backup",
        )

    restored = tmp_path / "restored.db"
    done = cli.run("store", "restore", str(backup), "--db", str(restored))
    assert done.returncode == 0, done.stderr
    assert "audit trail intact" in done.stdout
    assert [e["action"] for e in audit_actions(cli, restored)][-2:] == ["store.backup", "store.restore"]
    assert cli.run("audit", "verify", "--db", str(restored)).returncode == 0
    after = reports(cli, restored, ["first", "second"])
    assert after == before

    # restoring over a store that has moved on brings it back to the backup
    moved_on = tmp_path / "moved_on.db"
    shutil.copy(backup, moved_on)
    with sqlite3.connect(moved_on) as connection:
        connection.execute("DELETE FROM exchanges")
    assert cli.run("store", "restore", str(backup), "--db", str(moved_on)).returncode == 0
    assert stored_exchanges(moved_on) == stored_exchanges(restored) > 0
    assert reports(cli, moved_on, ["first", "second"]) == before

    # a backup whose trail was edited restores, and says so: exit 1, nothing recorded on it
    tampered = tmp_path / "tampered.db"
    shutil.copy(backup, tampered)
    with sqlite3.connect(tampered) as connection:
        connection.execute("UPDATE audit_events SET target = 'elsewhere' WHERE id = 1")
    broken = cli.run("store", "restore", str(tampered), "--db", str(tmp_path / "t.db"))
    assert broken.returncode == 1 and "broken at event 1" in broken.stdout

    not_backup = tmp_path / "notes.txt"
    not_backup.write_text("hello")
    refused = cli.run("store", "restore", str(not_backup), "--db", str(tmp_path / "x.db"))
    assert refused.returncode == 2 and "not a medops backup" in refused.stderr
    assert not (tmp_path / "x.db").exists()
