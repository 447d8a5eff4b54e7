"""What ``medops gateway`` adds to a request, on loopback, under N concurrent clients.

    python benchmarks/gateway_overhead.py [--clients 100] [--requests 2000] [--latency 0.5]
                                          [--token-delay 0.02] [--phi-policy redact] [--json]

Starts the scripted upstream (``medops.testing.fake_openai``, ``--latency`` seconds per answer,
streamed words ``--token-delay`` apart) and ``medops gateway`` in front of it (store: a SQLite file
in a temporary folder), as processes. Then, in rounds that alternate direct and through the
gateway (so both see the same machine), N clients each send requests back to back: plain
completions (latency to the last byte) and streamed ones (time to the first content chunk).
Added latency is the gateway's percentile minus the direct one. Every request must succeed,
and at the end the gateway's /metrics must show every exchange recorded, none dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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
                            if first is None and b'"content": "' in line and b'"content": ""' not in line:
                                first = time.perf_counter() - started
                        results.append(first if first is not None else float("nan"))
                    else:
                        await response.read()
                        results.append(time.perf_counter() - started)

        await asyncio.gather(*(client(c) for c in range(clients)))
    if failures:
        raise SystemExit(f"{failures} requests failed")
    return results


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
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

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
                ],
                env=env,
                stderr=subprocess.DEVNULL,
            )
        )
        gateway = f"http://127.0.0.1:{gw_port}"
        wait_ready(gateway + "/healthz", procs[1])
        asyncio.run(run_round(gateway, args.clients, args.clients * 2, False))  # warm both pools
        asyncio.run(run_round(direct, args.clients, args.clients * 2, False))
        report: dict[str, dict[str, float]] = {}
        sent = 0
        for mode, stream in (("plain latency", False), ("stream first token", True)):
            seen: dict[str, list[float]] = {"direct": [], "gateway": []}
            for _ in range(args.rounds):
                for path, base in (("direct", direct), ("gateway", gateway)):
                    stagger = 0.0 if args.burst else args.latency
                    seen[path] += asyncio.run(run_round(base, args.clients, args.requests, stream, stagger))
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
            proc.wait(10)
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
        print(
            f"{mode:20} n={r['n']:>5}  direct p50 {r['direct_p50_ms']:7.1f} ms  "
            f"gateway p50 {r['gateway_p50_ms']:7.1f} ms "
            f"(+{r['added_p50_ms']:.2f})  direct p99 {r['direct_p99_ms']:7.1f}  gateway p99 {r['gateway_p99_ms']:7.1f} "
            f"(+{r['added_p99_ms']:.2f})"
        )


if __name__ == "__main__":
    main()
