"""Opening a store: parallel processes on a new store, and databases that are not medops stores.

Every test runs on a fresh SQLite file and, when MEDOPS_TEST_POSTGRES_URL is set (CI), on a
fresh PostgreSQL schema. Processes are real ones, started together behind a file barrier so
that they reach the migration at the same moment.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from medops.store.database import head_revision

POSTGRES = os.environ.get("MEDOPS_TEST_POSTGRES_URL")
HEAD = head_revision()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A URL for a store that does not exist yet: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'new.db'}"
        return
    if not POSTGRES:
        pytest.skip("MEDOPS_TEST_POSTGRES_URL not set (scripts/start-test-postgres)")
    from sqlalchemy import create_engine, make_url, text

    schema = f"medops_t_{uuid.uuid4().hex[:12]}"
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


def execute(url: str, *statements: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    engine.dispose()


def table_names(url: str) -> set[str]:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    with engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
    engine.dispose()
    return names


def versions(url: str) -> list[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        rows = [r[0] for r in connection.execute(text("SELECT version_num FROM alembic_version"))]
    engine.dispose()
    return rows


OPEN_AFTER_BARRIER = """
import sys, time
from pathlib import Path
from medops.errors import UserError
from medops.store.repository import Store
barrier, me, url = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
(barrier / f"ready-{me}").touch()
while not (barrier / "go").exists():
    time.sleep(0.005)
try:
    store = Store.open(url)
    print(len(store.list_runs()))
except UserError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


@pytest.mark.parametrize("processes", [6])
def test_parallel_processes_on_a_new_store_all_succeed(store_url, tmp_path, processes):
    """Seen before the fix: 'table call_cache already exists' / 'alembic_version already exists'."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    started = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AFTER_BARRIER, str(barrier), str(i), store_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(processes)
    ]
    deadline = time.monotonic() + 120
    while len(list(barrier.glob("ready-*"))) < processes:
        assert time.monotonic() < deadline, "processes never got ready"
        assert all(p.poll() is None for p in started), [p.communicate() for p in started if p.poll() is not None]
        time.sleep(0.01)
    (barrier / "go").touch()  # all of them open the store at once
    outcomes = [(p.wait(timeout=120), *p.communicate()) for p in started]
    assert [(rc, out.strip(), err) for rc, out, err in outcomes] == [(0, "0", "")] * processes
    assert versions(store_url) == [HEAD]  # migrated exactly once
    assert {"runs", "call_cache", "datasets", "responses", "grades", "answers"} <= table_names(store_url)


def test_parallel_cli_commands_on_a_new_store(cli, store_url):
    """The reported case through the CLI: several commands that write started together on a new store
    (commands that only read refuse a missing store: see below)."""
    create = ("tokens", "create", "--role", "viewer", "--db", store_url, "--json", "--name")
    started = [cli_popen(cli, *create, f"ci-{i}") for i in range(4)]
    outcomes = [(p.wait(timeout=120), *p.communicate()) for p in started]
    assert [(rc, err) for rc, _, err in outcomes] == [(0, "")] * 4
    assert versions(store_url) == [HEAD]
    listed = cli.run("tokens", "list", "--db", store_url, "--json", check=True).json()
    assert sorted(t["name"] for t in listed) == [f"ci-{i}" for i in range(4)]


def cli_popen(cli, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "medops.cli.app", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli.env,
    )


def assert_refused(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_another_applications_database_is_refused_without_a_write(cli, store_url):
    execute(store_url, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)", "INSERT INTO notes VALUES (1, 'x')")
    before = snapshot(store_url)
    assert_refused(cli.run("runs", "list", "--db", store_url), "is not a medops store", "notes")
    assert snapshot(store_url) == before
    assert table_names(store_url) == {"notes"}


def test_a_store_from_a_newer_medops_is_refused_without_a_write(cli, store_url):
    cli.run("tokens", "create", "--name", "ci", "--role", "viewer", "--db", store_url, check=True)
    execute(store_url, "UPDATE alembic_version SET version_num = '0099'")
    before = snapshot(store_url)
    assert_refused(cli.run("runs", "list", "--db", store_url), "newer medops (revision 0099)", "upgrade medops")
    assert snapshot(store_url) == before
    assert versions(store_url) == ["0099"]


def test_another_applications_alembic_schema_is_not_called_a_newer_medops(cli, store_url):
    execute(
        store_url,
        "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)",
        "INSERT INTO alembic_version VALUES ('ae1027a6acf')",
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY)",
    )
    before = snapshot(store_url)
    assert_refused(cli.run("runs", "list", "--db", store_url), "is not a medops store", "ae1027a6acf")
    assert snapshot(store_url) == before


def snapshot(url: str):
    """What a write would change: a SQLite file's bytes and mtime (and no companions appear);
    on PostgreSQL, the schema's tables and the version rows."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        siblings = sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))
        return path.read_bytes(), path.stat().st_mtime_ns, siblings
    names = table_names(url)
    return names, versions(url) if "alembic_version" in names else None


