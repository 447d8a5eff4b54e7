"""Recall and precision of PHI detection per type on the synthetic corpus in tests/privacy/phi_corpus.py.

python benchmarks/phi_quality.py [--json] [--misses]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "privacy"))

import phi_corpus

from medops.privacy import Redactor, detect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--misses", action="store_true", help="also print missed spans and false positives (PHI!)")
    args = parser.parse_args()
    result = phi_corpus.score(detect)
    kept = phi_corpus.clinical_terms_kept(lambda text: Redactor().redact(text))
    docs = phi_corpus.documents()
    summary = {
        "documents": len(docs),
        "clean_texts": len(phi_corpus.CLEAN),
        "spans": result["spans"],
        "clinical_terms_kept": round(kept, 3),
        "groups": result["groups"],
        "per_type": result["per_type"],
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        print(f"{len(docs)} documents, {result['spans']} PHI spans, {len(phi_corpus.CLEAN)} PHI-free texts")
        print(f"{'type':<22}{'gold':>6}{'recall':>8}{'found':>7}{'precision':>11}")
        for name, row in [*result["groups"].items(), ("", None), *result["per_type"].items()]:
            if row is None:
                print()
                continue
            recall = "-" if row["recall"] is None else f"{row['recall']:.3f}"
            precision = "-" if row["precision"] is None else f"{row['precision']:.3f}"
            print(f"{name:<22}{row['gold']:>6}{recall:>8}{row['predicted']:>7}{precision:>11}")
        print(f"clinical terms kept: {kept:.3f}")
    if args.misses:
        for miss in result["misses"]:
            print("MISS", miss)
        for fp in result["false_positives"]:
            print("FALSE POSITIVE", fp)


if __name__ == "__main__":
    main()
