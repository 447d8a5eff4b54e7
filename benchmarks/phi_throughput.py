"""PHI detection throughput on realistic text, in KB of UTF-8 per second on one core.

python benchmarks/phi_throughput.py [--conversations 5000] [--seconds 5] [--json]

Builds a conversation set like a HealthBench-style JSONL (English and Korean clinical notes,
chat turns and letters from the test corpus, mostly PHI-free, ~1.4 KB per conversation), then
times detect() and Redactor().redact() on each conversation in one process (one core), after a
warm-up call that builds the analyzer. Also reports the one-off start-up (import + build).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "privacy"))


def conversations(n: int, seed: int = 0) -> list[str]:
    import phi_corpus

    rng = random.Random(seed)
    phi = [d.text for d in phi_corpus.documents()]
    clean = phi_corpus.CLEAN
    out = []
    for _ in range(n):
        turns = [rng.choice(clean) for _ in range(rng.randint(4, 8))] + [
            rng.choice(phi) for _ in range(rng.randint(1, 3))
        ]
        rng.shuffle(turns)
        out.append("\n".join(turns))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=0, help="stop each measurement after this long (0: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    t0 = time.perf_counter()
    from medops.privacy import Redactor, detect

    detect("warm-up: MRN 12345678")
    startup = time.perf_counter() - t0
    texts = conversations(args.conversations)
    results = {"startup_s": round(startup, 2), "conversations": len(texts)}
    for name, fn in (("detect", detect), ("redact", lambda text: Redactor().redact(text))):
        done, size, entities = 0, 0, 0
        start = time.process_time()
        for text in texts:
            out = fn(text)
            entities += len(out) if isinstance(out, list) else 0
            size += len(text.encode("utf-8"))
            done += 1
            if args.seconds and time.process_time() - start > args.seconds:
                break
        cpu = time.process_time() - start
        results[name] = {
            "conversations": done,
            "kb": round(size / 1024, 1),
            "cpu_s": round(cpu, 2),
            "kb_per_s_per_core": round(size / 1024 / cpu, 1),
            "ms_per_conversation": round(cpu / done * 1000, 3),
        }
        if name == "detect":
            results[name]["entities"] = entities
    if args.json:
        print(json.dumps(results))
        return
    print(f"start-up (import Presidio, build the analyzer): {results['startup_s']} s")
    for name in ("detect", "redact"):
        r = results[name]
        print(
            f"{name:<7} {r['conversations']} conversations, {r['kb']} KB in {r['cpu_s']} s CPU: "
            f"{r['kb_per_s_per_core']} KB/s per core, {r['ms_per_conversation']} ms per conversation"
        )


if __name__ == "__main__":
    main()
