"""Whether the PHI detector's output is identical to another revision's, on every corpus we have.

    python benchmarks/phi_equivalence.py [--ref main] [--slices 4000]

Runs the detector of ``--ref`` (its ``src``, taken with ``git archive`` into a temporary folder,
in a subprocess) and this tree's over the same texts and compares every entity (type, start,
end, score), every redaction and every count: the throughput set (``phi_throughput.py``), the
recorder benchmark's exchanges (``recorder_throughput.py``, through ``apply_phi_batch``; distinct, and
chats that resend the conversation, where the recorder's memo answers),
tests/privacy's hand-written and generated corpus, its PHI-free texts, the generated
dev / heldout / heldout2 parts, the clinical notes, known names passed to ``detect``, whole
conversations through one ``Redactor``, and random slices of all of them (cut anywhere, so rule
boundaries at the text's edges are tried). Exit status 1 and the first differences when they
differ. A speed change to the detector must leave this at "identical".
"""

from __future__ import annotations

import argparse
import pickle
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "privacy"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def texts(slices: int) -> dict[str, list[str]]:
    """The named text sets, deterministic."""
    import clinical_notes
    import phi_corpus
    import phi_generated

    from phi_throughput import conversations

    sets: dict[str, list[str]] = {
        "throughput": conversations(1000),
        "corpus": [d.text for d in phi_corpus.documents()],
        "clean": list(phi_corpus.CLEAN),
    }
    for part in phi_generated.PARTS:
        sets[f"generated-{part}"] = [d.text for d in phi_generated.corpus(part)]
    for part in clinical_notes.PARTS:
        sets[f"notes-{part}"] = [t for t, _ in clinical_notes.notes(part)]
    rng = random.Random(11)
    pool = [t for values in sets.values() for t in values]
    cut = []
    for _ in range(slices):
        text = rng.choice(pool)
        start = rng.randrange(len(text))
        cut.append(text[start : start + rng.randint(1, 700)])
    sets["slices"] = cut
    joined = []  # two texts run together with no separator, or one odd one between
    for _ in range(slices // 4):
        a, b = rng.choice(pool), rng.choice(pool)
        joined.append(a[-rng.randint(1, 300) :] + rng.choice(["", " ", "\n", ".", "-", ":", "1", "가", "A"]) + b[:300])
    sets["joined"] = joined
    return sets


def compute(slices: int) -> dict[str, Any]:
    """Everything the detector and the redactor say about the text sets."""
    from medops.monitor.recorder import apply_phi_batch
    from medops.privacy import Redactor, detect
    from recorder_throughput import resent_rows, rows

    out: dict[str, Any] = {}
    sets = texts(slices)
    for name, values in sets.items():
        out[f"detect/{name}"] = [[(e.type, e.start, e.end, e.score) for e in detect(t)] for t in values]
    names = ["김민수", "John Smith", "Smith", "정상우", "이상민", "Jane", "박지영", "Lee"]
    rng = random.Random(5)
    out["detect/known-names"] = [
        [(e.type, e.start, e.end, e.score) for e in detect(t, known_names=rng.sample(names, rng.randint(1, 3)))]
        for t in sets["throughput"][:300] + sets["corpus"] + sets["slices"][:1000]
    ]
    for name in ("throughput", "corpus", "generated-heldout2", "notes-heldout"):
        conversation: list[Any] = []
        values = sets[name]
        for i in range(0, len(values), 5):  # five messages a conversation, one Redactor
            redactor = Redactor()
            conversation.append(([redactor.redact(t) for t in values[i : i + 5]], sorted(redactor.counts.items())))
        out[f"redact/{name}"] = conversation
    out["recorder"] = [(row, counts) for row, counts in apply_phi_batch(rows(1000), "redact")]
    out["recorder-resent"] = [(row, counts) for row, counts in apply_phi_batch(resent_rows(400), "redact")]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="main", help="the git revision to compare with (default: main)")
    parser.add_argument("--slices", type=int, default=4000)
    parser.add_argument("--dump", help=argparse.SUPPRESS)  # in the subprocess: write the results here
    args = parser.parse_args()
    if args.dump:
        Path(args.dump).write_bytes(pickle.dumps(compute(args.slices)))
        return
    with tempfile.TemporaryDirectory() as folder:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.ref, "src"], capture_output=True)
        if archive.returncode != 0:
            print(f"error: git archive {args.ref}: {archive.stderr.decode().strip()}", file=sys.stderr)
            raise SystemExit(2)
        subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
        dump = Path(folder) / "ref.pickle"
        env = {"PYTHONPATH": str(Path(folder) / "src"), "PATH": "/usr/bin:/bin"}
        subprocess.run(
            [sys.executable, __file__, "--slices", str(args.slices), "--dump", str(dump)], env=env, check=True
        )
        before = pickle.loads(dump.read_bytes())
    after = compute(args.slices)
    differences = 0
    for key in before:
        old, new = before[key], after[key]
        count = len(old)
        bad = [i for i in range(count) if old[i] != new[i]] if len(new) == count else list(range(count))
        print(f"{key:<28} {count:>5} items: {'identical' if not bad else f'{len(bad)} DIFFER'}")
        for i in bad[:3]:
            print(f"    [{i}] {args.ref}: {old[i]!r:.400}\n    [{i}] here: {new[i]!r:.400}")
        differences += len(bad)
    total = sum(len(v) for v in before.values())
    print(f"{total} items, {'all identical' if not differences else f'{differences} differ'} ({args.ref} vs this tree)")
    raise SystemExit(1 if differences else 0)


if __name__ == "__main__":
    main()
