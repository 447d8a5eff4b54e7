"""Reward throughput and end-to-end exam-run time (a benchmark, not a test).

python benchmarks/mcqa_throughput.py --completions 100000 --items 1273 --latency 0.2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from medops.rewards import accuracy_reward, make_reward

MEDQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mcqa" / "medqa" / "test.jsonl"


def completions(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """A realistic mix: CoT with \\boxed{}, R1 tags, short answers, Korean, and unparseable replies."""
    rng = random.Random(seed)
    pool = []
    for _ in range(2000):
        letter, kind = rng.choice("ABCDE"), rng.random()
        reasoning = "The patient presents with findings that point to one diagnosis. " * rng.randint(3, 15)
        if kind < 0.5:
            pool.append(f"Let's think step by step. {reasoning}Therefore the answer is \\boxed{{{letter}}}.")
        elif kind < 0.75:
            pool.append(f"<think>{reasoning}</think>\n<answer>{letter}</answer>")
        elif kind < 0.9:
            pool.append(f"Answer: {letter}")
        elif kind < 0.95:
            pool.append(f"풀이: {reasoning}\n정답은 {'ABCDE'.index(letter) + 1}번입니다.")
        else:
            pool.append(f"I am not certain. {reasoning}")
    texts = [pool[i % len(pool)] for i in range(n)]
    return texts, [rng.choice("ABCDE") for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--completions", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=1273)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args()
    texts, gold = completions(args.completions)
    report: dict = {"completions": len(texts), "mean_chars": round(sum(map(len, texts)) / len(texts))}
    for label, reward in (("binary", accuracy_reward), ("binary_plus_format_0.1", make_reward(0.1))):
        started = time.perf_counter()
        reward(prompts=None, completions=texts, answer=gold)
        report[f"reward_{label}_s"] = round(time.perf_counter() - started, 3)
    if MEDQA.exists():
        server = subprocess.Popen(
            [sys.executable, "-m", "medops.testing.fake_openai", "--latency", str(args.latency)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            base_url = server.stdout.readline().strip()  # type: ignore[union-attr]
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                result = subprocess.run(
                    [
                        "medops",
                        "eval",
                        "mcqa",
                        "--task",
                        "medqa",
                        "--data",
                        str(MEDQA),
                        "--limit",
                        str(args.items),
                        "--model",
                        "openai:bench",
                        "--model-base-url",
                        base_url,
                        "--style",
                        "cot",
                        "--concurrency",
                        str(args.concurrency),
                        "--no-cache",
                        "--json",
                        "--db",
                        f"{tmp}/b.db",
                    ],
                    capture_output=True,
                    text=True,
                    env={**os.environ, "OPENAI_API_KEY": "bench"},
                    check=True,
                )
                wall = time.perf_counter() - started
            summary = json.loads(result.stdout)
            ideal = summary["n_examples"] * args.latency / args.concurrency
            report.update(
                mcqa_items=summary["n_examples"],
                mcqa_wall_s=round(wall, 2),
                mcqa_ideal_s=round(ideal, 2),
                mcqa_unparsed=summary["n_unparsed"],
            )
        finally:
            server.terminate()
            server.wait()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
