"""The audit trail in the library: the chain, the HMAC key, the export and its stand-alone
verifier (the snippet in docs/PRIVACY.md, run as written), and two processes appending at once
on SQLite and PostgreSQL (MEDOPS_TEST_POSTGRES_URL; skipped when unset)."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from medops.audit import AuditSubscriber, export, record, verify
from medops.audit.trail import declare_unkeyed_before, events
from medops.errors import UserError
from medops.events import RunEnded, RunStarted
from medops.store.audit import GENESIS
from medops.store.repository import Store

DOCS = Path(__file__).resolve().parents[2] / "docs" / "PRIVACY.md"
POSTGRES = os.environ.get("MEDOPS_TEST_POSTGRES_URL")


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDOPS_AUDIT_KEY", raising=False)
    opened = Store.open(str(tmp_path / "audit.db"))
    yield opened
    opened.engine.dispose()


def add_events(store: Store, n: int) -> None:
    for i in range(n):
        record(store, "test.event", f"run:{i}", {"run_id": i, "score": i / 3, "name": "한국어 파일.jsonl"})


def test_chain_is_intact_and_linked_after_several_records(store):
    add_events(store, 5)
    found = events(store)
    assert [e["seq"] for e in found] == [1, 2, 3, 4, 5]
    assert found[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(found))
    assert all(e["actor"].startswith("os:") and e["key_id"] is None for e in found)
    result = verify(store)
    assert result.intact and result.events == 5 and result.head_seq == 5 and result.head_hash == found[-1]["hash"]
    assert [e["seq"] for e in events(store, last=2)] == [4, 5]


def test_token_actor_and_unusual_details_are_stored_as_plain_json(store):
    event = record(store, "test.event", "x", {"nan": float("nan"), "path": Path("a/b.jsonl"), "t": (1, 2)}, "token:7")
    assert event["actor"] == "token:7"
    assert event["details"] == {"nan": "nan", "path": "a/b.jsonl", "t": [1, 2]}
    assert verify(store).intact


def test_keyed_chain_verifies_only_with_the_key(store, monkeypatch):
    add_events(store, 2)  # recorded before the hospital set a key: plain sha256
    monkeypatch.setenv("MEDOPS_AUDIT_KEY", "correct horse battery staple")
    add_events(store, 3)
    undeclared = verify(store)
    assert not undeclared.intact and undeclared.broken_seq == 1 and "--unkeyed-before" in undeclared.reason
    assert declare_unkeyed_before(store, 3).intact  # the site says: events 1-2 predate the key
    keyed = verify(store)
    assert keyed.intact and keyed.events == 6 and keyed.keyed == 4 and keyed.unverified == 0
    assert keyed.unkeyed_before == 3 and events(store)[-1]["action"] == "audit.unkeyed_before"
    monkeypatch.delenv("MEDOPS_AUDIT_KEY")
    without = verify(store)
    assert without.intact and without.unverified == 4  # the CLI exits 2 on this: nothing proven
    wrong = verify(store, b"another key")  # the declaration was keyed with the real key: it counts for nothing
    assert not wrong.intact and wrong.broken_seq == 1
    # the key never reaches the store: only its id
    with store.engine.connect() as connection:
        dump = "\n".join(str(row) for row in connection.exec_driver_sql("SELECT * FROM audit_events"))
    assert "correct horse" not in dump


def test_a_chain_rewritten_without_the_key_is_caught(store, monkeypatch):
    monkeypatch.setenv("MEDOPS_AUDIT_KEY", "k1")
    add_events(store, 3)
    # someone without the key drops the last keyed event and appends an unkeyed one in its place
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM audit_events WHERE id = 3")
    monkeypatch.delenv("MEDOPS_AUDIT_KEY")
    record(store, "test.event", "forged", {})
    result = verify(store, b"k1")
    assert not result.intact and result.broken_seq == 3 and "not keyed" in result.reason


def test_a_keyed_trail_rewritten_whole_without_the_key_is_caught(store, monkeypatch):
    """issue 19.3: deleting every keyed event and writing the rest again as plain sha256 passed a
    keyed verify ("intact"): unkeyed events were refused only after a keyed one."""
    monkeypatch.setenv("MEDOPS_AUDIT_KEY", "k1")
    add_events(store, 3)
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM audit_events")
    monkeypatch.delenv("MEDOPS_AUDIT_KEY")
    add_events(store, 2)  # a fresh plain chain: every hash recomputable without the key
    record(store, "audit.unkeyed_before", "audit", {"unkeyed_before": 99})  # a forged declaration, unkeyed
    result = verify(store, b"k1")
    assert not result.intact and result.broken_seq == 1 and "predates the key" in result.reason
    monkeypatch.setenv("MEDOPS_AUDIT_KEY", "k1")
    with pytest.raises(UserError, match="from 1 to 4"):
        declare_unkeyed_before(store, 9)


def stdlib_verifier() -> str:
    """The verification snippet of docs/PRIVACY.md's "The audit trail" section, as written."""
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("## The audit trail") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "docs/PRIVACY.md: no python snippet in 'The audit trail'"
    code = match.group(1)
    imports = set(re.findall(r"^import (.+)$", code, re.M))
    assert imports <= {"hashlib, hmac, json, os, sys", "hashlib", "hmac", "json", "os", "sys"}, imports
    return code


