"""How many exchanges a second the gateway's recorder stores under ``--phi-policy redact``.

    python benchmarks/recorder_throughput.py [--exchanges 4000] [--workers 1 2] [--json]
    python benchmarks/recorder_throughput.py --cpu      # CPU per exchange of the redaction itself
    python benchmarks/recorder_throughput.py --cpu --resent  # ... of chat exchanges that resend the conversation

Builds exchanges like the gateway's benchmark request (~0.8 KB of clinical chat in, ~0.8 KB of
answer out, from tests/privacy's corpus, some with PHI), hands them all to a ``Recorder`` (the
gateway's: redaction in ``--redaction-workers`` processes, batched SQLite writes) at once, and
times until every one is written. One figure per worker count, measured in the same run.
Every exchange's text is distinct (so the recorder's memo of detection results never hits); with
``--resent`` each exchange is a turn of a chat that resends the system prompt and the whole
conversation so far, as chat clients do (the memo's case), a separate figure.
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


def rows(n: int, seed: int = 1) -> list[dict]:
    texts = [t[:800] for t in conversations(n * 2, seed=seed)]
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


SYSTEM = "You are a clinical assistant for the ward team. Answer briefly; cite the guideline you use."


def resent_rows(n: int, turns: int = 4) -> list[dict]:
    """``n`` exchanges of chats of ``turns`` turns: each sends the system prompt, every earlier
    question and answer, and a new question (~0.8 KB each, distinct between chats)."""
    texts = [t[:800] for t in conversations(n * 2, seed=2)]
    out: list[dict] = []
    chat = 0
    while len(out) < n:
        said = texts[chat * 2 * turns : (chat + 1) * 2 * turns] or texts[: 2 * turns]
        for turn in range(min(turns, len(said) // 2)):
            messages = [{"role": "system", "content": SYSTEM}]
            for i, text in enumerate(said[: 2 * turn + 1]):
                messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
            out.append({**rows(1)[0], "messages": messages, "response": said[2 * turn + 1]})
        chat += 1
    return out[:n]


def measure(n: int, workers: int) -> dict:
    folder = Path(tempfile.mkdtemp())
    recorder = Recorder(str(folder / "r.db"), queue_size=n + 1, redaction_workers=workers).start()
    recorder.ready.wait(60)
    warm = rows(workers * 4, seed=9)
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


def redaction_cpu(n: int, resent: bool = False) -> dict:
    """CPU time of ``apply_phi`` (what each redaction worker does per exchange), in this process."""
    apply_phi_batch(rows(5, seed=9), "redact")  # the detector's one-time load
    batch = resent_rows(n) if resent else rows(n)
    started = time.process_time()
    apply_phi_batch(batch, "redact")
    cpu = time.process_time() - started
    size = sum(len(m["content"].encode()) for row in batch for m in row["messages"] or ())
    size += sum(len(r["response"].encode()) for r in batch)
    return {
        "exchanges": n,
        "resent": resent,
        "kb_per_exchange": round(size / n / 1024, 2),
        "ms_cpu_per_exchange": round(cpu / n * 1000, 3),
        "per_second_per_core": round(n / cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=4000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpu", action="store_true", help="only the redaction's CPU per exchange, in process")
    parser.add_argument("--resent", action="store_true", help="with --cpu: chats that resend the conversation")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.cpu:
        print(json.dumps(redaction_cpu(min(args.exchanges, 2000), args.resent)))
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
