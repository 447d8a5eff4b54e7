"""Training sets from evidence: the weakest slices of a recorded run, or the production
conversations online grading scored low (``medops rl prepare --from-run`` / ``--from-exchanges``).

``--from-run``: the run's weakest K slices (``medops runs weak``) pick rows of a pool the user
names: rubric examples of those themes, axes or criterion tags for a rubric run, exam items of
those subjects for an exam run. An item the run itself was evaluated on never enters (matched by
content hash: a rubric example's conversation, an exam question normalised as ``rl prepare``
normalises it), nor one repeated in the pool; each exclusion is recorded. ``--from-exchanges``:
the examples of online-grading runs (``monitor_scores``, source ``online``) whose score fell below
a threshold, with the rubric they were graded by: the text as the gateway's PHI policy stored it
(the run's stored items), identified by exchange id only.

Either way the seeded held-out split is kept apart as ``rl prepare`` keeps it, and
``manifest.json`` records where every row came from (run, slices, pool file and line, or
exchange id) and every exclusion. Rubric rows are HealthBench rows, so ``eval healthbench`` reads
the held-out file and the rubric reward (``medops.rewards.rubric``) reads the training file.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from medops.datasets.healthbench import Example, load_rubric_dataset
from medops.datasets.mcqa import MCQItem, load_mcqa
from medops.datasets.registry import resolve
from medops.errors import UserError
from medops.evaluation.lifecycle import recorded
from medops.evaluation.registry import benchmark
from medops.evaluation.results import load_results
from medops.prompts.mcqa import default_language
from medops.prompts.training_rows import training_row
from medops.rl.prepare import MANIFEST, REWARD_STYLES, normalise, read_manifest, write_manifest
from medops.rl.weak import weak_slices
from medops.scoring.healthbench import OVERALL
from medops.store.repository import Store, content_sha256
from medops.store.scores import scores

RUBRIC = "rubric"  # the task, style and language a rubric set's manifest records (rows as written)
AS_WRITTEN = "as-written"


def rubric_hash(example: Example) -> str:
    """An example's content hash: its conversation, whatever its id or rubric."""
    return content_sha256([m.model_dump(mode="json", exclude_none=True) for m in example.prompt])


def exam_hash(item: MCQItem) -> str:
    """An exam item's content hash: its question as ``rl prepare`` compares questions."""
    return hashlib.sha256(normalise(item.question).encode()).hexdigest()


def rubric_row(example: Example) -> dict[str, Any]:
    """A HealthBench row (what ``eval healthbench`` reads and the rubric reward scores against)."""
    return example.model_dump(mode="json", exclude_none=True)


def _matching(tags: set[str], chosen: Sequence[str]) -> list[str]:
    return [name for name in chosen if name in tags]


def _split(rows: list[Any], heldout: float, seed: int) -> tuple[list[int], list[int]]:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_heldout = round(len(rows) * heldout)
    return sorted(order[n_heldout:]), sorted(order[:n_heldout])


def _write_rows(path: Path, rows: list[dict]) -> dict:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    path.write_bytes(data)
    return {"file": path.name, "rows": len(rows), "sha256": hashlib.sha256(data).hexdigest()}