def run_verifier(
    tmp_path: Path, export_file: Path, key: str | None = None, anchors: Path | None = None
) -> subprocess.CompletedProcess:
    script = tmp_path / "verify_audit.py"
    script.write_text(stdlib_verifier(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "MEDOPS_AUDIT_KEY"}
    if key is not None:
        env["MEDOPS_AUDIT_KEY"] = key
    # -I: isolated, so nothing of medops (or the venv's site-packages) is importable
    return subprocess.run(
        [sys.executable, "-I", str(script), str(export_file), *([str(anchors)] if anchors else [])],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_export_verifies_offline_with_the_documented_stdlib_snippet(store, tmp_path, monkeypatch):
    add_events(store, 3)
    out = tmp_path / "audit.jsonl"
    export(store, out)  # a plain trail, as someone without the key could write it
    monkeypatch.setenv("MEDOPS_AUDIT_KEY", "s3cret-key")
    plain = run_verifier(tmp_path, out, key="s3cret-key")
    assert plain.returncode == 1 and "event 1" in plain.stdout  # issue 19.3: unkeyed, and nothing declared
    with store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM audit_events WHERE id = 4")  # the plain audit.export
    declare_unkeyed_before(store, 4)
    add_events(store, 1)
    assert export(store, out) == 5
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3, 4, 5] and lines[3]["action"] == "audit.unkeyed_before"
    assert set(lines[0]) == {
        "seq", "time", "actor", "action", "target", "details", "details_sha256", "prev_hash", "key_id", "hash"
    }  # fmt: skip
    exported = events(store)[-1]
    assert exported["action"] == "audit.export" and exported["details"]["file"] == "audit.jsonl"

    ok = run_verifier(tmp_path, out, key="s3cret-key")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "intact" in ok.stdout and "5 events" in ok.stdout
    no_key = run_verifier(tmp_path, out)
    assert no_key.returncode != 0 and "MEDOPS_AUDIT_KEY" in (no_key.stdout + no_key.stderr)
    wrong_key = run_verifier(tmp_path, out, key="guess")  # its declaration does not verify: event 1 counts for nothing
    assert wrong_key.returncode == 1 and "event 1" in wrong_key.stdout
    anchors_file = tmp_path / "anchors.jsonl"
    anchors_file.write_text(json.dumps({"seq": 5, "hash": lines[4]["hash"], "time": "t", "key_id": "k"}) + "\n")
    assert run_verifier(tmp_path, out, key="s3cret-key", anchors=anchors_file).returncode == 0
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in lines[:4]), encoding="utf-8")
    truncated = run_verifier(tmp_path, cut, key="s3cret-key", anchors=anchors_file)
    assert truncated.returncode == 1 and "anchor at line 1 (event 5)" in truncated.stdout

    lines[1]["details"]["run_id"] = 99  # edited in the file
    out.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in lines), encoding="utf-8")
    edited = run_verifier(tmp_path, out, key="s3cret-key")
    assert edited.returncode == 1 and "event 2" in edited.stdout
    del lines[1]
    out.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in lines), encoding="utf-8")
    deleted = run_verifier(tmp_path, out, key="s3cret-key")
    assert deleted.returncode == 1 and "event 3" in deleted.stdout


