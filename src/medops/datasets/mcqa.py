"""Exam-style multiple-choice sets: every layout medops reads becomes the same ``MCQItem``.

Layouts are recognised by their fields, row by row:

* standardised (MedQA, MedMCQA, MMLU, PubMedQA as MC; also Hugging Face GBaker/MedQA):
  ``question``, ``options`` {A: ..}, ``answer_idx``;
* Hugging Face MedMCQA: ``question``, ``opa``..``opd``, ``cop`` (0-3);
* KorMedMCQA and the generic layout: ``question``, ``A``..``E`` (or ``options``), ``answer``
  as a letter or a 1-based number;
* KorMedMCQA chat samples: ``messages`` with ``[문제]``/``[선택지]`` and ``meta.gold``;
* KMLE exam sheets (.jsonl or .xlsx): ``Question``, ``Followings`` ("① ..."), ``Answer``; the
  ``Image`` column counts a question's images. They are read from a folder beside the sheet named
  after it (``2021.xlsx`` -> ``2021_images/``), one file per image: ``<class>-<Q_no>-<k>.<ext>``
  (``k`` from 1; ``.png``, ``.jpg``, ``.jpeg``, ``.webp`` or ``.dcm``), e.g. ``2021_images/1-18-1.png``.
  Without the folder, questions with images are skipped and counted (``needs_image``); with it,
  every question whose images are not all there is reported at once;
* KorMedMCQA-V (Hugging Face ``seongsubae/KorMedMCQA-V``, config ``doctor``): KorMedMCQA's
  columns (``subject``, ``year``, ``period``, ``q_number``, ``question``, ``A``..``E``, ``answer``
  1-5) and ``images``: a list of ``{pic_num, modality, image_base64}`` (raw base64 or a ``data:``
  URI; ``bytes`` in place of ``image_base64`` where a parquet writer stored the image itself), in
  the order the question cites them. The item id is ``subject-year-period-q_number``; the images'
  ``modality`` values (xray, ct, ecg, ...) become the ``imaging`` breakdown;
* official PubMedQA: ``ori_pqal.json`` with ``test_ground_truth.json`` beside it.

CSV files take the generic layout's columns; ``.parquet`` files (read with pyarrow) any question
layout, row by row (a row's "line" is its 1-based row number).

The question layouts (all but KMLE sheets and chat samples) may carry ``images``: a list of paths
relative to the data file (or ``data:`` URIs), read by ``datasets.images`` (checked, resized,
DICOM rendered); in CSV the ``images`` cell holds the paths separated by ``;`` (or a JSON list).
An item's images are content parts in ``MCQItem.images`` and follow the question in the prompt.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from medops.content import ImagePart, data_uri
from medops.datasets.images import image_part
from medops.datasets.jsonl import FileFacts, file_facts, iter_json_lines, read_bytes
from medops.errors import DataError, UserError

LETTERS = "ABCDEFGHIJ"
CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"
TASKS = ("medqa", "medmcqa", "pubmedqa", "mmlu_medical", "kormedmcqa", "kormedmcqa_v", "kmle", "generic")
KOREAN_TASKS = ("kormedmcqa", "kormedmcqa_v", "kmle")
MMLU_MEDICAL_SUBJECTS = (
    "anatomy",
    "clinical_knowledge",
    "college_biology",
    "college_medicine",
    "medical_genetics",
    "professional_medicine",
)


@dataclass(frozen=True)
class MCQItem:
    id: str
    question: str
    options: dict[str, str]  # letter -> option text, in order
    answer: str  # the gold letter
    tags: dict[str, str] = field(default_factory=dict)  # breakdowns: subject, profession, year, ...
    images: tuple[ImagePart, ...] = ()  # image parts (data: URIs), shown after the question

    @property
    def letters(self) -> str:
        return "".join(self.options)

    def record(self) -> dict[str, Any]:
        """What the store keeps of the item (a text item without an ``images`` key, as before)."""
        out: dict[str, Any] = {"id": self.id, "question": self.question, "options": dict(self.options)}
        out.update(answer=self.answer, tags=dict(self.tags))
        if self.images:
            out["images"] = [dict(part) for part in self.images]
        return out

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> MCQItem:
        images = tuple(record.get("images") or ())
        return cls(**{**record, "images": images})


@dataclass(frozen=True)
class MCQSet:
    name: str
    task: str
    facts: FileFacts
    items: tuple[MCQItem, ...]
    skipped: dict[str, int]  # reason -> count (images needed, multi-answer, ...)

    def __len__(self) -> int:
        return len(self.items)

    @cached_property
    def n_with_images(self) -> int:
        return sum(1 for item in self.items if item.images)

    def without_images(self) -> MCQSet:
        """The text items only; the others counted as skipped (``needs_image``)."""
        n = self.n_with_images
        if not n:
            return self
        skipped = {**self.skipped, "needs_image": self.skipped.get("needs_image", 0) + n}
        return replace(self, items=tuple(item for item in self.items if not item.images), skipped=skipped)


class _Skip(Exception):
    """The row is valid but cannot be scored as single-answer text MC (counted, not an error)."""


def _letter(value: Any, n_options: int, where: str) -> str:
    """A gold answer given as a letter, a 0/1-based number or a circled number."""
    text = str(value).strip()
    if len(text) == 1 and text.upper() in LETTERS[:n_options]:
        return text.upper()
    if text in CIRCLED[:n_options]:
        return LETTERS[CIRCLED.index(text)]
    if text.isdigit() and 1 <= int(text) <= n_options:
        return LETTERS[int(text) - 1]
    raise ValueError(f"{where} {value!r} is not one of the {n_options} options")


def _options_from_mapping(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        options = {str(k).strip().upper(): str(v) for k, v in value.items()}
    elif isinstance(value, list):
        options = {LETTERS[i]: str(v) for i, v in enumerate(value)}
    else:
        raise ValueError("options must be an object {A: ...} or a list")
    if len(options) < 2 or any(k not in LETTERS for k in options):
        raise ValueError("options need at least two entries keyed A, B, C, ...")
    return options


def _is_kmle(row: dict[str, Any]) -> bool:
    return "Question" in row and "Followings" in row


def _kmle_image_count(row: dict[str, Any]) -> int:
    text = str(row.get("Image") or 0).strip() or "0"
    try:
        return int(float(text))
    except ValueError:
        raise ValueError(f"Image {row.get('Image')!r} is not a count of images") from None


def _row_to_item(row: dict[str, Any], task: str, position: int, *, kmle_images: bool = False) -> MCQItem:
    """One row of any supported layout; ValueError names what is wrong, _Skip what is out of scope.
    ``kmle_images``: the sheet's image folder exists, so KMLE questions with images are kept."""
    tags: dict[str, str] = {}
    if _is_kmle(row):  # KMLE exam sheet
        if _kmle_image_count(row) > 0 and not kmle_images:
            raise _Skip("needs_image")
        parts = [p.strip() for p in re.split(f"[{CIRCLED}]", str(row["Followings"])) if p.strip()]
        options = {LETTERS[i]: p for i, p in enumerate(parts)}
        answer_text = str(row["Answer"]).strip()
        if not re.fullmatch(r"\d+", answer_text):
            raise _Skip("multi_answer")  # linked items such as "1,6": no single gold letter
        if row.get("category"):
            tags["subject"] = str(row["category"])
        tags["session"] = str(row.get("class", ""))
        return MCQItem(
            f"kmle-{row.get('class', '')}-{row.get('Q_no', position)}",
            str(row["Question"]).strip(),
            options,
            _letter(answer_text, len(options), "Answer"),
            tags,
        )
    if "messages" in row and isinstance(row.get("meta"), dict):  # KorMedMCQA chat sample
        content = next((m.get("content", "") for m in row["messages"] if m.get("role") == "user"), "")
        match = re.search(r"\[문제\]\s*(.*?)\s*\[선택지\]\s*(.*)$", content, re.S)
        if not match:
            raise ValueError("user message lacks the [문제] / [선택지] sections")
        options = dict(re.findall(r"^([A-J])\.\s*(.*)$", match.group(2), re.M))
        if row["meta"].get("subject"):
            tags["profession"] = str(row["meta"]["subject"])
        return MCQItem(
            str(row["meta"].get("id", position)),
            match.group(1),
            options,
            _letter(row["meta"].get("gold"), len(options), "meta.gold"),
            tags,
        )
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question is missing or empty")
    if "opa" in row and "cop" in row:  # Hugging Face MedMCQA
        options = {LETTERS[i]: str(row[f"op{c}"]) for i, c in enumerate("abcd")}
        answer = _letter(int(row["cop"]) + 1, 4, "cop")
        for key, tag in (("subject_name", "subject"), ("topic_name", "topic")):
            if row.get(key):
                tags[tag] = str(row[key])
    elif "options" in row:  # standardised layout
        options = _options_from_mapping(row["options"])
        answer = _letter(row.get("answer_idx", row.get("answer")), len(options), "answer_idx")
        if "answer_idx" in row and "answer" in row and row["answer"] not in (options[answer], answer):
            raise ValueError(f"answer {row['answer']!r} is not the text of option {answer}")
    else:  # KorMedMCQA / generic: options as columns A, B, ...
        options = {letter: str(row[letter]) for letter in LETTERS if row.get(letter) not in (None, "")}
        if len(options) < 2:
            raise ValueError("no options: expected 'options' or columns A, B, ...")
        answer = _letter(row.get("answer"), len(options), "answer")
    if task in ("kormedmcqa", "kormedmcqa_v") and row.get("subject"):
        tags["profession"] = str(row["subject"])
    elif row.get("subject"):
        tags["subject"] = str(row["subject"])
    if row.get("meta_info") and task == "medqa":
        tags["step"] = str(row["meta_info"])
    if row.get("year"):
        tags["year"] = str(row["year"])
    if "id" not in row and all(row.get(k) is not None for k in ("subject", "year", "period", "q_number")):
        item_id = f"{row['subject']}-{row['year']}-{row['period']}-{row['q_number']}"  # KorMedMCQA(-V)'s uid
    else:
        item_id = str(row.get("id", row.get("realidx", row.get("q_number", position))))
    return MCQItem(item_id, question.strip(), options, answer, tags)


