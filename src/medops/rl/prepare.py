"""``medops rl prepare``: exam items -> a training set in the prompt style the reward expects.

A seeded held-out split is never trained on; items whose question also appears in an
evaluation set the user names (exactly, or after normalising case, spaces and punctuation)
are dropped, so a model is never trained on what it will be scored on. Every file written is
recorded with its sha256 in ``manifest.json``.

Items with images are written in the layout TRL's GRPO reads for vision-language models
(``prompt`` as content parts with an ``{"type": "image"}`` placeholder where each image stood,
``images`` the files in that order; ``prompts.training_rows``): each image once, as
``images/<sha256>.<ext>`` beside the rows, named in ``images`` relative to the rows' file. An item
is the same item only with the same images: the same question over another picture is kept.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from medops.content import digest, digests
from medops.datasets.mcqa import TASKS, MCQItem, load_mcqa
from medops.datasets.registry import resolve
from medops.errors import UserError
from medops.prompts.mcqa import LANGUAGES, default_language
from medops.prompts.training_rows import ImageRef, training_row

REWARD_STYLES = ("cot", "r1")  # the formats the reward checks (\boxed{} or <think>/<answer>)
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


IMAGES_DIR = "images"
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _row(item: MCQItem, task: str, style: str, language: str, image_ref: ImageRef | None = None) -> dict:
    # the one row shape, shared with `medops data export`
    return training_row(item, task, style, language, image_ref=image_ref)


class _ImageFiles:
    """Each image once, by digest, for ``<out>/images/``; a row names it by its relative path.
    Collected while the rows are built and written after, so a refused item leaves nothing."""

    def __init__(self) -> None:
        self.images: dict[str, bytes] = {}

    def __call__(self, media_type: str, data: bytes) -> str:
        name = f"{digest(data)}.{_EXTENSIONS.get(media_type, 'bin')}"
        self.images.setdefault(name, data)
        return f"{IMAGES_DIR}/{name}"

    def write(self, out_dir: Path) -> None:
        (out_dir / IMAGES_DIR).mkdir(exist_ok=True)
        for name, data in self.images.items():
            (out_dir / IMAGES_DIR / name).write_bytes(data)


def _key(question: str, item: MCQItem) -> tuple[str, ...]:
    """What makes two items the same: the question (as given or normalised) and its images."""
    return (question, *digests(list(item.images)))


def _write(path: Path, rows: list[dict]) -> dict:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    path.write_bytes(data)
    return {"file": path.name, "rows": len(rows), "sha256": hashlib.sha256(data).hexdigest()}


def prepare(
    task: str,
    sources: Sequence[str],
    out_dir: Path,
    *,
    style: str = "cot",
    heldout: float = 0.1,
    seed: int = 0,
    exclude: Sequence[tuple[str, str]] = (),
    language: str | None = None,
) -> dict:
    """Write train.jsonl, heldout.jsonl and manifest.json; ``exclude`` holds (task, path) evaluation sets."""
    for what, value, allowed in (
        ("task", task, TASKS),
        ("style", style, REWARD_STYLES),
        ("language", language, LANGUAGES),
    ):
        if value is not None and value not in allowed:
            raise UserError(f"{what} '{value}': expected one of {', '.join(allowed)}")
    for exclude_task, exclude_path in exclude:
        if exclude_task not in TASKS:
            raise UserError(f"excluded set {exclude_path}: task '{exclude_task}': expected one of {', '.join(TASKS)}")
    language = language or default_language(task)
    blocked_exact, blocked_norm = set(), set()
    for exclude_task, exclude_path in exclude:
        for item in load_mcqa(exclude_task, resolve(exclude_path)[1]).items:
            blocked_exact.add(_key(item.question, item))
            blocked_norm.add(_key(normalise(item.question), item))
    items, inputs, dropped = (
        [],
        [],
        {"exact_duplicate_of_eval": 0, "normalised_duplicate_of_eval": 0, "repeated_in_sources": 0},
    )
    seen: set[str] = set()
    for source in sources:
        exam = load_mcqa(task, resolve(source)[1])
        inputs.append(
            {"path": exam.facts.path, "sha256": exam.facts.sha256, "items": len(exam), "skipped": exam.skipped}
        )
        for item in exam.items:
            key = _key(normalise(item.question), item)
            if _key(item.question, item) in blocked_exact:
                dropped["exact_duplicate_of_eval"] += 1
            elif key in blocked_norm:
                dropped["normalised_duplicate_of_eval"] += 1
            elif key in seen:
                dropped["repeated_in_sources"] += 1
            else:
                seen.add(key)
                items.append(item)
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_heldout = round(len(items) * heldout)
    held = sorted(order[:n_heldout])
    train = sorted(order[n_heldout:])
    image_files = _ImageFiles() if any(item.images for item in items) else None
    train_rows = [_row(items[i], task, style, language, image_files) for i in train]
    heldout_rows = [_row(items[i], task, style, language, image_files) for i in held]
    out_dir.mkdir(parents=True, exist_ok=True)
    if image_files is not None:
        image_files.write(out_dir)
    manifest = {
        "task": task,
        "style": style,
        "language": language,
        "seed": seed,
        "heldout_fraction": heldout,
        "inputs": inputs,
        "excluded_eval_sets": [{"task": t, "path": p} for t, p in exclude],
        "dropped": dropped,
        "train": _write(out_dir / "train.jsonl", train_rows),
        "heldout": _write(out_dir / "heldout.jsonl", heldout_rows),
    }
    if image_files is not None:
        manifest["images"] = {
            "layout": "trl-vision",  # prompt parts with {"type": "image"} placeholders + an images column
            "folder": IMAGES_DIR,
            "files": len(image_files.images),
            "items_with_images": sum(1 for item in items if item.images),
        }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return manifest


# The manifest as the record of how prepared rows were prompted ---------------------------------
MANIFEST = "manifest.json"
_FILE_ENTRIES = ("train", "heldout", "train_filtered")


@dataclass(frozen=True)
class PreparedData:
    """What the manifest beside a prepared file says about it: the prompts in its rows were
    rendered for ``task`` in ``style`` and ``language``, and training and scoring must match."""

    manifest: Path
    task: str
    style: str
    language: str

    def record(self) -> dict:
        return {"manifest": str(self.manifest), "task": self.task, "style": self.style, "language": self.language}


def read_manifest(data_file: str | Path, on_notice: Callable[[str], None] | None = None) -> PreparedData | None:
    """The manifest that records ``data_file`` (same directory, same name and sha256), or None
    for a file that ``medops rl prepare`` / ``rl difficulty`` did not write, or that changed since."""
    path = Path(data_file)
    manifest_path = path.parent / MANIFEST
    if not path.is_file() or not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{manifest_path}: cannot read the manifest ({exc.__class__.__name__})") from None
    entries = [manifest.get(key) for key in _FILE_ENTRIES]
    entry = next((e for e in entries if isinstance(e, dict) and e.get("file") == path.name), None)
    if entry is None:
        return None
    if entry.get("sha256") != hashlib.sha256(path.read_bytes()).hexdigest():
        if on_notice:
            on_notice(f"{path} changed since {manifest_path} recorded it; its prompt style and language are not used")
        return None
    missing = [key for key in ("task", "style", "language") if not isinstance(manifest.get(key), str)]
    if missing:
        raise UserError(f"{manifest_path}: {missing[0]}: missing (re-run `medops rl prepare`)")
    return PreparedData(manifest_path.resolve(), manifest["task"], manifest["style"], manifest["language"])


def derived_manifest(out_dir: Path, source: PreparedData) -> dict:
    """The manifest that will record a file derived from prepared rows (same prompts) in
    ``out_dir``: the source's own when ``out_dir`` is its directory, otherwise a new one naming it.
    Refuses, before anything is written, a directory whose manifest records other data."""
    target = out_dir / MANIFEST
    facts = {"task": source.task, "style": source.style, "language": source.language}
    if not target.is_file():
        return {**facts, "derived_from": str(source.manifest)}
    manifest = json.loads(target.read_text("utf-8"))
    if {k: manifest.get(k) for k in facts} != facts:
        raise UserError(
            f"{target}: records other prepared data ({manifest.get('task')}, {manifest.get('style')}, "
            f"{manifest.get('language')}); write to another directory"
        )
    return manifest


def write_manifest(out_dir: Path, manifest: dict) -> Path:
    target = out_dir / MANIFEST
    staging = target.with_name(f".{MANIFEST}.tmp")
    staging.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    staging.replace(target)  # never a half-written manifest
    return target
