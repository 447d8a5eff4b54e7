"""In-process vision-language model throughput, peak memory and store growth (a benchmark, not a test).

Builds the tiny random-weight Idefics3 of ``medops.testing.tiny_vlm`` (the packaged SmolLM2
tokenizer), then for each batch size, in a fresh process so peak memory is that batch size's own:
N image requests (256x256 PNGs, each distinct) through ``hf:<dir>`` at once, generated (8 new
tokens) and scored (three single-token options). Images/s counts decode, processor resize and the
forward passes; peak memory is the process's peak RSS (torch's CPU allocations included). Last, an
exam of N image items (each with its own image) is run to the store, and the ``blobs`` table's
bytes per item are reported, with the database's growth over the same exam without images.

    python benchmarks/vlm_throughput.py --images 64 --batch-sizes 1 4 8 16
"""

from __future__ import annotations

import argparse
import asyncio
import base64
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


def png(seed: int, side: int = 256) -> bytes:
    import numpy as np
    from PIL import Image

    pixels = (np.random.default_rng(seed).random((side, side, 3)) * 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def one_batch_size(model_dir: str, images: int, batch_size: int) -> dict:
    from medops.models.base import RetryPolicy, SamplingParams
    from medops.models.spec import create_model, parse_model_spec

    model = create_model(parse_model_spec(f"hf:{model_dir}"), role="model", concurrency=1, retry=RetryPolicy(),
                         batch_size=batch_size)  # fmt: skip
    uris = ["data:image/png;base64," + base64.b64encode(png(i)).decode() for i in range(images)]

    def asked(uri: str) -> list[dict]:
        parts = [{"type": "text", "text": "Which finding? A, B or C"}, {"type": "image_url", "image_url": {"url": uri}}]
        return [{"role": "user", "content": parts}]

    async def timed(params: SamplingParams) -> float:
        started = time.perf_counter()
        results = await asyncio.gather(*(model.complete(asked(u), params) for u in uris))
        assert all(r.ok for r in results)
        return time.perf_counter() - started

    async def run() -> dict:
        await model.complete(asked(uris[0]), SamplingParams(max_tokens=1))  # load once, not timed
        generate = await timed(SamplingParams(max_tokens=8))
        score = await timed(SamplingParams(assistant_prefix="Answer:", score_choices=(" A", " B", " C")))
        return {"generate_images_per_s": images / generate, "score_images_per_s": images / score}

    result = asyncio.run(run())
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def store_growth(model_dir: str, folder: Path, items: int) -> dict:
    from medops import api

    sizes = {}
    for with_images in (False, True):
        rows = []
        for i in range(items):
            row = {"id": f"q{i}", "question": f"Case {i}: which finding?", "A": "x", "B": "y", "C": "z", "answer": "A"}
            if with_images:
                (folder / f"{i}.png").write_bytes(png(1000 + i))
                row["images"] = [f"{i}.png"]
            rows.append(row)
        data = folder / f"exam-{with_images}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        db = folder / f"store-{with_images}.db"
        config = api.exam_config(task="generic", data=str(data), model=f"hf:{model_dir}", scoring="loglikelihood")
        api.evaluate(config, db=db, name="growth")
        connection = sqlite3.connect(db)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the database file itself
        if with_images:
            blob_bytes, blobs = connection.execute("SELECT sum(length(data)), count(*) FROM blobs").fetchone()
        connection.close()
        sizes[with_images] = db.stat().st_size
    png_bytes = sum((folder / f"{i}.png").stat().st_size for i in range(items)) / items
    return {
        "items": items,
        "blobs": blobs,
        "blob_bytes_per_item": blob_bytes / items,
        "png_bytes_per_image": png_bytes,
        "db_growth_per_item_over_text_only": (sizes[True] - sizes[False]) / items,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--store-items", type=int, default=50)
    parser.add_argument("--one", nargs=3, metavar=("DIR", "IMAGES", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_batch_size(args.one[0], int(args.one[1]), int(args.one[2]))))
        return
    folder = Path(tempfile.mkdtemp())
    from medops.models.local_hf import smollm2_checkpoint
    from medops.testing.tiny_vlm import build_tiny_vlm

    model_dir = str(build_tiny_vlm(folder / "tiny-vlm", smollm2_checkpoint()))
    print(f"tiny Idefics3 (random weights), CPU, {os.cpu_count()} cores, {args.images} images of 256x256 px")
    print(f"{'batch':>5}  {'generate img/s':>14}  {'score img/s':>11}  {'peak RSS MiB':>12}")
    for batch in args.batch_sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", model_dir, str(args.images), str(batch)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{batch:>5}  {r['generate_images_per_s']:>14.1f}  {r['score_images_per_s']:>11.1f}  "
              f"{r['peak_rss_mib']:>12.0f}")  # fmt: skip
    growth = store_growth(model_dir, folder, args.store_items)
    print(
        f"store: {growth['items']} image items -> {growth['blobs']} blobs, "
        f"{growth['blob_bytes_per_item']:.0f} B of blobs per item (PNG files {growth['png_bytes_per_image']:.0f} B), "
        f"database +{growth['db_growth_per_item_over_text_only']:.0f} B per item over the same exam without images"
    )


if __name__ == "__main__":
    main()
