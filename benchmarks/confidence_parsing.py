"""Parse accuracy of the stated-confidence rules (scoring/confidence.py) on the tables in
tests/scoring/test_confidence.py: ``TABLE`` (what the rules were written against) and ``HELD_OUT``
(written after they were frozen). A case is right when the value read equals the expected one, or
both are None (no confidence stated, or one out of range).

python benchmarks/confidence_parsing.py
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def accuracy(rows, read) -> dict:
    right = 0
    for text, expected in rows:
        got = read(text)
        right += (got is None and expected is None) or (
            got is not None and expected is not None and math.isclose(got, expected)
        )
    return {"n": len(rows), "right": right, "accuracy": round(right / len(rows), 4)}


def main() -> None:
    spec = importlib.util.spec_from_file_location("confidence_table", TESTS / "scoring" / "test_confidence.py")
    table = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["confidence_table"] = table
    spec.loader.exec_module(table)  # type: ignore[union-attr]
    report = {
        "table": accuracy(table.TABLE, table.stated_confidence),
        "held_out": accuracy(table.HELD_OUT, table.stated_confidence),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