def test_a_file_that_is_not_sqlite_is_refused_without_a_write(cli, tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("id,score\n1,0.5\n")
    before = snapshot(f"sqlite:///{path}")
    assert_refused(cli.run("runs", "list", "--db", str(path)), str(path), "not a SQLite database")
    assert_refused(cli.run("eval", "healthbench", "--data", "demo", "--grader", "local:smollm2", "--db", str(path)))
    assert snapshot(f"sqlite:///{path}") == before


def test_an_empty_or_missing_file_is_a_new_store(cli, tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    for path in (empty, tmp_path / "missing.db"):
        cli.run("tokens", "create", "--name", "ci", "--role", "viewer", "--db", str(path), "--json", check=True)
        with sqlite3.connect(path) as connection:
            assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]


READERS = [
    ("runs", "list"),
    ("audit", "verify"),
    ("report", "1"),
    ("export", "1"),
    ("gate", "1", "--min", "overall_score=0.5"),
    ("monitor", "traffic"),
    ("tokens", "list"),
    ("serve", "--port", "0"),
]


@pytest.mark.parametrize("command", READERS, ids=lambda c: "-".join(c[:2]))
def test_a_command_that_reads_never_creates_a_store(cli, tmp_path, command):
    """A mistyped --db is exit 2 naming the path, and nothing appears there."""
    missing = tmp_path / "MISTYPED.db"
    assert_refused(cli.run(*command, "--db", str(missing), timeout=60), f"no medops store at {missing}")
    assert not any(p.name.startswith("MISTYPED") for p in tmp_path.iterdir())


def test_a_reader_leaves_an_empty_file_empty(cli, tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    assert_refused(cli.run("runs", "list", "--db", str(empty)), f"no medops store at {empty}")
    assert empty.stat().st_size == 0


def test_a_reader_refuses_an_empty_postgres_schema(cli, store_url):
    assert_refused(cli.run("runs", "list", "--db", store_url), "no medops store at")
    assert table_names(store_url) == set()


def test_an_up_to_date_store_is_opened_without_a_write(tmp_path):
    """The common case, every command: nothing is written to a store already at the head."""
    from medops.store.repository import Store

    path = tmp_path / "s.db"
    Store.open(str(path)).engine.dispose()
    before = path.read_bytes(), path.stat().st_mtime_ns
    store = Store.open(str(path))
    assert store.list_runs() == []
    store.engine.dispose()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before



WRITER = """
import sys
from medops import api
store = api.open_store(sys.argv[1])
for line in sys.stdin:
    api.add_user(store, line.strip(), "viewer", "a long enough password", actor="os:t")
    print("done", flush=True)
"""


@pytest.mark.parametrize("first", ["medops", "sqlite3"])
def test_opening_a_store_again_keeps_this_process_reading_what_others_write(tmp_path, first):
    """A store opened twice in one process (an API call per request, a notebook beside its own
    sqlite3 connection) must keep seeing another process's writes: reading the file's header with
    a descriptor that is then closed dropped this process's SQLite locks, the other process reset
    the WAL index, and this process read stale rows (then corrupted the file at its next write)."""
    from medops import api
    from medops.store.repository import Store

    db = tmp_path / "m.db"
    Store.open(str(db))  # a new store, migrated
    held = Store.open(str(db)) if first == "medops" else sqlite3.connect(db)
    if first == "sqlite3":
        held.execute("SELECT count(*) FROM alembic_version").fetchone()
    api.add_user(api.open_store(str(db)), "dr-here", "viewer", "a long enough password", actor="os:t")
    # another process opens the store and closes it: the last connection, as far as it can tell,
    # it checkpoints and deletes the WAL file
    glance = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT 1 FROM users'); c.close()"
    subprocess.run([sys.executable, "-c", glance, str(db)], check=True, timeout=30)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        for n in range(3):
            writer.stdin.write(f"dr-{n}\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "done"
            fresh = sqlite3.connect(db)
            assert fresh.execute("SELECT count(*) FROM users").fetchone() == (n + 2,)
            fresh.close()
        api.add_user(api.open_store(str(db)), "dr-last", "viewer", "a long enough password", actor="os:t")
    finally:
        writer.stdin.close()
        writer.wait(timeout=30)
    fresh = sqlite3.connect(db)
    assert fresh.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert fresh.execute("SELECT count(*) FROM users").fetchone() == (5,)
    fresh.close()
