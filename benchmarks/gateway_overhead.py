"""What ``medops gateway`` adds to a request, on loopback, under N concurrent clients.

    python benchmarks/gateway_overhead.py [--clients 100] [--requests 2000] [--latency 0.5]
                                          [--token-delay 0.02] [--phi-policy redact] [--json]
                                          [--redaction-workers N] [--record-overflow drop|backpressure]
                                          [--litellm auto|yes|no]

LiteLLM's proxy is measured beside it, in the same rounds, when it is installed (the ``bench``
extra, pinned to a release from before the compromised 2026 uploads, its wheel's hash checked by
``benchmarks/requirements-bench.txt``): the same upstream behind ``litellm --config`` (one
worker, no access log, as the gateway runs; the model mapped to ``openai/bench`` at the upstream;
its cost map read from the wheel rather than fetched), its added latency next to the gateway's.

For each system and mode the script also reports requests per second (the round's requests over
its wall time, N in flight) and CPU per request of the proxy process and its children (the
gateway's redaction workers; LiteLLM has none), read from ``/proc`` around each measured round.
The issue's configuration is a zero-latency upstream at 32 in flight:
``--clients 32 --latency 0 --token-delay 0``.

Starts the scripted upstream (``medops.testing.fake_openai``, ``--latency`` seconds per answer,
streamed words ``--token-delay`` apart) and ``medops gateway`` in front of it (store: a SQLite file
in a temporary folder), as processes. Then, in rounds that alternate direct and through the
gateway (so both see the same machine), N clients each send requests back to back: plain
completions (latency to the last byte) and streamed ones (time to the first content chunk).
Added latency is the gateway's percentile minus the direct one. Every request must succeed,
and at the end the gateway's /metrics must show every exchange recorded, none dropped.

A second figure comes from the gateway's own clock (``medops_gateway_overhead_seconds``, over the
measured rounds only): the time each request spent in the gateway's code rather than waiting on
the upstream (plain: arrival to upstream call plus upstream's last byte to answer sent; stream:
arrival to upstream call plus the longest any chunk waited). It leaves out what the client-side
figure includes and the gateway cannot see: its socket queues, and the load generator and
upstream competing with it for the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: process exited {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} not ready")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def tree_cpu_s(pid: int) -> tuple[float, float]:
    """User + system CPU seconds of a process, and of it with its live descendants, from ``/proc``.

    The gateway's redaction workers are its children, so the second figure counts them; a proxy's
    CPU cannot be read from the client, which shares the machine (Linux only)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited while we looked
            continue
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += stats.get(current, (0, 0.0))[1]
        todo += [child for child, (parent, _) in stats.items() if parent == current]
    return stats.get(pid, (0, 0.0))[1], total


FIRST_CONTENT = re.compile(rb'"content":\s*"(?!")')  # a chunk with text; LiteLLM writes no space after the colon


async def run_round(base: str, clients: int, requests: int, stream: bool, stagger_s: float = 0.0) -> list[float]:
    """Latency (plain: to the last byte) or time to the first content chunk (stream), in seconds.

    With ``stagger_s``, client c starts ``c / clients * stagger_s`` late, so the N clients are in
    flight at once in a steady state instead of arriving in one burst each round trip (a burst of
    N requests in the same millisecond measures the machine's queue, not the gateway)."""
    results: list[float] = []
    failures = 0
    counter = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(c: int) -> None:
            nonlocal failures
            await asyncio.sleep(stagger_s * c / clients)
            for i in counter:
                body = {"model": "bench", "messages": [{"role": "user", "content": f"client {c} request {i}"}]}
                if stream:
                    body |= {"stream": True, "stream_options": {"include_usage": True}}
                started = time.perf_counter()
                async with session.post(base + "/v1/chat/completions", json=body) as response:
                    if response.status != 200:
                        failures += 1
                    if stream:
                        first = None
                        async for line in response.content:
                            if first is None and FIRST_CONTENT.search(line):
                                first = time.perf_counter() - started
                        if first is None:
                            failures += 1
                        else:
                            results.append(first)
                    else:
                        await response.read()
                        results.append(time.perf_counter() - started)

        await asyncio.gather(*(client(c) for c in range(clients)))
    if failures:
        raise SystemExit(f"{base}: {failures} requests failed or streamed no content")
    return results