def _rows(path: Path, data: bytes):
    """(line, row) pairs from JSONL, CSV or an xlsx sheet."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        text = data.decode("utf-8-sig")
        for number, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            yield number, row
    elif suffix == ".xlsx":
        try:
            from openpyxl import load_workbook
        except ImportError:
            raise UserError(f"{path}: reading .xlsx needs openpyxl (pip install openpyxl), or use the .jsonl") from None
        sheet = load_workbook(io.BytesIO(data), read_only=True).active
        rows = sheet.iter_rows(values_only=True)
        header = [str(h) for h in next(rows)]
        for number, values in enumerate(rows, start=2):
            if any(v is not None for v in values):
                yield number, dict(zip(header, values, strict=False))
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError(f"{path}: reading .parquet needs pyarrow (pip install pyarrow)") from None
        try:
            table = pq.read_table(io.BytesIO(data))
        except Exception as exc:  # pyarrow raises its own kinds for a file that is not parquet
            raise DataError(path, None, None, f"not a readable parquet file ({exc})") from None
        for number, row in enumerate(table.to_pylist(), start=1):
            yield number, row
    else:
        yield from iter_json_lines(path, data)


def _pubmedqa_official(path: Path, data: bytes) -> list[MCQItem]:
    truth_path = path.with_name("test_ground_truth.json")
    try:
        truth = json.loads(read_bytes(truth_path))
        records = json.loads(data)
    except json.JSONDecodeError as exc:
        raise DataError(path, None, None, f"invalid JSON ({exc.msg})") from None
    items = []
    for pmid, label in truth.items():
        record = records.get(pmid)
        if record is None:
            raise DataError(truth_path, None, pmid, "not in ori_pqal.json")
        context = "\n".join(record.get("CONTEXTS", []))
        items.append(
            MCQItem(
                pmid,
                f"{context}\n{record['QUESTION']}",
                {"A": "yes", "B": "no", "C": "maybe"},
                "ABC"[["yes", "no", "maybe"].index(label)],
                {"year": str(record.get("YEAR", ""))},
            )
        )
    return items


def _image_refs(row: dict[str, Any], suffix: str) -> list[str]:
    """The ``images`` a row names: a list of strings (JSONL), or a ``;``-separated cell (CSV)."""
    value = row.get("images")
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, str) and suffix in (".csv", ".xlsx"):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"images: not a JSON list ({exc.msg})") from None
        else:
            return [ref.strip() for ref in text.split(";") if ref.strip()]
    if not isinstance(value, list) or not all(isinstance(ref, str) and ref.strip() for ref in value):
        raise ValueError("images must be a list of paths relative to the data file")
    return value


KMLE_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".dcm")


def kmle_image_folder(sheet: Path) -> Path:
    """Where a KMLE sheet's images are: ``<sheet stem>_images/`` beside it."""
    return sheet.with_name(f"{sheet.stem}_images")


