"""Scan and redact files: JSONL (every string value), CSV (every cell) and plain text.

The format follows the file name: ``.jsonl`` / ``.ndjson``, ``.csv`` / ``.tsv``, anything else is
text. JSONL strings are walked by ``medops.content`` (image and other non-text parts are kept
as they are, never read as text). One ``Redactor`` per JSONL line or CSV row (a conversation),
one per text file. Values are never returned unless asked for (``show=True``).
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from medops.content import iter_strings, map_strings
from medops.errors import DataError, UserError
from medops.privacy.engine import detect
from medops.privacy.redact import Redactor


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    return "text"


def _read(path: Path) -> str:
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, None, None, f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, number, None, f"not valid JSON ({exc.msg}, column {exc.colno})") from None


def _csv_rows(path: Path, text: str) -> tuple[csv.Dialect | type[csv.Dialect], list[tuple[int, list[str]]]]:
    dialect: csv.Dialect | type[csv.Dialect] = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    rows = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise DataError(path, reader.line_num, None, f"not valid CSV ({exc})") from None
    return dialect, rows


def scan_file(path: str | Path, *, show: bool = False) -> dict[str, Any]:
    """Counts by type and the findings by line; ``value`` only with ``show``."""
    path = Path(path)
    text = _read(path)
    fmt = file_format(path)
    findings: list[dict[str, Any]] = []

    def add(line: int, field: str | None, value: str) -> None:
        for e in detect(value):
            item: dict[str, Any] = {"line": line}
            if field is not None:
                item["field"] = field
            item.update({"type": e.type, "start": e.start, "end": e.end, "score": e.score})
            if show:
                item["value"] = value[e.start : e.end]
            findings.append(item)

    lines = 0
    if fmt == "jsonl":
        for number, row in _jsonl_rows(path, text):
            lines = number
            for field, value in iter_strings(row):
                add(number, field, value)
    elif fmt == "csv":
        _, rows = _csv_rows(path, text)
        header = rows[0][1] if rows else []
        for number, row in rows:
            lines = number
            for i, value in enumerate(row):
                add(number, header[i] if number > 1 and i < len(header) else f"column {i + 1}", value)
    else:
        for number, line in enumerate(text.splitlines(), 1):
            lines = number
            add(number, None, line)
    counts = Counter(f["type"] for f in findings)
    return {
        "file": str(path),
        "format": fmt,
        "lines": lines,
        "entities": len(findings),
        "counts": dict(sorted(counts.items())),
        "lines_with_phi": len({f["line"] for f in findings}),
        "findings": findings,
    }


def redact_file(src: str | Path, dst: str | Path) -> dict[str, Any]:
    """Write a redacted copy of ``src`` to ``dst``; returns counts by type (no values)."""
    src, dst = Path(src), Path(dst)
    text = _read(src)
    fmt = file_format(src)
    counts: Counter[str] = Counter()
    if fmt == "jsonl":
        out_lines = []
        for _, row in _jsonl_rows(src, text):
            redactor = Redactor()
            if isinstance(row, dict) and isinstance(row.get("text"), str):
                redacted_text, entities = redactor.redact_entities(row["text"])
                rest = {k: map_strings(v, redactor.redact) for k, v in row.items() if k not in ("text", "entities")}
                row = {k: redacted_text if k == "text" else rest[k] for k in row if k != "entities"}
                row["entities"] = [{"type": e.type, "start": e.start, "end": e.end} for e in entities]
            else:
                row = map_strings(row, redactor.redact)
            counts.update(redactor.counts)
            out_lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        output = "".join(out_lines)
    elif fmt == "csv":
        dialect, rows = _csv_rows(src, text)
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, dialect, lineterminator="\n")
        for number, row in rows:
            if number == 1:  # the header row: column names are not PHI
                writer.writerow(row)
                continue
            redactor = Redactor()
            writer.writerow([redactor.redact(cell) for cell in row])
            counts.update(redactor.counts)
        output = buffer.getvalue()
    else:
        redactor = Redactor()
        output = redactor.redact(text)
        counts.update(redactor.counts)
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(output, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{dst}: cannot write: {exc.strerror or exc}") from None
    return {
        "input": str(src),
        "output": str(dst),
        "format": fmt,
        "entities": sum(counts.values()),
        "counts": dict(sorted(counts.items())),
    }
