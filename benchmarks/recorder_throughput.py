"""How many exchanges a second the gateway's recorder stores under ``--phi-policy redact``.

    python benchmarks/recorder_throughput.py [--exchanges 4000] [--workers 1 2] [--json]
    python benchmarks/recorder_throughput.py --cpu      # CPU per exchange of the redaction itself

Builds exchanges like the gateway's benchmark request (~0.8 KB of clinical chat in, ~0.8 KB of
answer out, from tests/privacy's corpus, some with PHI), hands them all to a ``Recorder`` (the
gateway's: redaction in ``--redaction-workers`` processes, batched SQLite writes) at once, and
times until every one is written. One figure per worker count, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from medops.monitor.recorder import Recorder, apply_phi_batch
from phi_throughput import conversations


def rows(n: int) -> list[dict]:
    texts = [t[:800] for t in conversations(n * 2, seed=1)]
    return [
        {
            "source": "gateway",
            "route": "/v1/chat/completions",
            "model": "bench",
            "arm": "primary",
            "status": 200,
            "messages": [{"role": "user", "content": texts[2 * i]}],
            "response": texts[2 * i + 1],
        }
        for i in range(n)
    ]


def measure(n: int, workers: int) -> dict:
    folder = Path(tempfile.mkdtemp())
    recorder = Recorder(str(folder / "r.db"), queue_size=n + 1, redaction_workers=workers).start()
    recorder.ready.wait(60)
    warm = rows(workers * 4)
    for row in warm:  # spawn the workers and load their detectors before the clock starts
        recorder.submit(row)
    while recorder.recorded < len(warm):
        time.sleep(0.05)
    batch = rows(n)
    started = time.perf_counter()
    for row in batch:
        recorder.submit(row)
    while recorder.recorded + recorder.dropped < len(warm) + n:
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    recorder.close()
    return {
        "workers": workers,
        "exchanges": n,
        "seconds": round(elapsed, 2),
        "per_second": round(n / elapsed),
        "dropped": recorder.dropped,
    }


def redaction_cpu(n: int) -> dict:
    """CPU time of ``apply_phi`` (what each redaction worker does per exchange), in this process."""
    apply_phi_batch(rows(5), "redact")  # the detector's one-time load
    batch = rows(n)
    started = time.process_time()
    apply_phi_batch(batch, "redact")
    cpu = time.process_time() - started
    return {"exchanges": n, "ms_cpu_per_exchange": round(cpu / n * 1000, 3), "per_second_per_core": round(n / cpu)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=4000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpu", action="store_true", help="only the redaction's CPU per exchange, in process")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.cpu:
        print(json.dumps(redaction_cpu(min(args.exchanges, 2000))))
        return
    results = [measure(args.exchanges, w) for w in args.workers]
    if args.json:
        print(json.dumps(results))
        return
    for r in results:
        print(
            f"{r['workers']} redaction worker(s): {r['exchanges']} exchanges in {r['seconds']} s, "
            f"{r['per_second']} recorded/s, {r['dropped']} dropped"
        )


if __name__ == "__main__":
    main()