class _KmleImages:
    """A KMLE sheet's image folder: finds ``<class>-<Q_no>-<k>.<ext>`` and collects what is missing."""

    def __init__(self, sheet: Path):
        self.sheet, self.folder = sheet, kmle_image_folder(sheet)
        self.exists = self.folder.is_dir()
        self.missing: list[str] = []  # "line 19 (1-18-2)" per question lacking images

    @cached_property
    def files(self) -> dict[str, list[Path]]:
        """Image files by stem (``1-18-1``), listed once, when the first question asks."""
        found: dict[str, list[Path]] = {}
        for file in sorted(self.folder.iterdir()):
            if file.is_file() and file.suffix.lower() in KMLE_IMAGE_SUFFIXES:
                found.setdefault(file.stem, []).append(file)
        return found

    def parts(self, row: dict[str, Any], line: int) -> tuple[ImagePart, ...] | None:
        """The question's images, or None (recorded as missing) when any is not in the folder."""
        stems = [f"{row.get('class', '')}-{row.get('Q_no', '')}-{k}" for k in range(1, _kmle_image_count(row) + 1)]
        lacking = [stem for stem in stems if stem not in self.files]
        if lacking:
            self.missing.append(f"line {line} ({', '.join(lacking)})")
            return None
        parts = []
        for k, stem in enumerate(stems, start=1):
            found = self.files[stem]
            if len(found) > 1:
                names = " and ".join(f.name for f in found)
                raise DataError(self.sheet, line, f"Image.{k}", f"image {stem}: both {names} exist; keep one")
            ref = f"{self.folder.name}/{found[0].name}"
            parts.append(image_part(ref, data_file=self.sheet, line=line, field=f"Image.{k}"))
        return tuple(parts)

    def check(self) -> None:
        if self.missing:
            raise DataError(
                self.sheet,
                None,
                "Image",
                f"{len(self.missing)} question(s) have images missing from {self.folder} "
                f"(expected <class>-<Q_no>-<k>{'|'.join(KMLE_IMAGE_SUFFIXES)}): {'; '.join(self.missing)}",
            )