def _finish(
    out_dir: Path,
    manifest: dict[str, Any],
    kept: list[tuple[dict, dict]],
    heldout: float,
    seed: int,
) -> dict[str, Any]:
    """Split ``kept`` (row, provenance) pairs, write both files and the manifest tracing each row."""
    if not kept:
        raise UserError("no rows to train on: nothing in the pool matches (see the manifest's excluded rows)")
    train, held = _split(kept, heldout, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest["rows"] = [
        {"split": split, "line": line, **kept[i][1]}
        for split, indices in (("train", train), ("heldout", held))
        for line, i in enumerate(indices, 1)
    ]
    manifest["train"] = _write_rows(out_dir / "train.jsonl", [kept[i][0] for i in train])
    manifest["heldout"] = _write_rows(out_dir / "heldout.jsonl", [kept[i][0] for i in held])
    write_manifest(out_dir, manifest)
    return manifest


def prepare_from_run(
    store: Store,
    run_ref: str,
    pool: Sequence[str],
    out_dir: Path,
    *,
    weak: int,
    by: str | None = None,
    vs: str | None = None,
    heldout: float = 0.1,
    seed: int = 0,
    style: str = "cot",
    language: str | None = None,
) -> dict[str, Any]:
    """A training set from the pool rows of the run's ``weak`` weakest slices (see the module)."""
    if weak < 1:
        raise UserError("--weak must be at least 1")
    if not pool:
        raise UserError("--from-run needs --data: the pool files to draw training rows from")
    ranking = weak_slices(store, run_ref, by=by, vs=vs, top=weak)
    chosen = [s["slice"] for s in ranking["slices"]]
    run = store.find_run(run_ref)
    found = recorded(benchmark(run.benchmark), store, run)
    exam = hasattr(found.data, "exam")
    manifest: dict[str, Any] = {
        "kind": "exam" if exam else RUBRIC,
        "seed": seed,
        "heldout_fraction": heldout,
        "from_run": {
            "run_id": run.id,
            "name": run.name,
            "by": ranking["by"],
            "mode": ranking["mode"],
            "baseline": ranking["baseline"],
            "weak_slices": [
                {k: s.get(k) for k in ("slice", "n", "score", "shortfall", "ci95_low", "ci95_high")}
                for s in ranking["slices"]
            ],
        },
        "inputs": [],
        "excluded": [],
    }
    kept: list[tuple[dict, dict]] = []
    seen: set[str] = set()
    not_in_slices = 0
    if exam:
        if style not in REWARD_STYLES:
            raise UserError(f"style '{style}': expected one of {', '.join(REWARD_STYLES)}")
        task = found.config.task
        language = language or default_language(task)
        manifest.update(task=task, style=style, language=language)
        evaluated = {exam_hash(item) for item in found.data.exam.items}
    else:
        manifest.update(task=RUBRIC, style=RUBRIC, language=AS_WRITTEN)
        evaluated = {rubric_hash(example) for example in found.data.dataset.examples}
    for source in pool:
        path = resolve(source)[1]
        if exam:
            loaded = load_mcqa(task, path)
            entries = [
                (item, exam_hash(item), {f"{k}:{v}" for k, v in item.tags.items() if v}) for item in loaded.items
            ]
        else:
            rubric_set = load_rubric_dataset(path)
            loaded = rubric_set
            entries = [
                (e, rubric_hash(e), {*e.example_tags, *(t for r in e.rubrics for t in r.tags)})
                for e in rubric_set.examples
            ]
        manifest["inputs"].append({"path": str(path), "sha256": loaded.facts.sha256, "rows": len(entries)})
        for line, (entry, digest, tags) in enumerate(entries, 1):
            where = {"path": str(path), "line": line}
            if digest in evaluated:
                manifest["excluded"].append(
                    {"source": where, "content_sha256": digest, "reason": f"evaluated in run {run.id}"}
                )
            elif digest in seen:
                manifest["excluded"].append(
                    {"source": where, "content_sha256": digest, "reason": "repeated in the pool"}
                )
            elif not (slices := _matching(tags, chosen)):
                not_in_slices += 1
            else:
                seen.add(digest)
                row = training_row(entry, task, style, language) if exam else rubric_row(entry)
                kept.append((row, {"source": where, "content_sha256": digest, "run": run.id, "slices": slices}))
    manifest["not_in_weak_slices"] = not_in_slices
    return _finish(out_dir, manifest, kept, heldout, seed)


def prepare_from_exchanges(
    store: Store,
    out_dir: Path,
    *,
    since: timedelta,
    below: float,
    heldout: float = 0.1,
    seed: int = 0,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A training set of the production conversations online grading scored below ``below`` in
    windows that started within ``since`` before ``now``, each with the rubric it was graded by."""
    moment = now or datetime.now(timezone.utc)
    start = moment - since
    run_ids = sorted({p.run_id for p in scores(store, source="online", since=start, until=moment) if p.run_id})
    manifest: dict[str, Any] = {
        "kind": RUBRIC,
        "task": RUBRIC,
        "style": RUBRIC,
        "language": AS_WRITTEN,
        "seed": seed,
        "heldout_fraction": heldout,
        "from_exchanges": {
            "since": start.isoformat(),
            "until": moment.isoformat(),
            "below": below,
            "online_runs": run_ids,
        },
        "excluded": [],
    }
    kept: list[tuple[dict, dict]] = []
    taken: set[str] = set()
    for run_id in run_ids:
        run = store.find_run(str(run_id))
        examples = recorded(benchmark(run.benchmark), store, run).data.dataset.examples
        for (index, _repeat), values in sorted(load_results(store, str(run_id)).items.items()):
            score = values.get(OVERALL)
            example = examples[index]
            exchange = example.prompt_id.removeprefix("exchange:")
            if score is None or score >= below:
                continue
            if exchange in taken:  # graded again in a later window: one row per conversation
                manifest["excluded"].append({"exchange_id": exchange, "run": run_id, "reason": "already taken"})
                continue
            taken.add(exchange)
            provenance = {
                "exchange_id": exchange,
                "run": run_id,
                "score": score,
                "content_sha256": rubric_hash(example),
            }
            kept.append((rubric_row(example), provenance))
    return _finish(out_dir, manifest, kept, heldout, seed)


def weak_slices_of(data_file: str | Path) -> list[str]:
    """The slices a prepared file was drawn for (``--from-run``): from the manifest that records
    it, unchanged; none for any other file."""
    path = Path(data_file)
    if read_manifest(path) is None:
        return []
    manifest = json.loads((path.parent / MANIFEST).read_text("utf-8"))
    return [entry["slice"] for entry in (manifest.get("from_run") or {}).get("weak_slices", [])]
