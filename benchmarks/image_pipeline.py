"""Image exam items through the whole pipeline (a benchmark, not a test): decode, resize, encode,
cache and store, against the loopback stand-in server; items per second, the run's peak memory,
and store growth per image (each image kept once, however many items name it).

python benchmarks/image_pipeline.py --items 1000 --distinct 1000 --side 2048
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def write_exam(folder: Path, items: int, distinct: int, side: int, seed: int = 0) -> Path:
    """A generic-layout exam: ``items`` questions over ``distinct`` photographs-like PNGs (noise
    over gradients, so that they neither compress to nothing nor all look alike)."""
    rng = np.random.default_rng(seed)
    images = folder / "images"
    images.mkdir()
    gradient = np.linspace(0, 255, side, dtype=np.float32)
    for k in range(distinct):
        base = (gradient[None, :, None] + gradient[:, None, None] * (k % 7) / 7) % 256
        pixels = np.clip(base + rng.normal(0, 24, (side, side, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
        (images / f"{k}.png").write_bytes(buffer.getvalue())
    rows = [
        {
            "question": f"Q{i}: what does image {i % distinct} show?",
            "options": {"A": "a", "B": "b", "C": "c", "D": "d"},
            "answer_idx": "ABCD"[i % 4],
            "images": [f"images/{i % distinct}.png"],
        }
        for i in range(items)
    ]
    data = folder / "exam.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--distinct", type=int, default=1000, help="distinct images among the items")
    parser.add_argument("--side", type=int, default=2048, help="each image's side in pixels (resized to 1024)")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-m", "medops.testing.fake_openai"], stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()  # type: ignore[union-attr]
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            data = write_exam(folder, args.items, args.distinct, args.side)
            source_bytes = sum(p.stat().st_size for p in (folder / "images").iterdir())
            db = folder / "b.db"
            command = [
                sys.executable, "-m", "medops.cli.app", "eval", "mcqa", "--task", "generic", "--data", str(data),
                "--model", "openai:bench", "--model-base-url", base_url, "--concurrency", str(args.concurrency),
                "--no-logprobs", "--json", "--db", str(db),
            ]  # fmt: skip
            env = {**os.environ, "OPENAI_API_KEY": "bench", "MEDOPS_CACHE_DIR": str(folder / "cache")}
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            wall = time.perf_counter() - started
            peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            with sqlite3.connect(db) as connection:
                query = "SELECT count(*), coalesce(sum(size_bytes), 0) FROM blobs"
                blobs, blob_bytes = connection.execute(query).fetchone()
            summary = json.loads(result.stdout)
            report = {
                "items": summary["n_examples"],
                "distinct_images": args.distinct,
                "source_side_px": args.side,
                "wall_s": round(wall, 2),
                "items_per_s": round(summary["n_examples"] / wall, 1),
                "peak_rss_mib": round(peak_mib),
                "source_image_bytes": source_bytes,
                "blobs": blobs,
                "blob_bytes": blob_bytes,
                "store_bytes": db.stat().st_size + sum(p.stat().st_size for p in folder.glob("b.db-*")),
                "store_bytes_per_distinct_image": round(db.stat().st_size / args.distinct),
            }
    finally:
        server.terminate()
        server.wait()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