def test_run_events_hold_names_and_counts_never_config_text(store):
    subscriber = AuditSubscriber(store)
    config = {
        "data": "/hospital/patients/rubrics.jsonl",
        "model": {"backend": "openai", "name": "m", "base_url": "http://user:pw@host/v1", "api_key_env": "K"},
        "grader": {"backend": "openai", "name": "g", "base_url": None},
        "grader_template": "TEMPLATE TEXT {conversation}",
        "model_system_message": "You are a doctor at Example Hospital",
    }
    subscriber.on_run_started(RunStarted(4, "healthbench", config, resumed=False))
    subscriber.on_run_ended(RunEnded(4, "healthbench", "completed", {"score": 0.5, "n_failed_calls": 0}, "done"))
    started, ended = events(store)
    assert started["action"] == "run.started" and started["target"] == "run:4"
    assert started["details"] == {
        "run_id": 4,
        "benchmark": "healthbench",
        "resumed": False,
        "model": "openai:m",
        "grader": "openai:g",
        "data_file": "rubrics.jsonl",
    }
    assert ended["details"]["status"] == "completed" and ended["details"]["score"] == 0.5
    assert ended["details"]["n_failed_calls"] == 0
    text = json.dumps([started, ended])
    for secret in ("pw@", "TEMPLATE", "Example Hospital", "/hospital/patients"):
        assert secret not in text


APPENDER = """
import sys, time
from pathlib import Path
from medops.audit import record
from medops.store.repository import Store

url, barrier, tag = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
store = Store.open(url)
deadline = time.monotonic() + 60
while not barrier.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
for i in range(50):
    record(store, "test.concurrent", f"{tag}:{i}", {"i": i, "process": tag})
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A new store: a SQLite file, or a fresh PostgreSQL schema (as in tests/test_store_concurrency.py)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    if not POSTGRES:
        pytest.skip("MEDOPS_TEST_POSTGRES_URL not set (scripts/start-test-postgres)")
    from sqlalchemy import create_engine, make_url, text

    schema = f"medops_audit_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = make_url(POSTGRES).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_two_processes_appending_at_once_never_fork_the_chain(store_url, tmp_path, monkeypatch):
    monkeypatch.delenv("MEDOPS_AUDIT_KEY", raising=False)
    Store.open(store_url).engine.dispose()  # migrated first: the race under test is the append
    barrier = tmp_path / "go"
    env = {k: v for k, v in os.environ.items() if k != "MEDOPS_AUDIT_KEY"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, store_url, str(barrier), tag],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for tag in ("a", "b")
    ]
    barrier.touch()
    for proc in procs:
        _, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr
    store = Store.open(store_url)
    try:
        found = events(store)
        result = verify(store)
    finally:
        store.engine.dispose()
    assert result.intact, result.describe()
    assert result.events == 100 and [e["seq"] for e in found] == list(range(1, 101))
    assert sorted(e["target"] for e in found) == sorted(f"{t}:{i}" for t in "ab" for i in range(50))
    tags = [e["details"]["process"] for e in found]
    assert tags.count("a") == 50 and tags.count("b") == 50
