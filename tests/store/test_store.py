import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from conftest import example, write_jsonl
from medops.datasets.jsonl import FileFacts
from medops.errors import UserError
from medops.store.database import _alembic_config, database_url, describe, head_revision, migration_revisions
from medops.store.repository import INTERRUPTED, RUNNING, Store, effective_status
from medops.store.schema import Run


def test_sqlite_store_is_migrated_in_wal_mode(tmp_path):
    db = tmp_path / "s.db"
    store = Store.open(str(db))
    Store.open(str(db))  # opening again is a no-op migration
    with sqlite3.connect(db) as connection:
        assert connection.execute("pragma journal_mode").fetchone() == ("wal",)
        tables = {r[0] for r in connection.execute("select name from sqlite_master where type='table'")}
        assert {"datasets", "runs", "responses", "grades", "call_cache", "alembic_version"} <= tables
        assert connection.execute("select version_num from alembic_version").fetchone() == (head_revision(),)
    facts = FileFacts("/x.jsonl", "ab" * 32, 10)
    first = store.register_dataset("x", facts, 3)
    assert store.register_dataset("x", facts, 3) == first


def test_the_revisions_read_from_the_migration_scripts_are_alembics():
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_alembic_config())
    known, head = migration_revisions()
    assert known == {script.revision for script in scripts.walk_revisions()}
    assert head == scripts.get_current_head() == head_revision()


def test_opening_a_store_at_the_head_imports_no_alembic(tmp_path):
    db = tmp_path / "s.db"
    Store.open(str(db))  # new: migrated (alembic)
    probe = (
        "import sys; from medops.store.repository import Store; "
        f"Store.open({str(db)!r}, create=False); print('alembic' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"


def test_run_names_are_unique_and_findable(tmp_path):
    store = Store.open(str(tmp_path / "s.db"))
    dataset = store.register_dataset("x", FileFacts("/x", "0" * 64, 1), 1)
    run_id = store.create_run(
        name="nightly", benchmark="healthbench", dataset_id=dataset, model="m", grader="g", config={}
    )
    assert store.find_run("nightly").id == run_id == store.find_run(str(run_id)).id
    with pytest.raises(UserError, match="already exists"):
        store.create_run(name="nightly", benchmark="healthbench", dataset_id=dataset, model="m", grader="g", config={})
    with pytest.raises(UserError, match="no run 'nope'"):
        store.find_run("nope")


def test_a_run_whose_process_died_reads_as_interrupted():
    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    import socket

    run = Run(status=RUNNING, hostname=socket.gethostname(), pid=dead.pid)
    assert effective_status(run) == INTERRUPTED
    alive = Run(status=RUNNING, hostname=socket.gethostname(), pid=os.getpid())
    assert effective_status(alive) == RUNNING


def test_database_urls_and_password_hiding(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDOPS_DB", raising=False)
    assert database_url(None) == "sqlite:///medops.db"
    assert database_url(str(tmp_path / "a.db")) == f"sqlite:///{tmp_path / 'a.db'}"
    monkeypatch.setenv("MEDOPS_DB", "postgresql+psycopg://u:pw@h/db")
    assert database_url(None) == "postgresql+psycopg://u:pw@h/db"
    assert "pw" not in describe("postgresql+psycopg://u:pw@h/db")


POSTGRES = os.environ.get("MEDOPS_TEST_POSTGRES_URL")


@pytest.mark.skipif(not POSTGRES, reason="MEDOPS_TEST_POSTGRES_URL not set (scripts/start-test-postgres)")
def test_postgresql_store_runs_the_whole_pipeline(cli, server, tmp_path):
    """The same run on a real PostgreSQL: migrations, group-committed writes, cache hits, resume."""
    from sqlalchemy import create_engine, text

    with create_engine(POSTGRES).begin() as connection:  # a clean schema for this test
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    data = write_jsonl(
        tmp_path / "pg.jsonl",
        [
            example("a", [("A {met}", 2, ["axis:x"]), ("B {unmet}", 2, [])], text="Qa"),
            example("b", [("C {met}", 1, [])], text="Qb"),
        ],
    )
    first = cli.run(*cli.eval_args(server, data), "--db", POSTGRES, "--json", "--name", "pg", check=True).json()
    assert first["score"] == pytest.approx((0.5 + 1.0) / 2) and first["usage"]["grader"]["calls"] == 3
    again = cli.run(*cli.eval_args(server, data), "--db", POSTGRES, "--json", check=True).json()
    assert again["score"] == first["score"] and again["usage"]["grader"]["calls"] == 0  # answered from the cache
    listed = cli.run("runs", "list", "--db", POSTGRES, "--json", check=True).json()
    assert [r["status"] for r in listed] == ["completed", "completed"]
    store = Store.open(POSTGRES)
    assert store.find_run("pg").config["concurrency"] == 32
    refused = cli.run("runs", "list", "--db", POSTGRES.replace("medops:medops", "medops:wrong-password"))
    assert refused.returncode == 2 and "wrong-password" not in refused.stderr and "Traceback" not in refused.stderr