def overhead_histogram(base: str) -> dict[str, dict[float, float]]:
    """The gateway's ``medops_gateway_overhead_seconds`` buckets: {kind: {upper bound: count}}."""
    import urllib.request

    found: dict[str, dict[float, float]] = {}
    for line in urllib.request.urlopen(base + "/metrics").read().decode().splitlines():
        if line.startswith("medops_gateway_overhead_seconds_bucket{"):
            labels = dict(part.split("=", 1) for part in line[line.index("{") + 1 : line.index("}")].split(","))
            kind, le = labels["kind"].strip('"'), labels["le"].strip('"')
            found.setdefault(kind, {})[float(le)] = float(line.split()[-1])
    return found


def histogram_summary(before: dict[float, float], after: dict[float, float]) -> dict[str, float]:
    """Share of requests at or under 2 and 10 ms, and p50/p99 interpolated within their bucket."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    n = counts[-1] if counts else 0.0
    if not n:
        return {"n": 0}

    def quantile(q: float) -> float:
        rank, lower, below = q * n, 0.0, 0.0
        for bound, cumulative in zip(bounds, counts, strict=True):
            if cumulative >= rank:
                if bound == float("inf"):
                    return lower
                inside = cumulative - below
                return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = bound, cumulative
        return lower

    share = {b: c / n for b, c in zip(bounds, counts, strict=True)}
    return {
        "n": n,
        "p50_ms": quantile(0.5) * 1000,
        "p99_ms": quantile(0.99) * 1000,
        "share_le_2ms": share.get(0.002, float("nan")),
        "share_le_10ms": share.get(0.01, float("nan")),
    }


def start_litellm(tmp: Path, upstream: str, procs: list[subprocess.Popen]) -> str:
    """LiteLLM's proxy (one worker) in front of the same upstream; its base URL."""
    port = free_port()
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/bench\n"
        f"      api_base: {upstream}/v1\n"
        "      api_key: sk-bench\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    # no access log line per request, as ``medops gateway`` runs uvicorn (access_log=False)
    log_config = tmp / "litellm-logging.json"
    log_config.write_text(
        json.dumps(
            {
                "version": 1,
                "disable_existing_loggers": False,
                "loggers": {name: {"level": "WARNING"} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
            }
        )
    )
    # the venv's own CLI, not whatever ``litellm`` is first on PATH
    beside = Path(sys.executable).parent / "litellm"
    command = str(beside) if beside.exists() else shutil.which("litellm")
    if command is None:
        print("error: --litellm yes but no litellm CLI beside this python or on PATH", file=sys.stderr)
        raise SystemExit(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITELLM_")) and k != "DATABASE_URL"}
    procs.append(
        subprocess.Popen(
            [
                command,
                "--config",
                str(config),
                "--log_config",
                str(log_config),
                "--port",
                str(port),
                "--num_workers",
                "1",
            ],
            # no network here: the model cost map comes from the wheel, not a download at start-up
            env=env | {"LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(base + "/health/liveliness", procs[-1], timeout=120)
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per mode and path (alternating)")
    parser.add_argument("--latency", type=float, default=0.5, help="upstream seconds per answer")
    parser.add_argument("--token-delay", type=float, default=0.02, help="upstream seconds between streamed words")
    parser.add_argument("--phi-policy", default="redact")
    parser.add_argument(
        "--burst", action="store_true", help="start every client at once (default: spread over one upstream latency)"
    )
    parser.add_argument("--redaction-workers", type=int, default=None)
    parser.add_argument("--record-overflow", default="drop", choices=("drop", "backpressure"))
    parser.add_argument("--litellm", default="auto", choices=("auto", "yes", "no"), help="measure LiteLLM's proxy too")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import importlib.util

    installed = importlib.util.find_spec("litellm") is not None
    if args.litellm == "yes" and not installed:
        print(
            "error: --litellm yes but litellm is not installed here (benchmarks/requirements-bench.txt)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    with_litellm = args.litellm == "yes" or (args.litellm == "auto" and installed)

    tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDOPS_")} | {"MEDOPS_DB": str(tmp / "bench.db")}
    up_port, gw_port = free_port(), free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "medops.testing.fake_openai",
                "--port",
                str(up_port),
                "--latency",
                str(args.latency),
                "--token-delay",
                str(args.token_delay),
            ],
            stdout=subprocess.DEVNULL,
        )
    ]
    try:
        direct = f"http://127.0.0.1:{up_port}"
        wait_ready(direct + "/v1/models", procs[0])
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "medops.cli.app",
                    "gateway",
                    "--upstream",
                    direct + "/v1",
                    "--port",
                    str(gw_port),
                    "--phi-policy",
                    args.phi_policy,
                    "--record-overflow",
                    args.record_overflow,
                    *(["--redaction-workers", str(args.redaction_workers)] if args.redaction_workers else []),
                ],
                env=env,
                stderr=subprocess.DEVNULL,
            )
        )
        gateway = f"http://127.0.0.1:{gw_port}"
        wait_ready(gateway + "/healthz", procs[1])
        paths = [("direct", direct), ("gateway", gateway)]
        pids = {"gateway": procs[1].pid}
        if with_litellm:
            paths.append(("litellm", start_litellm(tmp, direct, procs)))
            pids["litellm"] = procs[-1].pid
        for _, base in paths:  # warm every pool, both modes (LiteLLM imports its streaming code on first use)
            for stream in (False, True):
                asyncio.run(run_round(base, args.clients, args.clients * 2, stream))
        report: dict[str, dict[str, float]] = {}
        sent = 0
        own_before = overhead_histogram(gateway)
        for mode, stream in (("plain latency", False), ("stream first token", True)):
            seen: dict[str, list[float]] = {path: [] for path, _ in paths}
            wall = dict.fromkeys(seen, 0.0)
            cpu = {path: [0.0, 0.0] for path in pids}  # [process, with children]
            for _ in range(args.rounds):
                for path, base in paths:  # interleaved: every system sees the same machine
                    stagger = 0.0 if args.burst else args.latency
                    cpu_before = tree_cpu_s(pids[path]) if path in pids else (0.0, 0.0)
                    started = time.perf_counter()
                    seen[path] += asyncio.run(run_round(base, args.clients, args.requests, stream, stagger))
                    wall[path] += time.perf_counter() - started
                    if path in pids:
                        cpu_after = tree_cpu_s(pids[path])
                        cpu[path] = [cpu[path][k] + cpu_after[k] - cpu_before[k] for k in (0, 1)]
                    sent += args.requests if path == "gateway" else 0
            d, g = seen["direct"], seen["gateway"]
            report[mode] = {
                "n": len(g),
                "direct_p50_ms": statistics.median(d) * 1000,
                "gateway_p50_ms": statistics.median(g) * 1000,
                "added_p50_ms": (statistics.median(g) - statistics.median(d)) * 1000,
                "direct_p99_ms": pct(d, 0.99) * 1000,
                "gateway_p99_ms": pct(g, 0.99) * 1000,
                "added_p99_ms": (pct(g, 0.99) - pct(d, 0.99)) * 1000,
            }
            for path in seen:  # the round's wall includes the client's start (stagger), same for every path
                report[mode][f"{path}_rps"] = len(seen[path]) / wall[path]
            for path, (own, with_children) in cpu.items():
                report[mode][f"{path}_cpu_ms_per_request"] = own * 1000 / len(seen[path])
                report[mode][f"{path}_tree_cpu_ms_per_request"] = with_children * 1000 / len(seen[path])
            if "litellm" in seen:
                lite = seen["litellm"]
                added = (statistics.median(lite) - statistics.median(d)) * 1000
                report[mode] |= {
                    "litellm_p50_ms": statistics.median(lite) * 1000,
                    "litellm_added_p50_ms": added,
                    "litellm_added_p99_ms": (pct(lite, 0.99) - pct(d, 0.99)) * 1000,
                    "litellm_over_gateway_added_p50": added / max(report[mode]["added_p50_ms"], 1e-3),
                    "gateway_over_litellm_rps": report[mode]["gateway_rps"] / report[mode]["litellm_rps"],
                    "litellm_over_gateway_cpu": report[mode]["litellm_cpu_ms_per_request"]
                    / report[mode]["gateway_cpu_ms_per_request"],
                }
        own_after = overhead_histogram(gateway)
        for kind in own_after:
            report[f"gateway clock, {kind}"] = histogram_summary(own_before.get(kind, {}), own_after[kind])
        time.sleep(3)  # let the recorder catch up
        import urllib.request

        text = urllib.request.urlopen(gateway + "/metrics").read().decode()
        recorded = dropped = 0.0
        for line in text.splitlines():
            if line.startswith("medops_gateway_recorded_total"):
                recorded = float(line.split()[-1])
            elif line.startswith("medops_gateway_record_dropped_total"):
                dropped += float(line.split()[-1])
        report["recording"] = {"sent_through_gateway": sent, "recorded": recorded, "dropped": dropped}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:  # the gateway first writes what is still queued (up to 10 s)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{args.clients} clients, upstream {args.latency * 1000:.0f} ms, "
        f"tokens {args.token_delay * 1000:.0f} ms apart, "
        f"PHI policy {args.phi_policy}"
    )
    for mode, r in report.items():
        if mode == "recording":
            print(f"recording: {r}")
            continue
        if mode.startswith("gateway clock"):
            if r["n"]:
                print(
                    f"{mode:20} n={r['n']:>5.0f}  in the gateway's code p50 {r['p50_ms']:.2f} ms  "
                    f"p99 {r['p99_ms']:.2f} ms  (<= 2 ms: {r['share_le_2ms']:.1%}, "
                    f"<= 10 ms: {r['share_le_10ms']:.1%})"
                )
            continue
        if "litellm_added_p50_ms" in r:
            print(
                f"{'':20} litellm p50 {r['litellm_p50_ms']:7.1f} ms (+{r['litellm_added_p50_ms']:.2f}, "
                f"p99 +{r['litellm_added_p99_ms']:.2f}): "
                f"{r['litellm_over_gateway_added_p50']:.1f}x the gateway's added p50"
            )
        print(
            f"{'':20} requests/s: direct {r['direct_rps']:.0f}, gateway {r['gateway_rps']:.0f}"
            + (f", litellm {r['litellm_rps']:.0f}" if "litellm_rps" in r else "")
            + f"; CPU per request: gateway {r['gateway_cpu_ms_per_request']:.2f} ms "
            + f"(with its redaction workers {r['gateway_tree_cpu_ms_per_request']:.2f})"
            + (f", litellm {r['litellm_cpu_ms_per_request']:.2f} ms" if "litellm_rps" in r else "")
        )
        print(
            f"{mode:20} n={r['n']:>5}  direct p50 {r['direct_p50_ms']:7.1f} ms  "
            f"gateway p50 {r['gateway_p50_ms']:7.1f} ms "
            f"(+{r['added_p50_ms']:.2f})  direct p99 {r['direct_p99_ms']:7.1f}  gateway p99 {r['gateway_p99_ms']:7.1f} "
            f"(+{r['added_p99_ms']:.2f})"
        )


if __name__ == "__main__":
    main()
