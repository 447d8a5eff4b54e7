"""Labels made elsewhere: JSONL or CSV rows of ``example_index``, ``criterion_index``, ``met``
(true / false). Every row is checked before anything is stored; the first bad one is a one-line
error naming the file, the line and the field."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from medops.datasets.jsonl import describe_validation_error, iter_json_lines, read_bytes
from medops.errors import DataError

FIELDS = ("example_index", "criterion_index", "met")


class LabelRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    example_index: int
    criterion_index: int
    met: bool

    @field_validator("met", mode="before")
    @classmethod
    def _true_or_false(cls, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError("must be true or false")


def _csv_rows(path: Path, data: bytes) -> list[tuple[int, Any]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(path, None, None, "not valid UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    for column in header:
        if column not in FIELDS:
            raise DataError(path, 1, column, f"unknown column (expected {', '.join(FIELDS)})")
    rows = []
    for row in reader:
        if None in row:
            raise DataError(path, reader.line_num, None, "more values than columns")
        if any(v for v in row.values()):
            rows.append((reader.line_num, {k: v for k, v in row.items() if v is not None}))
    return rows


def read_labels(path: str | Path, criteria_per_example: list[int]) -> list[tuple[int, int, bool]]:
    """``(example_index, criterion_index, met)`` of every row, each checked against the set's shape."""
    path = Path(path)
    data = read_bytes(path)
    raw = _csv_rows(path, data) if path.suffix.lower() == ".csv" else list(iter_json_lines(path, data))
    if not raw:
        raise DataError(path, None, None, "contains no labels")
    seen: dict[tuple[int, int], int] = {}
    found = []
    for line, obj in raw:
        try:
            row = LabelRow.model_validate(obj)
        except ValidationError as exc:
            raise describe_validation_error(path, line, exc) from None
        if not 0 <= row.example_index < len(criteria_per_example):
            raise DataError(
                path,
                line,
                "example_index",
                f"no example {row.example_index} in the set (0-{len(criteria_per_example) - 1})",
            )
        n = criteria_per_example[row.example_index]
        if not 0 <= row.criterion_index < n:
            raise DataError(
                path,
                line,
                "criterion_index",
                f"example {row.example_index} has criteria 0-{n - 1}, not {row.criterion_index}",
            )
        key = (row.example_index, row.criterion_index)
        if key in seen:
            raise DataError(path, line, "criterion_index", f"labelled twice (first on line {seen[key]})")
        seen[key] = line
        found.append((row.example_index, row.criterion_index, row.met))
    return found
