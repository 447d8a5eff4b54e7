"""HealthBench pipeline throughput against the loopback server (a benchmark, not a test).

Generates a HealthBench-shaped set (N examples, ~11 criteria each), serves it from
``medops.testing.fake_openai`` in a separate process with fixed latency, runs
``medops eval healthbench`` as another process and reports wall time against the ideal
(answered calls x latency / requests in flight), client CPU seconds per call and peak RSS.

    python benchmarks/healthbench_throughput.py --examples 1000 --latency 0.2 --concurrency 256

A rate-limited endpoint: ``--max-in-flight 64`` makes the server answer 429 (``Retry-After: 1``)
to requests beyond 64 in flight. The ideal is then answered calls x latency / 64, and the report
adds the rejected attempts as medops counted them and as the server counted them.

    python benchmarks/healthbench_throughput.py --examples 200 --concurrency 256 --max-in-flight 64 --cache
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

THEMES = [
    "emergency_referrals",
    "context_seeking",
    "global_health",
    "health_data_tasks",
    "hedging",
    "communication",
    "complex_responses",
]
AXES = ["accuracy", "completeness", "communication_quality", "context_awareness", "instruction_following"]


def make_dataset(path: Path, n: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    criteria = 0
    with path.open("w") as out:
        for i in range(n):
            turns = [
                {
                    "role": "user",
                    "content": " ".join(
                        rng.choice(
                            ["pain", "fever", "dose", "child", "week", "doctor", "blood", "pressure", "sleep", "cough"]
                        )
                        for _ in range(rng.randint(30, 120))
                    ),
                }
            ]
            k = rng.randint(8, 14)
            rubrics = [
                {
                    "criterion": f"Criterion {j}: mentions item {rng.randint(0, 999)} and explains why.",
                    "points": rng.choice([1, 2, 3, 5, 7, 10, -2, -5]) if j else 5,
                    "tags": [f"axis:{rng.choice(AXES)}", "level:example"],
                }
                for j in range(k)
            ]
            criteria += k
            out.write(
                json.dumps(
                    {
                        "prompt": turns,
                        "prompt_id": f"bench-{i}",
                        "rubrics": rubrics,
                        "example_tags": [f"theme:{rng.choice(THEMES)}"],
                    }
                )
                + "\n"
            )
    return criteria


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--transport", choices=["aiohttp", "sdk"], default="aiohttp")
    parser.add_argument("--cache", action="store_true", help="leave the store's response cache on (a cold cache)")
    parser.add_argument("--max-in-flight", type=int, help="the endpoint answers 429 beyond this many in flight")
    parser.add_argument("--retry-after", default="1", help="the Retry-After of the endpoint's 429s (seconds)")
    args = parser.parse_args()
    suffix = "" if args.transport == "aiohttp" else f",transport={args.transport}"
    limits = [] if args.max_in_flight is None else ["--max-in-flight", str(args.max_in_flight)]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "bench.jsonl"
        n_criteria = make_dataset(data, args.examples)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "medops.testing.fake_openai",
                "--latency",
                str(args.latency),
                "--retry-after",
                args.retry_after,
                *limits,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            base_url = server.stdout.readline().strip()  # type: ignore[union-attr]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            result = subprocess.run(
                [
                    "medops",
                    "eval",
                    "healthbench",
                    "--data",
                    str(data),
                    "--model",
                    f"openai:bench-model{suffix}",
                    "--grader",
                    f"openai:bench-grader{suffix}",
                    "--model-base-url",
                    base_url,
                    "--grader-base-url",
                    base_url,
                    "--concurrency",
                    str(args.concurrency),
                    *([] if args.cache else ["--no-cache"]),
                    "--json",
                    "--db",
                    str(Path(tmp) / "b.db"),
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "OPENAI_API_KEY": "bench"},
            )
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats") as reply:
                stats = json.load(reply)
        finally:
            server.terminate()
            server.wait()
        if result.returncode != 0:
            sys.exit(f"medops failed:\n{result.stderr}")
        summary = json.loads(result.stdout)
        usage = summary["usage"]
        calls = usage["model"]["calls"] + usage["grader"]["calls"]  # answered: a 429 is not a call
        rejected = usage["model"]["rejected"] + usage["grader"]["rejected"]
        if calls + rejected != stats["calls"] or rejected != stats["rejected_over_cap"]:
            sys.exit(f"medops counted {calls} calls and {rejected} rejected attempts; the server saw {stats}")
        # Only the examples' calls are sequential per example (model, then graders): ideal is
        # the pure latency bound with as many requests in flight as client and endpoint allow.
        in_flight = min(args.concurrency, args.max_in_flight or args.concurrency)
        ideal = calls * args.latency / in_flight
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        report = {
            "transport": args.transport,
            "cache": args.cache,
            "examples": args.examples,
            "criteria": n_criteria,
            "calls": calls,
            "latency_s": args.latency,
            "concurrency": args.concurrency,
            "endpoint_max_in_flight": args.max_in_flight,
            "rejected": rejected,
            "rejected_share": round(rejected / (calls + rejected), 3),
            "server_peak_in_flight": stats["peak_in_flight"],
            "wall_s": round(wall, 2),
            "ideal_s": round(ideal, 2),
            "wall_over_ideal": round(wall / ideal, 2),
            "client_cpu_s": round(cpu, 2),
            "client_cpu_ms_per_call": round(1000 * cpu / calls, 3),
            "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