def _embedded_images(row: dict[str, Any]) -> list[dict[str, Any]] | None:
    """KorMedMCQA-V's ``images`` (a list of ``{pic_num, modality, image_base64}``, or that list as
    JSON text), or None when the row's ``images`` are paths."""
    value = row.get("images")
    if isinstance(value, str) and value.lstrip().startswith("[{"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"images: not a JSON list ({exc.msg})") from None
    if not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
        return None
    return value


def _embedded_parts(entries: list[dict[str, Any]], path: Path, line: int) -> tuple[tuple[ImagePart, ...], list[str]]:
    """The image parts and the modalities of KorMedMCQA-V entries, checked like any image."""
    parts, modalities = [], []
    for k, entry in enumerate(entries):
        field_name = f"images.{k}.image_base64"
        encoded = entry.get("image_base64")
        raw = entry.get("bytes")
        if isinstance(encoded, str) and encoded.strip():
            ref = encoded.strip() if encoded.lstrip().startswith("data:") else _as_data_uri(encoded)
        elif isinstance(raw, bytes | bytearray):
            ref, field_name = data_uri(bytes(raw), "application/octet-stream"), f"images.{k}.bytes"
        else:
            raise ValueError(f"images.{k}: expected image_base64 (base64 text) or bytes")
        parts.append(image_part(ref, data_file=path, line=line, field=field_name))
        if entry.get("modality"):
            modalities.append(str(entry["modality"]).strip())
    return tuple(parts), modalities


