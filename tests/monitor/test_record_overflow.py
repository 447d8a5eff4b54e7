"""Recording under load (issue 24, item 1): ``--record-overflow backpressure`` records every exchange
served even through a tiny queue; ``drop`` counts every exchange it could not record; the PHI policy
runs in a pool of ``--redaction-workers`` processes."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_gateway import Procs, _children, chat, metrics, recorded, total

N = 24


@pytest.fixture(scope="module")
def procs(tmp_path_factory):
    running = Procs(tmp_path_factory.mktemp("overflow"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def upstream(procs) -> str:
    return procs.upstream()


def _burst(base: str, tag: str) -> list[int]:
    def one(i: int) -> int:
        text = f"Patient John Smith, MRN 12345678, asks {i}"
        return chat(base, text, headers={"X-Medops-Conversation": f"{tag}-{i}"}).status_code

    with ThreadPoolExecutor(16) as pool:
        return list(pool.map(one, range(N)))


def test_backpressure_records_every_exchange_served_through_a_tiny_queue(procs, upstream):
    db = procs.tmp / "bp.db"
    base = procs.gateway(
        upstream, "--queue-size", "1", "--record-overflow", "backpressure", "--redaction-workers", "2", db=str(db)
    )
    assert _burst(base, "bp") == [200] * N
    rows = recorded(db, N, timeout=60)
    assert len(rows) == N
    assert all("John Smith" not in str(r.messages) and "12345678" not in str(r.messages) for r in rows)
    assert len(_children(procs.running[-1].pid)) >= 2  # the pool of redaction workers
    samples = metrics(base)["medops_gateway_record_dropped"]
    assert total(samples, "medops_gateway_record_dropped_total") == 0


def test_drop_counts_every_exchange_it_did_not_record(procs, upstream):
    db = procs.tmp / "drop.db"
    base = procs.gateway(upstream, "--queue-size", "1", "--record-overflow", "drop", db=str(db))
    assert _burst(base, "dr") == [200] * N
    deadline = time.monotonic() + 30
    while True:  # every exchange is either written or counted as dropped
        m = metrics(base)
        written = total(m["medops_gateway_recorded"], "medops_gateway_recorded_total")
        dropped = total(m["medops_gateway_record_dropped"], "medops_gateway_record_dropped_total", reason="queue_full")
        if written + dropped == N or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert written + dropped == N
    assert dropped > 0  # 24 at once through a queue of one: some could not wait


def test_an_unknown_overflow_policy_is_one_line_exit_2(procs, upstream):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "medops.cli.app", "gateway", "--upstream", upstream, "--record-overflow", "block"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--record-overflow block" in done.stderr


def test_admission_waits_for_room_and_resumes_when_the_writer_takes_it(tmp_path):
    from medops.monitor.recorder import Recorder

    recorder = Recorder(str(tmp_path / "a.db"), policy="allow", queue_size=2, overflow="backpressure", linger_s=0)
    row = {"source": "gateway", "route": "/v1/chat/completions", "status": 200}

    async def scenario() -> tuple[bool, bool]:
        for _ in range(2):
            await recorder.admit()
            assert recorder.submit(dict(row), admitted=True)
        third = asyncio.ensure_future(recorder.admit())
        await asyncio.sleep(0.3)
        waited = not third.done()  # the queue holds two unrecorded exchanges: the third waits
        recorder.start()  # the writer takes them off and records them: room again
        await asyncio.wait_for(third, 30)
        assert recorder.submit(dict(row), admitted=True)
        return waited, third.done()

    waited, admitted = asyncio.run(scenario())
    recorder.close()
    assert waited and admitted
    assert recorder.recorded == 3 and recorder.dropped == 0
    assert recorder.metrics.backpressure.collect()[0].samples[0].value > 0.2
