"""Exam sets from the Hugging Face hub (``medops data pull medqa`` ...), via the ``datasets`` library.

Each set is fetched once, converted row by row to the standardised exam layout (``question``,
``options``, ``answer_idx`` + breakdown fields) and written to the cache as JSONL with its size
and sha256, so later runs are offline and say exactly what they scored. ``MEDOPS_HF_MIRROR``
points at a local directory holding copies (``<mirror>/<owner>/<name>[/<config>]/<split>.jsonl``)
for air-gapped sites.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medops.datasets.cache_records import check_recorded
from medops.datasets.mcqa import LETTERS, MMLU_MEDICAL_SUBJECTS
from medops.errors import UserError
from medops.paths import exam_cache_dir


def _medqa(row: dict) -> dict:
    return {
        "question": row["question"],
        "options": row["options"],
        "answer_idx": row["answer_idx"],
        "meta_info": row.get("meta_info"),
    }


def _medmcqa(row: dict) -> dict:
    options = {LETTERS[i]: row[f"op{c}"] for i, c in enumerate("abcd")}
    return {
        "id": row.get("id"),
        "question": row["question"],
        "options": options,
        "answer_idx": LETTERS[row["cop"]],
        "subject": row.get("subject_name"),
    }


def _pubmedqa(row: dict) -> dict:
    context = "\n".join(row["context"]["contexts"])
    return {
        "id": str(row["pubid"]),
        "question": f"{context}\n{row['question']}",
        "options": {"A": "yes", "B": "no", "C": "maybe"},
        "answer_idx": "ABC"[["yes", "no", "maybe"].index(row["final_decision"])],
    }


def _mmlu(row: dict) -> dict:
    return {
        "question": row["question"],
        "options": {LETTERS[i]: c for i, c in enumerate(row["choices"])},
        "answer_idx": LETTERS[int(row["answer"])],
        "subject": row["subject"],
    }


def _kormedmcqa(row: dict) -> dict:
    options = {letter: row[letter] for letter in "ABCDE" if row.get(letter)}
    return {
        "id": f"{row.get('subject')}-{row.get('year')}-{row.get('q_number')}",
        "question": row["question"],
        "options": options,
        "answer_idx": LETTERS[int(row["answer"]) - 1],
        "subject": row.get("subject"),
        "year": row.get("year"),
    }


def _kormedmcqa_v(row: dict) -> dict:
    """KorMedMCQA-V's own row layout, kept (``datasets.mcqa`` reads it from JSONL or parquet); an
    image stored as bytes by a parquet writer becomes base64 text, as the published set has it."""
    keys = ("subject", "year", "period", "q_number", *"ABCDE")
    images = row["images"]  # a KeyError (no images column) is not this set's layout
    if isinstance(images, list):
        images = [_base64_image(image) for image in images]
    return {**{k: row.get(k) for k in keys}, "question": row["question"], "answer": row["answer"], "images": images}


def _base64_image(image: Any) -> Any:
    if isinstance(image, dict) and isinstance(image.get("bytes"), bytes):
        rest = {k: v for k, v in image.items() if k not in ("bytes", "path")}
        return {**rest, "image_base64": base64.b64encode(image["bytes"]).decode("ascii")}
    return image


@dataclass(frozen=True)
class HubExam:
    repo: str
    configs: tuple[str | None, ...]
    split: str
    convert: Callable[[dict], dict]


HUB_EXAMS: dict[str, HubExam] = {
    "medqa": HubExam("GBaker/MedQA-USMLE-4-options", (None,), "test", _medqa),
    "medmcqa": HubExam("openlifescienceai/medmcqa", (None,), "validation", _medmcqa),
    "pubmedqa": HubExam("qiaojin/PubMedQA", ("pqa_labeled",), "train", _pubmedqa),
    "mmlu_medical": HubExam("cais/mmlu", MMLU_MEDICAL_SUBJECTS, "test", _mmlu),
    "kormedmcqa": HubExam("sean0042/KorMedMCQA", ("doctor", "nurse", "pharm", "dentist"), "test", _kormedmcqa),
    # the split every published evaluation of KorMedMCQA-V uses (github.com/baeseongsu/kormedmcqa_v)
    "kormedmcqa_v": HubExam("seongsubae/KorMedMCQA-V", ("doctor",), "test_full", _kormedmcqa_v),
}


_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def exam_cache_path(name: str) -> Path:
    return exam_cache_dir() / f"{name}.jsonl"


def _rows(exam: HubExam, target: Path) -> Iterator[dict[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise UserError("pulling exam sets needs the 'datasets' library: pip install 'medops[hub]'") from None
    datasets.disable_progress_bars()
    mirror = os.environ.get("MEDOPS_HF_MIRROR")
    for config in exam.configs:
        try:
            if mirror:  # a local copy: <mirror>/<owner>/<name>[/<config>]/<split>.jsonl (or parquet, csv)
                folder = Path(mirror, exam.repo, config or "")
                # named by split, so that test_full.* is not read as the test split by its name
                files = {exam.split: [str(f) for f in sorted(folder.glob(f"{exam.split}[.-]*")) if f.is_file()]}
                builder = _BUILDERS.get(Path(files[exam.split][0]).suffix) if files[exam.split] else None
                if builder is None:
                    raise FileNotFoundError(f"no {exam.split}.jsonl, .parquet or .csv in {folder}")
                rows = datasets.load_dataset(builder, data_files=files, split=exam.split)
            else:
                rows = datasets.load_dataset(exam.repo, config, split=exam.split)
        except Exception as exc:  # the library raises many kinds for "not reachable / not found"
            raise UserError(
                f"could not load {exam.repo} ({config or 'default'}) from the hub: {str(exc).splitlines()[0]}; "
                f"offline, put the converted JSONL (one {{question, options, answer_idx}} per line) at {target} "
                "and pull again, or pass the file with --data PATH"
            ) from None
        yield from rows


def _line(exam: HubExam, number: int, row: dict) -> str:
    try:
        return json.dumps(exam.convert(row), ensure_ascii=False) + "\n"
    except (TypeError, ValueError, KeyError) as exc:  # a layout the hub set no longer has
        reason = f"not in the layout medops converts ({exc}); nothing written"
        raise UserError(f"{exam.repo} row {number}: {reason}") from None


def pull_exam(name: str) -> tuple[Path, int, str, bool]:
    """Fetch and convert once; returns (path, size, sha256, downloaded)."""
    target = exam_cache_path(name)
    record = target.with_name(target.name + ".medops.json")
    facts = check_recorded(name, target)
    if facts is not None:
        return target, facts["size_bytes"], facts["sha256"], False
    exam = HUB_EXAMS[name]
    downloaded = not target.is_file()
    if downloaded:
        lines = [_line(exam, number, row) for number, row in enumerate(_rows(exam, target), start=1)]
        data = "".join(lines).encode("utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(data)
        os.replace(partial, target)
    else:  # placed by hand: described, not fetched again
        data = target.read_bytes()
        lines = [line for line in data.decode("utf-8", errors="replace").split("\n") if line.strip()]
    sha = hashlib.sha256(data).hexdigest()
    record.write_text(
        json.dumps(
            {
                "name": name,
                "repo": exam.repo,
                "configs": list(exam.configs),
                "split": exam.split,
                "rows": len(lines),
                "size_bytes": len(data),
                "sha256": sha,
            },
            indent=2,
        )
    )
    return target, len(data), sha, downloaded