def _as_data_uri(encoded: str) -> str:
    """Raw base64 (KorMedMCQA-V's ``image_base64``) as a data: URI; the format is read from the bytes."""
    return "data:application/octet-stream;base64," + re.sub(r"\s+", "", encoded)


def _with_images(item: MCQItem, row: dict[str, Any], path: Path, line: int, kmle: _KmleImages) -> MCQItem:
    if _is_kmle(row) and kmle.exists and _kmle_image_count(row) > 0:
        if "images" in row:
            raise ValueError("images: a KMLE sheet's images come from its folder, not an images field")
        parts = kmle.parts(row, line)
        return replace(item, images=parts) if parts else item
    embedded = _embedded_images(row)
    if embedded is not None:
        parts, modalities = _embedded_parts(embedded, path, line)
        tags = {**item.tags, "imaging": "+".join(dict.fromkeys(modalities))} if modalities else item.tags
        return replace(item, images=parts, tags=tags)
    refs = _image_refs(row, path.suffix.lower())
    if not refs:
        return item
    if "Question" in row or "messages" in row:
        raise ValueError("images: this layout does not take an images field")
    parts = tuple(image_part(ref, data_file=path, line=line, field=f"images.{k}") for k, ref in enumerate(refs))
    return replace(item, images=parts)


def load_mcqa(task: str, path: str | Path, name: str | None = None) -> MCQSet:
    if task not in TASKS:
        raise UserError(f"unknown task '{task}'; known: {', '.join(TASKS)}")
    path = Path(path)
    data = read_bytes(path)
    skipped: Counter[str] = Counter()
    if path.suffix == ".json" and path.name.startswith("ori_pqal"):
        items = _pubmedqa_official(path, data)
    else:
        items = []
        kmle = _KmleImages(path)
        for line, row in _rows(path, data):
            if not isinstance(row, dict):
                raise DataError(path, line, None, "expected an object per row")
            try:
                position = len(items) + sum(skipped.values())
                item = _row_to_item(row, task, position, kmle_images=kmle.exists)
                item = _with_images(item, row, path, line, kmle)
            except _Skip as skip:
                skipped[str(skip)] += 1
                continue
            except (ValueError, KeyError, TypeError) as exc:
                message = str(exc) if not isinstance(exc, KeyError) else f"missing field {exc}"
                raise DataError(path, line, None, message) from None
            if task == "mmlu_medical" and item.tags.get("subject") not in MMLU_MEDICAL_SUBJECTS:
                skipped["not_a_medical_subject"] += 1
                continue
            items.append(item)
        kmle.check()
    if not items:
        raise DataError(path, None, None, f"no scorable items ({dict(skipped) or 'empty file'})")
    return MCQSet(name or path.stem, task, file_facts(path, data), tuple(items), dict(skipped))
