"""A run's rows as JSONL or CSV text, for analysis elsewhere."""

from __future__ import annotations

import csv
import io
import json
from typing import Any


def render_rows(rows: list[dict[str, Any]], fmt: str) -> str:
    """JSONL (one object per line) or CSV (lists joined with ';')."""
    buffer = io.StringIO()
    if fmt == "jsonl":
        for row in rows:
            buffer.write(json.dumps(row, ensure_ascii=False) + "\n")
        return buffer.getvalue()
    if fmt != "csv":
        raise ValueError(f"unknown export format {fmt!r}")
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["example_index"])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()})
    return buffer.getvalue()
