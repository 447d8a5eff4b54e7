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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medops.datasets.jsonl import read_bytes
from medops.errors import UserError
from medops.evaluation.config import McqaConfig
from medops.evaluation.run import run_mcqa
from medops.events import EventBus
from medops.models.spec import ModelSpec
from medops.rl.asked import AskedAs
from medops.rl.prepare import PreparedData, derived_manifest, write_manifest
from medops.rl.train import Notice, Settings
from medops.store import queries
from medops.store.repository import COMPLETED, Store


@dataclass(frozen=True)
class DifficultyProfile:
    """A profiling's outcome: the stored sampling run, how it asked, and what was kept
    (``report``: the counts ``filter_by_difficulty`` returns)."""

    sampling_run_id: int
    settings: Settings
    report: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The document ``medops rl difficulty`` prints (its keys are a public interface)."""
        return {"sampling_run_id": self.sampling_run_id, "settings": self.settings, **self.report}


def profile_difficulty(
    store: Store,
    model: ModelSpec,
    data: str | Path,
    output: Path,
    asked: AskedAs,
    *,
    samples: int = 4,
    low: float = 0.01,
    high: float = 0.99,
    max_chars: int | None = None,
    concurrency: int = 32,
    name: str | None = None,
    on_notice: Notice | None = None,
    bus: EventBus | None = None,
) -> DifficultyProfile:
    """Sample ``model`` ``samples`` times per item of the prepared ``data`` as ``asked`` (from
    ``medops.rl.asked.difficulty_settings``), then write the per-item profile and the items whose pass rate
    lies in [``low``, ``high``] to ``output``. The sampling is an ordinary exam run, so it is
    stored, cached and resumable; an incomplete one is refused, since a missing sample would
    read as a failure."""
    chosen = asked.values()
    config = McqaConfig(
        task="generic",
        data=str(data),
        style=chosen["style"],
        language=chosen["language"],
        temperature=chosen["temperature"],
        max_tokens=chosen["max_tokens"],
        repeats=samples,
        concurrency=concurrency,
        model=model,
    )
    outcome = run_mcqa(config, store, name=name, bus=bus)
    if outcome.status != COMPLETED:
        raise UserError(f"the sampling run {outcome.run_id} did not complete ({outcome.message})")
    report = filter_by_difficulty(
        Path(data),
        pass_rates(store, outcome.run_id),
        output,
        low=low,
        high=high,
        max_chars=max_chars,
        truncated=truncated_counts(store, outcome.run_id),
        prepared=asked.prepared,
    )
    if report["n_truncated"] and on_notice:
        on_notice(
            f"{report['n_truncated']} of {samples * report['items']} samples stopped at the length limit "
            f"({config.max_tokens} tokens) and count as failures (per item: `truncated` in difficulty.jsonl)"
        )
    return DifficultyProfile(outcome.run_id, asked.settings, report)


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
    if not kept:  # an empty training set would only fail later, in `rl train`
        too_long = sum(max_chars is not None and p["chars"] > max_chars for p in profile)
        raise UserError(
            f"{train_file}: kept 0 of {len(rows)} items in the pass-rate band [{low:g}, {high:g}] "
            f"({sum(p['pass_rate'] == 1 for p in profile)} always solved, "
            f"{sum(p['pass_rate'] == 0 for p in profile)} never solved"
            + (f", {too_long} longer than --max-chars" if too_long else "")
            + f"); widen --keep-band; nothing written to {out_dir}"
        )
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
