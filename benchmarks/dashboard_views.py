"""How long the dashboard's data for a large run takes to build (a benchmark, not a test).

Runs a HealthBench-shaped set of N examples (~11 criteria each) against the loopback server in
process, then times what the run page and the example page ask of ``medops.api``: the run with
its charts (``run_detail``), a page of 25 examples redacted for a viewer (``run_examples``) and
one example (``run_example``), each twice, in a fresh process (a cold server), then ``medops
report`` on the run (wall and CPU, in a fresh process), from its prepared view and from its rows (a
copy of the store without the prepared view: what the report read before). A run's views are
prepared in the store as it ends (its summary and samples in order, evaluation/prepared_views.py),
else on its first view; a view in any process reads the prepared summary and one page of
samples, and a redacted view already shown is kept per (run, sample). ``--db`` reuses a store that
holds run "big" (a 5,000-example run takes minutes to make on a loaded machine); ``--fresh`` drops
its prepared view first so a first view that prepares it (a run recorded before) is measured.

    python benchmarks/dashboard_views.py --examples 5000
    python benchmarks/dashboard_views.py --db /tmp/medops.db --fresh
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from healthbench_throughput import make_dataset
from medops import api
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread

VIEWS = """
import json, sys, time
t0 = time.perf_counter()
from medops import api
store = api.open_store(sys.argv[1], create=False)
imported = time.perf_counter() - t0
views = {
    "run_detail (run page: metrics, intervals, charts)": lambda: api.run_detail("big", db=store),
    "run_examples (25 examples, redacted for a viewer)": lambda: api.run_examples("big", db=store, limit=25),
    "run_example (one example, redacted)": lambda: api.run_example("big", int(sys.argv[2]), db=store),
}
out = {"import_s": imported, "presidio_imported": None}
for label, view in views.items():
    times = []
    for _ in range(2):
        started = time.perf_counter()
        view()
        times.append(time.perf_counter() - started)
    out[label] = times
out["presidio_imported"] = "presidio_analyzer" in sys.modules
print(json.dumps(out))
"""


REPORT = """
import json, resource, sys, time
from medops import api
store = api.open_store(sys.argv[1], create=False)
wall, cpu = time.perf_counter(), time.process_time()
text = api.report("big", db=store)
print(json.dumps({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu, "bytes": len(text)}))
"""


def report_time(db: Path) -> dict:
    """``medops report`` on run "big" in a new process: wall and CPU seconds, bytes written."""
    done = subprocess.run([sys.executable, "-c", REPORT, str(db)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout)


def without_prepared(db: Path) -> Path:
    """A copy of the store with no prepared view (as a run recorded before this was added)."""
    import shutil

    from sqlalchemy import delete

    from medops.store.schema import PreparedSample, PreparedView

    copy = db.with_name(db.stem + "-rows" + db.suffix)
    shutil.copyfile(db, copy)
    store = api.open_store(copy)
    with store.session() as s:
        s.execute(delete(PreparedSample))
        s.execute(delete(PreparedView))
    store.engine.dispose()
    return copy


def cold_views(db: Path, example: int) -> dict:
    """The views in a new process, as a server started after the run sees them."""
    done = subprocess.run([sys.executable, "-c", VIEWS, str(db), str(example)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--db", type=Path, help="a store with run 'big' (skips making the run)")
    parser.add_argument("--fresh", action="store_true", help="drop the run's prepared view first")
    args = parser.parse_args()
    if args.db is None:
        args.db = make_run(args.examples)
    if args.fresh:
        from sqlalchemy import delete

        from medops.store.schema import PreparedSample, PreparedView

        store = api.open_store(args.db)
        with store.session() as s:
            s.execute(delete(PreparedSample))
            s.execute(delete(PreparedView))
    first = "first view of the run (prepares it)" if args.fresh else "first view after the run (prepared as it ended)"
    for attempt in (first, "a new server process (prepared)"):
        result = cold_views(args.db, 500 % args.examples)
        print(
            f"{attempt}: import medops.api {result.pop('import_s') * 1000:.0f} ms, "
            f"Presidio imported: {result.pop('presidio_imported')}"
        )
        for label, times in result.items():
            print(f"  {label:52s} first {times[0] * 1000:7.0f} ms   again {times[1] * 1000:7.0f} ms")
    for label, db in (
        ("from its prepared view", args.db),
        ("from its rows (no prepared view)", without_prepared(args.db)),
    ):
        found = report_time(db)
        print(
            f"medops report {label}: wall {found['wall_s']:.2f} s, CPU {found['cpu_s']:.2f} s, "
            f"{found['bytes'] / 1e6:.1f} MB"
        )


def make_run(examples: int) -> Path:
    folder = Path(tempfile.mkdtemp())
    make_dataset(folder / "set.jsonl", examples)
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
        seconds = time.perf_counter() - started
        print(f"{examples} examples: run {outcome.status} in {seconds:.1f} s (its views prepared as it ended)")
    return folder / "medops.db"


if __name__ == "__main__":
    main()
