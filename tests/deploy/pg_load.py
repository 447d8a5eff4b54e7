"""Several ``medops gateway`` processes on one PostgreSQL, under load and faults: the scenario
shared by tests/deploy/test_load_postgres.py and benchmarks/gateway_postgres_load.py.

Everything is a real process: a private PostgreSQL cluster (``initdb`` / ``pg_ctl`` in a
temporary folder, so it can be stopped and started), two stand-in upstreams
(``medops.testing.fake_openai``: production and the A/B candidate), two gateways with the same
``--seed``, and client processes (``python pg_load.py client``) that send chat completions,
streamed and not, each carrying a conversation id (``X-Medops-Conversation``) and a request id
written into its user message (``load request <id>:``; the gateway stores text under
``--phi-policy allow``), which is how a stored exchange is matched to the request that made it.

A client sends each request to the replica it is given; when that replica fails it (connection
refused, broken off, a 5xx), the client sends the same request, with the same id, to the other
replica, as a load balancer would. Each client writes one JSON line per request: the id, its
conversation, every attempt (replica and outcome), and which replica answered it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUEST_ID = re.compile(r"^load request (\S+):")
TEXT = "how should a mild tension headache be treated at home, and when should I see a doctor?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are (PATH, else Debian's /usr/lib/postgresql/<version>/bin)."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


class PgCluster:
    """A private PostgreSQL cluster in a temporary folder (as the ``postgres`` user when run as
    root, since PostgreSQL refuses to run as root); superuser ``medops``, trust on loopback."""

    def __init__(self, root: Path):
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL's initdb / pg_ctl are not installed")
        self.bin = bindir
        self.root = root
        self.data = root / "pgdata"
        self.log = root / "postgres.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        root.chmod(0o755)
        if self.as_root:
            shutil.chown(root, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "medops", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / tool), *args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, cwd=self.root)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def sql(self, statement: str, database: str = "postgres") -> str:
        done = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "medops", "-d", database, "-Atqc", statement],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str, tablespace: str | None = None) -> str:
        self.sql(f"CREATE DATABASE {name}" + (f" TABLESPACE {tablespace}" if tablespace else ""))
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://medops@127.0.0.1:{self.port}/{name}"

    def own(self, path: Path) -> None:
        """Let the server's user write ``path`` (a tablespace folder)."""
        if self.as_root:
            shutil.chown(path, "postgres")


@dataclass
class Deployment:
    """Two upstreams and two gateway replicas (same --seed, an A/B candidate) on one store."""

    root: Path
    db: str
    seed: int = 7
    split: float = 0.5
    queue_size: int = 10_000
    latency_s: float = 0.01
    procs: list[subprocess.Popen] = field(default_factory=list)
    gateways: list[subprocess.Popen | None] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    def start(self) -> Deployment:
        self.upstream = self._upstream()
        self.candidate = self._upstream()
        self.ports = [free_port(), free_port()]
        self.gateways = [None, None]
        for replica in (0, 1):
            self.start_gateway(replica)
        return self

    @property
    def bases(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def _upstream(self) -> str:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "medops.testing.fake_openai", "--port", str(port), "--latency", str(self.latency_s)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        base = f"http://127.0.0.1:{port}/v1"
        wait_ready(base + "/models", proc)
        return base

    def start_gateway(self, replica: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MEDOPS_"))}
        env.update({"MEDOPS_DB": self.db, "MEDOPS_CACHE_DIR": str(self.root / "cache"), "NO_COLOR": "1"})
        command = [sys.executable, "-m", "medops.cli.app", "gateway", "--upstream", self.upstream]
        command += ["--candidate", self.candidate, "--split", str(self.split), "--seed", str(self.seed)]
        command += ["--phi-policy", "allow", "--queue-size", str(self.queue_size), "--port", str(self.ports[replica])]
        log = (self.root / f"gateway{replica}.log").open("a")
        proc = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        self.gateways[replica] = proc
        wait_ready(self.bases[replica] + "/healthz", proc, timeout=90)

    def kill(self, replica: int) -> None:
        proc = self.gateways[replica]
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.gateways[replica] = None

    def alive(self) -> list[bool]:
        return [proc is not None and proc.poll() is None for proc in self.gateways]

    def stop(self) -> None:
        running = [p for p in [*self.gateways, *self.procs] if p is not None and p.poll() is None]
        for proc in running:
            proc.terminate()
        for proc in running:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:5]} exited {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout} s")


# --- the load --------------------------------------------------------------------------------


def plan(phase: str, n: int, clients: int, per_conversation: int = 4) -> list[list[list[Any]]]:
    """``n`` requests as ``clients`` lists of [request id, conversation id, replica, stream]:
    a conversation's requests alternate between the two replicas; every third is streamed."""
    shares: list[list[list[Any]]] = [[] for _ in range(clients)]
    for i in range(n):
        client = i % clients
        k = i // clients
        conversation = f"{phase}-c{client}-{k // per_conversation}"
        shares[client].append([f"{phase}-{client}-{k}", conversation, k % 2, k % 3 == 0])
    return shares


def start_clients(root: Path, phase: str, bases: list[str], shares: list, concurrency: int) -> list:
    """One client process per share; each writes its results to ``<root>/<phase>-<i>.jsonl``."""
    running = []
    for i, share in enumerate(shares):
        spec = root / f"{phase}-{i}.spec.json"
        spec.write_text(json.dumps({"bases": bases, "requests": share, "concurrency": concurrency}))
        out = root / f"{phase}-{i}.jsonl"
        proc = subprocess.Popen([sys.executable, __file__, "client", str(spec), str(out)], stderr=subprocess.PIPE)
        running.append((proc, out))
    return running


