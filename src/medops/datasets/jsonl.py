"""JSON Lines reading that reports problems by file and line.

Lines are split on ``\\n`` only: HealthBench text contains U+2028/U+2029, which
``str.splitlines`` would wrongly treat as line breaks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from medops.errors import DataError, UserError


@dataclass(frozen=True)
class FileFacts:
    """What identifies a data file's content: recorded with every run that reads it."""

    path: str
    sha256: str
    size_bytes: int


def read_bytes(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a file") from None
    except PermissionError:
        raise UserError(f"{path}: permission denied") from None


def file_facts(path: str | Path, data: bytes) -> FileFacts:
    return FileFacts(str(Path(path).resolve()), hashlib.sha256(data).hexdigest(), len(data))


def iter_json_lines(path: str | Path, data: bytes) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, parsed_object)`` for every non-blank line (1-based numbers)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(path, line, None, "not valid UTF-8") from None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, number, None, f"invalid JSON ({exc.msg} at column {exc.colno})") from None


def describe_validation_error(path: str | Path, line: int, exc: ValidationError) -> DataError:
    """Turn pydantic's first error into a one-line DataError naming the field."""
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    more = len(exc.errors()) - 1
    message = first["msg"].removeprefix("Value error, ") + (
        f" (and {more} more problem{'s' * (more > 1)} on this line)" if more else ""
    )
    return DataError(path, line, field, message)
