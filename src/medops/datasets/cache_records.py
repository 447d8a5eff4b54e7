"""The records a download leaves beside a cached data file (``NAME.medops.json``: size, sha256,
source), and the check that the file is still the one pulled. Below both the built-in registry and
the hub exams, which each pull into the cache."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from medops.errors import UserError


def read_record(path: Path) -> dict | None:
    """The cache record of ``path``, or None when the file or its record is missing."""
    record = path.with_name(path.name + ".medops.json")
    if record.is_file() and path.is_file():
        return json.loads(record.read_text())
    return None


def check_recorded(name: str, path: Path) -> dict | None:
    """The cache record of ``path`` (None: no record), after checking the file still has the
    sha256 recorded when it was pulled: a file copied over it under the same name is refused,
    never taken for the dataset ``name``."""
    record = read_record(path)
    if record is None:
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    if digest.hexdigest() != record.get("sha256"):
        raise UserError(
            f"{path} is not the file pulled as '{name}' (sha256 {digest.hexdigest()[:12]}..., recorded "
            f"{str(record.get('sha256'))[:12]}... in {path.name}.medops.json); delete both files and run "
            f"`medops data pull {name}` again, or pass your file with --data PATH"
        )
    return record
