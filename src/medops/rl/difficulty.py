"""``medops rl difficulty``: how often the base model already solves each training item.

Samples k answers per item (an ordinary exam run with ``--repeats k``, so it is stored,
cached and resumable like any other) and keeps the items whose pass rate lies in a band:
items always solved teach nothing, items never solved give GRPO no signal. Samples cut by the
length limit count as failures, as they would in training, and are counted per item.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path

from medops.datasets.jsonl import read_bytes
from medops.rl.prepare import PreparedData, derived_manifest, write_manifest
from medops.store import queries
from medops.store.repository import Store


def pass_rates(store: Store, run_id: int) -> dict[int, tuple[int, int]]:
    """item index -> (solved, sampled)."""
    tally: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for answer in queries.answers(store, run_id).values():
        tally[answer.item_index][0] += answer.correct
        tally[answer.item_index][1] += 1
    return {index: (solved, n) for index, (solved, n) in tally.items()}


def truncated_counts(store: Store, run_id: int) -> dict[int, int]:
    """item index -> samples whose generation stopped at the length limit."""
    counts: dict[int, int] = defaultdict(int)
    for index, _repeat in queries.truncated(store, run_id):
        counts[index] += 1
    return dict(counts)


def filter_by_difficulty(
    train_file: Path,
    rates: dict[int, tuple[int, int]],
    out_dir: Path,
    *,
    low: float,
    high: float,
    max_chars: int | None,
    truncated: dict[int, int] | None = None,
    prepared: PreparedData | None = None,
) -> dict:
    """``prepared``: the manifest of ``train_file``; the filtered file is recorded in ``out_dir``'s
    manifest with the same style and language, so ``rl train`` finds them."""
    truncated = truncated or {}
    manifest = derived_manifest(out_dir, prepared) if prepared is not None else None
    rows = [json.loads(line) for line in read_bytes(train_file).decode("utf-8").split("\n") if line.strip()]
    profile, kept = [], []
    for index, row in enumerate(rows):
        solved, n = rates.get(index, (0, 0))
        rate = solved / n if n else None
        length = len(row.get("question", ""))
        keep = rate is not None and low <= rate <= high and (max_chars is None or length <= max_chars)
        profile.append(
            {
                "id": row.get("id"),
                "pass_rate": rate,
                "samples": n,
                "truncated": truncated.get(index, 0),
                "chars": length,
                "kept": keep,
            }
        )
        if keep:
            kept.append(row)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "difficulty.jsonl").write_text("".join(json.dumps(p) + "\n" for p in profile), encoding="utf-8")
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept).encode("utf-8")
    (out_dir / "train_filtered.jsonl").write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()
    if manifest is not None:
        manifest["train_filtered"] = {
            "file": "train_filtered.jsonl",
            "rows": len(kept),
            "sha256": sha256,
            "filtered_from": str(train_file),
        }
        write_manifest(out_dir, manifest)
    return {
        "items": len(rows),
        "kept": len(kept),
        "band": [low, high],
        "max_chars": max_chars,
        "always_solved": sum(p["pass_rate"] == 1 for p in profile),
        "never_solved": sum(p["pass_rate"] == 0 for p in profile),
        "n_truncated": sum(truncated.values()),
        "train_filtered_sha256": sha256,
    }
