"""How long the dashboard's data for a large run takes to build (a benchmark, not a test).

Runs a HealthBench-shaped set of N examples (~11 criteria each) against the loopback server in
process, then times what the run page and the example page ask of ``medops.api``: the run with
its charts (``run_detail``), a page of 25 examples redacted for a viewer (``run_examples``) and
one example (``run_example``), each twice. The first view of a finished run reads its rows
(the run page's first view pays it); later views are served from the kept items.

    python benchmarks/dashboard_views.py --examples 1000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from healthbench_throughput import make_dataset
from medops import api
from medops.privacy import Redactor
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=1000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    make_dataset(folder / "set.jsonl", args.examples)
    os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark")
    with ServerThread(FakeOpenAIServer(FakeBehaviour())) as server:
        config = api.healthbench_config(
            data=str(folder / "set.jsonl"),
            model="openai:fake-model",
            grader="openai:fake-grader",
            model_base_url=server.base_url,
            grader_base_url=server.base_url,
            concurrency=256,
        )
        started = time.perf_counter()
        outcome = api.evaluate(config, db=folder / "medops.db", name="big")
        print(f"{args.examples} examples: run {outcome.status} in {time.perf_counter() - started:.1f} s")
    store = api.open_store(folder / "medops.db")
    Redactor().redact("Warm-up for Jane Doe")  # PHI detection's one-time load is not a page's cost
    views = {
        "run_detail (run page: metrics, intervals, charts)": lambda: api.run_detail("big", db=store),
        "run_examples (25 examples, redacted for a viewer)": lambda: api.run_examples("big", db=store, limit=25),
        "run_example (one example, redacted)": lambda: api.run_example("big", 500 % args.examples, db=store),
    }
    for label, view in views.items():
        times = []
        for _ in range(2):
            started = time.perf_counter()
            view()
            times.append(time.perf_counter() - started)
        print(f"{label:52s} first {times[0] * 1000:7.0f} ms   again {times[1] * 1000:7.0f} ms")


if __name__ == "__main__":
    main()