def wait_clients(running: list, timeout: float = 600.0) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for proc, out in running:
        _, stderr = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"load client failed: {stderr.decode()[-2000:]}")
        results += [json.loads(line) for line in out.read_text().splitlines()]
    return results


async def _one(session: Any, bases: list[str], request: list[Any]) -> dict[str, Any]:
    import aiohttp

    rid, conversation, replica, stream = request
    body: dict[str, Any] = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": f"load request {rid}: {TEXT}"}],
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    headers = {"X-Medops-Conversation": conversation, "Authorization": "Bearer sk-load"}
    attempts: list[list[Any]] = []
    for attempt in range(8):
        target = replica if attempt % 2 == 0 else 1 - replica
        started = time.time()
        outcome = "ok"
        try:
            async with session.post(bases[target] + "/v1/chat/completions", json=body, headers=headers) as response:
                data = await response.read()
                if response.status != 200:
                    outcome = f"status:{response.status}"
                elif stream and not data.rstrip().endswith(b"data: [DONE]"):
                    outcome = "stream_incomplete"
                elif not stream and b'"choices"' not in data:
                    outcome = "not_an_answer"
        except aiohttp.ClientConnectorError:
            outcome = "refused"  # never reached the replica (it is down): not in flight
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            outcome = f"broken:{type(exc).__name__}"  # in flight when the replica went away
        attempts.append([target, outcome, started, time.time()])
        if outcome == "ok":
            return {
                "id": rid,
                "conversation": conversation,
                "stream": stream,
                "attempts": attempts,
                "served_by": target,
            }
        if attempt % 2 == 1:
            await asyncio.sleep(0.25)
    return {"id": rid, "conversation": conversation, "stream": stream, "attempts": attempts, "served_by": None}


async def _client(spec: dict[str, Any], out: Path) -> None:
    import aiohttp

    gate = asyncio.Semaphore(spec["concurrency"])
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:

        async def bounded(request: list[Any]) -> dict[str, Any]:
            async with gate:
                return await _one(session, spec["bases"], request)

        results = await asyncio.gather(*(bounded(r) for r in spec["requests"]))
    out.write_text("".join(json.dumps(r) + "\n" for r in results))


# --- what the store and /metrics say ---------------------------------------------------------


def stored(db: str, prefix: str) -> list[dict[str, Any]]:
    """The exchanges of requests whose id starts with ``prefix``: request id, record id, conversation, arm."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT record_id, conversation_id, arm, messages FROM exchanges"))
            found = []
            for record_id, conversation, arm, messages in rows:
                messages = json.loads(messages) if isinstance(messages, str) else messages
                match = REQUEST_ID.match((messages or [{}])[0].get("content") or "")
                if match and match.group(1).startswith(prefix):
                    found.append(
                        {"id": match.group(1), "record_id": record_id, "conversation": conversation, "arm": arm}
                    )
            return found
    finally:
        engine.dispose()


def wait_stored(db: str, prefix: str, expected: int, timeout: float = 60.0, settle_s: float = 3.0) -> list[dict]:
    """The stored exchanges once ``expected`` are there, or once the count has not moved for ``settle_s``."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while True:
        rows = stored(db, prefix)
        if len(rows) >= expected:
            return rows
        if len(rows) != last:
            last, since = len(rows), time.monotonic()
        if time.monotonic() - since > settle_s or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def scrape(base: str) -> dict[str, float]:
    """Totals of one replica's /metrics: requests (all, and by arm), recorded, dropped by reason."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    totals: Counter[str] = Counter()
    for family in text_string_to_metric_families(httpx.get(base + "/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == "medops_gateway_requests_total":
                totals["requests"] += sample.value
                totals[f"requests:{sample.labels['arm']}"] += sample.value
            elif sample.name == "medops_gateway_recorded_total":
                totals["recorded"] += sample.value
            elif sample.name == "medops_gateway_record_dropped_total":
                totals[f"dropped:{sample.labels['reason']}"] += sample.value
                totals["dropped"] += sample.value
    return dict(totals)


def scrape_all(bases: list[str]) -> dict[str, float]:
    summed: Counter[str] = Counter()
    for base in bases:
        summed.update(scrape(base))
    return dict(summed)


def wait_metrics(bases: list[str], key: str, expected: float, timeout: float = 30.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        totals = scrape_all(bases)
        if totals.get(key, 0) >= expected or time.monotonic() > deadline:
            return totals
        time.sleep(0.3)


def served(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in results if r["served_by"] is not None]


def duplicates(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(rid for rid, n in Counter(r["id"] for r in rows).items() if n > 1)


def arms_by_conversation(rows: list[dict[str, Any]]) -> dict[str, set[str]]:
    arms: dict[str, set[str]] = {}
    for row in rows:
        arms.setdefault(row["conversation"], set()).add(row["arm"])
    return arms


def temp_root() -> Path:
    """A folder the ``postgres`` user can enter (pytest's tmp_path is private to root)."""
    return Path(tempfile.mkdtemp(prefix="medops-pgload-"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["client"])
    parser.add_argument("spec", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    asyncio.run(_client(json.loads(args.spec.read_text()), args.out))
