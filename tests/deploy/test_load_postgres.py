"""Two ``medops gateway`` replicas on one PostgreSQL under load, then under faults (issue 23,
item 5): kill -9 of a replica, a PostgreSQL restart, the store's disk full.

The request id checked is the one each request carries in its user message (``load request
<phase>-<client>-<n>:``, stored as sent under ``--phi-policy allow``); see pg_load.py. Skipped
where PostgreSQL's server binaries are not installed; the full-disk case needs root (a tmpfs
holding a tablespace) and is skipped without it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pg_load
import pytest

pytestmark = pytest.mark.slow

CLIENTS = 4
CONCURRENCY = 12


@pytest.fixture(scope="module")
def cluster():
    if pg_load.pg_bindir() is None or shutil.which("psql") is None:
        pytest.skip("PostgreSQL's initdb / pg_ctl / psql are not installed")
    root = pg_load.temp_root()
    pg = pg_load.PgCluster(root)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def deployment(cluster):
    db = cluster.create_database("medops_load")
    from medops.store.repository import Store

    Store.open(db).engine.dispose()  # migrated once, before the replicas start
    running = pg_load.Deployment(cluster.root, db).start()
    try:
        yield running
    finally:
        running.stop()


def run_phase(deployment, phase: str, n: int, during=None) -> list[dict]:
    clients = pg_load.start_clients(
        deployment.root, phase, deployment.bases, pg_load.plan(phase, n, CLIENTS), CONCURRENCY
    )
    if during is not None:
        during()
    return pg_load.wait_clients(clients)


def test_every_request_is_recorded_once_with_one_arm_per_conversation_and_metrics_match(deployment):
    n = 5_000
    results = run_phase(deployment, "steady", n)
    assert len(results) == n and all(r["served_by"] is not None and len(r["attempts"]) == 1 for r in results)
    rows = pg_load.wait_stored(deployment.db, "steady-", n)
    assert pg_load.duplicates(rows) == []
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in results)  # no loss, nothing else
    assert len({r["record_id"] for r in rows}) == n

    arms = pg_load.arms_by_conversation(rows)
    assert all(len(a) == 1 for a in arms.values()), [c for c, a in arms.items() if len(a) > 1][:5]
    by_arm = Counter(r["arm"] for r in rows)
    assert set(by_arm) == {"primary", "candidate"}
    replicas: dict[str, set[int]] = {}
    for r in results:
        replicas.setdefault(r["conversation"], set()).add(r["served_by"])
    assert all(s == {0, 1} for s in replicas.values())  # every conversation went through both replicas

    totals = pg_load.wait_metrics(deployment.bases, "recorded", n)
    assert totals["requests"] == n == totals["recorded"]
    assert totals["requests:primary"] == by_arm["primary"] and totals["requests:candidate"] == by_arm["candidate"]
    assert totals["dropped"] == 0


def test_kill_9_of_one_replica_fails_only_its_in_flight_requests(deployment):
    n = 2_000
    events: dict[str, float] = {}
    before = pg_load.scrape_all(deployment.bases).get("requests", 0)

    def kill_and_restart() -> None:
        # under load: once a fifth of the phase is served (a fixed delay missed the load on a fast machine)
        deadline = time.monotonic() + 60
        while pg_load.scrape_all(deployment.bases).get("requests", 0) - before < n // 5:
            assert time.monotonic() < deadline, "the load did not start"
            time.sleep(0.02)
        events["killed"] = time.time()
        deployment.kill(0)
        time.sleep(1.0)
        deployment.start_gateway(0)
        events["back"] = time.time()

    results = run_phase(deployment, "kill", n, kill_and_restart)
    assert all(r["served_by"] is not None for r in results)  # every request answered, by one replica or the other
    failed = [(r, a) for r in results for a in r["attempts"] if a[1] != "ok"]
    assert failed and all(a[0] == 0 for _, a in failed)  # only the killed replica failed requests
    for _, (_, outcome, started, ended) in failed:
        if outcome.startswith("broken"):  # broken off: in flight at the kill
            assert started <= events["killed"] + 0.5 and ended >= events["killed"] - 0.5
        else:  # refused: sent while it was down
            assert outcome == "refused" and events["killed"] - 0.5 <= started <= events["back"] + 0.5

    rows = pg_load.wait_stored(deployment.db, "kill-", n)
    assert pg_load.duplicates(rows) == []  # nothing recorded twice, restart included
    answered = {r["id"]: r for r in results}
    assert {r["id"] for r in rows} <= set(answered)
    lost = [answered[i] for i in set(answered) - {r["id"] for r in rows}]
    # what the killed replica had answered but not yet written (its recorder's queue) is all that is missing
    for r in lost:
        assert r["served_by"] == 0 and events["killed"] - 2.0 <= r["attempts"][-1][3] <= events["killed"] + 0.5
    broken = sum(a[1].startswith("broken") for _, a in failed)
    print(
        f"kill -9: {broken} requests broken off in flight, {len(failed) - broken} attempts refused while down, "
        f"{len(lost)} answered but unrecorded, of {n}"
    )


def test_a_postgresql_restart_under_load_loses_and_duplicates_nothing(cluster, deployment):
    n = 3_000
    before = pg_load.scrape_all(deployment.bases)

    def restart() -> None:
        time.sleep(1.0)
        cluster.stop("fast")
        time.sleep(2.0)
        cluster.start()

    results = run_phase(deployment, "restart", n, restart)
    assert all(r["served_by"] is not None and len(r["attempts"]) == 1 for r in results)  # served throughout
    assert deployment.alive() == [True, True]
    rows = pg_load.wait_stored(deployment.db, "restart-", n, timeout=90)
    assert pg_load.duplicates(rows) == []
    after = pg_load.wait_metrics(deployment.bases, "recorded", before["recorded"] + len(rows))
    dropped = after["dropped"] - before["dropped"]
    assert len(rows) + dropped == n  # queued and written after, or counted
    assert dropped == 0  # the queue (10,000) held the outage
    assert after["recorded"] - before["recorded"] == len(rows)


@pytest.fixture
def small_disk(cluster):
    """A 12 MB tmpfs (needs root) holding a tablespace; a filler file leaves ``free`` bytes."""
    mount = cluster.root / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the full disk (not root?): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_under_load_keeps_serving_and_counts_or_writes_every_record(cluster, small_disk: Path):
    space = small_disk / "tablespace"
    space.mkdir()
    cluster.own(space)
    cluster.sql(f"CREATE TABLESPACE small LOCATION '{space}'")
    db = cluster.create_database("medops_full", tablespace="small")
    from medops.store.repository import Store

    Store.open(db).engine.dispose()
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    with filler.open("wb") as handle:  # leave about 400 KB: a few hundred exchanges
        handle.write(b"\0" * (free - 400_000))
    deployment = pg_load.Deployment(cluster.root, db, queue_size=300).start()
    try:
        n = 2_000
        before = pg_load.scrape_all(deployment.bases)
        results = run_phase(deployment, "full", n)
        assert all(r["served_by"] is not None and len(r["attempts"]) == 1 for r in results)
        assert deployment.alive() == [True, True]
        full_rows = pg_load.stored(db, "full-")
        assert len(full_rows) < n  # the disk did fill
        filler.unlink()  # space again: what was held is written
        rows = pg_load.wait_stored(db, "full-", n, timeout=60, settle_s=5.0)
        assert deployment.alive() == [True, True]
        assert pg_load.duplicates(rows) == []
        after = pg_load.scrape_all(deployment.bases)
        dropped = after["dropped"] - before["dropped"]
        assert len(rows) > len(full_rows)
        assert len(rows) + dropped == n
        assert dropped == after.get("dropped:queue_full", 0) - before.get("dropped:queue_full", 0)
        print(f"full disk: {len(full_rows)} recorded before space came back, {len(rows)} after, {dropped} dropped")
    finally:
        deployment.stop()


def test_store_backup_and_restore_on_postgresql_drive_pg_dump_and_the_trail_verifies(cluster, tmp_path):
    import os
    import sys

    from medops.audit import record
    from medops.store.exchanges import count_exchanges, insert_exchanges
    from medops.store.repository import Store

    source, target = cluster.create_database("medops_source"), cluster.create_database("medops_target")
    store = Store.open(source)
    insert_exchanges(store, [{"source": "gateway", "route": "/v1/chat/completions"}] * 25)
    for i in range(3):
        record(store, "test.event", f"run:{i}", {"run_id": i})
    store.engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDOPS_")}

    def medops(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "medops.cli.app", *args], capture_output=True, text=True, env=env)

    dump = tmp_path / "medops.dump"
    made = medops("store", "backup", "-o", str(dump), "--db", source)
    assert made.returncode == 0, made.stderr
    assert dump.read_bytes()[:5] == b"PGDMP"
    done = medops("store", "restore", str(dump), "--db", target)
    assert done.returncode == 0, done.stderr
    assert medops("audit", "verify", "--db", target).returncode == 0
    restored = Store.open(target, create=False)
    assert count_exchanges(restored) == 25
    restored.engine.dispose()
    wrong = medops("store", "restore", str(dump), "--db", str(tmp_path / "x.db"))
    assert wrong.returncode == 2 and "postgresql backup" in wrong.stderr
