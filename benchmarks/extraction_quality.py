"""Precision and recall of the answer-extraction cascade on the table in tests/scoring/test_extract.py.

python benchmarks/extraction_quality.py [--extract PATH] [--no-options]

Precision: of the completions read as some letter, the share read as the expected letter.
Recall: of the completions that name one option, the share read as that option.
``--extract`` scores another version of scoring/extract.py (e.g. one taken from git history);
``--no-options`` reads without option texts, as the rewards did before options travelled in the rows.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def score(rows, extract, use_options: bool = True) -> dict:
    parsed = right = gold = read_right = 0
    for text, expected, options in rows:
        choice = extract(text, "".join(options), options if use_options else None).choice
        parsed += choice is not None
        right += choice is not None and choice == expected
        gold += expected is not None
        read_right += expected is not None and choice == expected
    return {
        "n": len(rows),
        "with_gold": gold,
        "parsed": parsed,
        "precision": round(right / parsed, 4) if parsed else None,
        "recall": round(read_right / gold, 4) if gold else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--extract", type=Path, help="another scoring/extract.py to score")
    parser.add_argument("--no-options", action="store_true", help="read without option texts")
    args = parser.parse_args()
    sys.path.insert(0, str(TESTS))
    table = _load("extraction_table", TESTS / "scoring" / "test_extract.py")
    extract = _load("other_extract", args.extract).extract_choice if args.extract else table.extract_choice
    rows = [(text, expected, table.QUESTIONS[question]) for text, expected, question in table.TABLE]
    korean = [row for row in rows if re.search("[가-힣]", row[0])]
    english = [row for row in rows if not re.search("[가-힣]", row[0])]
    report = {
        "all": score(rows, extract, not args.no_options),
        "english": score(english, extract, not args.no_options),
        "korean_or_mixed": score(korean, extract, not args.no_options),
        "known_misses": len(table.KNOWN_MISSES),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
