"""What ``medops gateway`` adds to a request, on loopback, under N concurrent clients.

    python benchmarks/gateway_overhead.py [--clients 100] [--requests 2000] [--latency 0.5]
                                          [--token-delay 0.02] [--phi-policy redact] [--json]
                                          [--redaction-workers N] [--record-overflow drop|backpressure]
                                          [--litellm auto|yes|no]

LiteLLM's proxy is measured beside it, in the same rounds, when it is installed (the ``bench``
extra, pinned to a release from before the compromised 2026 uploads, its wheel's hash checked by
``benchmarks/requirements-bench.txt``): the same upstream behind ``litellm --config`` (one
worker), and its added latency next to the gateway's, as a ratio.

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
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITELLM_"))}
    procs.append(
        subprocess.Popen(
            ["litellm", "--config", str(config), "--port", str(port), "--num_workers", "1"],
            env=env | {"LITELLM_LOG": "ERROR"},
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

    with_litellm = args.litellm == "yes" or (args.litellm == "auto" and importlib.util.find_spec("litellm") is not None)

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
        if with_litellm:
            paths.append(("litellm", start_litellm(tmp, direct, procs)))
        for _, base in paths:  # warm every pool
            asyncio.run(run_round(base, args.clients, args.clients * 2, False))
        report: dict[str, dict[str, float]] = {}
        sent = 0
        own_before = overhead_histogram(gateway)
        for mode, stream in (("plain latency", False), ("stream first token", True)):
            seen: dict[str, list[float]] = {path: [] for path, _ in paths}
            for _ in range(args.rounds):
                for path, base in paths:  # interleaved: every system sees the same machine
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
            if "litellm" in seen:
                lite = seen["litellm"]
                added = (statistics.median(lite) - statistics.median(d)) * 1000
                report[mode] |= {
                    "litellm_p50_ms": statistics.median(lite) * 1000,
                    "litellm_added_p50_ms": added,
                    "litellm_added_p99_ms": (pct(lite, 0.99) - pct(d, 0.99)) * 1000,
                    "litellm_over_gateway_added_p50": added / max(report[mode]["added_p50_ms"], 1e-3),
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
            f"{mode:20} n={r['n']:>5}  direct p50 {r['direct_p50_ms']:7.1f} ms  "
            f"gateway p50 {r['gateway_p50_ms']:7.1f} ms "
            f"(+{r['added_p50_ms']:.2f})  direct p99 {r['direct_p99_ms']:7.1f}  gateway p99 {r['gateway_p99_ms']:7.1f} "
            f"(+{r['added_p99_ms']:.2f})"
        )


if __name__ == "__main__":
    main()
