"""How many physician labels give what interval width: the PPI++ interval of the physician-anchored
score (``medops.review.calibrated.ppi_mean``, what ``calibrated`` reports) vs the interval from the
labels alone, for n labelled examples of a run (docs/REVIEW.md, docs/PERFORMANCE.md).

python benchmarks/review_interval_width.py [--examples 1000] [--repetitions 200] [--seed 20] [--json]

The run is synthetic but shaped by the packaged demo rubric set (``medops eval healthbench``'s
default data): its examples cycle through the demo set's 12 rubrics (their points, themes and
languages). Per example a latent quality q ~ Beta(4, 3); physicians find a positive criterion met
with probability q and a negative one with probability (1 - q) / 2. The grader copies each
physician verdict but flips it with probability 0.1, and on one theme (emergency_referrals) also
says "met" to half of the positive criteria the physicians did not find met (an upward bias, as in
tests/review/test_calibrated_simulation.py). Example scores: HealthBench's (points met over
positive points, clipped to [0, 1]). n examples are labelled at random, the rest are the grader's
only; the truth is the physicians' expected score (200,000 simulated examples). Labels-only: the
CLT interval of the n physician scores' mean.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from medops.datasets.registry import packaged_path
from medops.review.calibrated import ppi_mean

SIZES = (10, 20, 50, 100)
BIASED_THEME = "theme:emergency_referrals"


def demo_rubrics() -> list[tuple[np.ndarray, bool]]:
    """(points, on the biased theme) for each example of the packaged demo set."""
    found = []
    for line in packaged_path("demo").read_text("utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            found.append((np.array([c["points"] for c in row["rubrics"]], float), BIASED_THEME in row["example_tags"]))
    return found


def simulate(rubrics: list[tuple[np.ndarray, bool]], n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Physicians' and grader's scores of n examples cycling through the demo rubrics."""
    physicians, grader = np.empty(n), np.empty(n)
    quality = rng.beta(4.0, 3.0, size=n)
    for i in range(n):
        points, biased = rubrics[i % len(rubrics)]
        positive = points > 0
        p_met = np.where(positive, quality[i], (1 - quality[i]) / 2)
        met = rng.random(points.size) < p_met
        judged = met ^ (rng.random(points.size) < 0.1)
        if biased:
            judged |= positive & ~met & (rng.random(points.size) < 0.5)
        possible = points[positive].sum()
        physicians[i] = np.clip(points[met].sum() / possible, 0, 1)
        grader[i] = np.clip(points[judged].sum() / possible, 0, 1)
    return physicians, grader


def measure(examples: int, repetitions: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    rubrics = demo_rubrics()
    truth_y, truth_f = simulate(rubrics, 200_000, rng)
    truth = float(truth_y.mean())
    rows = []
    runs = [simulate(rubrics, examples, rng) for _ in range(repetitions)]
    for n in SIZES:
        ppi_w, classical_w, ppi_cover, classical_cover = [], [], 0, 0
        for y_all, f_all in runs:
            labelled = rng.choice(examples, size=n, replace=False)
            rest = np.setdiff1d(np.arange(examples), labelled)
            y, f = y_all[labelled], f_all[labelled]
            estimate = ppi_mean(y, f, f_all[rest])
            ppi_w.append(estimate.ci_high - estimate.ci_low)
            ppi_cover += estimate.ci_low <= truth <= estimate.ci_high
            half = 1.96 * y.std(ddof=1) / np.sqrt(n)
            classical_w.append(2 * half)
            classical_cover += abs(y.mean() - truth) <= half
        rows.append(
            {
                "n_labelled_examples": n,
                "n_labels_per_reviewer": n * round(np.mean([r[0].size for r in rubrics]), 1),
                "ppi_width": float(np.mean(ppi_w)),
                "labels_only_width": float(np.mean(classical_w)),
                "ratio": float(np.mean(ppi_w) / np.mean(classical_w)),
                "ppi_coverage": ppi_cover / repetitions,
                "labels_only_coverage": classical_cover / repetitions,
            }
        )
    return {
        "examples": examples,
        "repetitions": repetitions,
        "seed": seed,
        "truth": truth,
        "grader_alone": float(truth_f.mean()),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--repetitions", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    result = measure(args.examples, args.repetitions, args.seed)
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"run of {args.examples} examples, {args.repetitions} repetitions; physicians' score {result['truth']:.3f}, "
        f"grader alone {result['grader_alone']:.3f}"
    )
    print(
        "| labelled examples | criteria labelled per reviewer | PPI++ width | labels-only width | PPI++ / labels-only "
        "| PPI++ coverage | labels-only coverage |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in result["rows"]:
        print(
            f"| {r['n_labelled_examples']} | ~{r['n_labels_per_reviewer']:.0f} | {r['ppi_width']:.3f} | "
            f"{r['labels_only_width']:.3f} | {r['ratio']:.2f} | {r['ppi_coverage']:.0%} | "
            f"{r['labels_only_coverage']:.0%} |"
        )
    print(f"({result['wall_seconds']} s)")


if __name__ == "__main__":
    main()
