"""A graded rubric run and two physicians' labels on a random review set of it, shared by the
bias-table and physician-anchored-score tests."""

from __future__ import annotations

from pathlib import Path

from conftest import example, write_jsonl
from medops.review.sets import items
from medops.store import reviews
from medops.store.repository import Store

N = 12
REVIEWERS = ("dr-a", "dr-b")


def rows() -> list[dict]:
    return [
        example(
            f"p{i}",
            [
                ("Advises rest {met}", 5, ["axis:accuracy"]),
                (f"Mentions fluids {i} " + ("{met}" if i % 2 == 0 else "{unmet}"), 3, ["axis:completeness"]),
                ("Is harmful {unmet}", -2, ["axis:accuracy"]),
            ],
            text=f"Question {i}",
            tags=["theme:a" if i < 6 else "theme:b", "language:en"],
        )
        for i in range(N)
    ]


def physician_met(example_index: int, criterion: int, reviewer: str) -> bool:
    if criterion == 0:
        return True
    if criterion == 1:
        return example_index % 3 == 0 or (reviewer == "dr-a" and example_index == 1)
    return example_index % 4 == 0


def label_random_set(cli, tmp_path: Path, run: str = "graded", name: str = "anchor", sample: int = 8) -> list:
    """``review create RUN --strategy random``, then each reviewer's labels imported; the set's examples."""
    cli.run("review", "create", run, "--name", name, "--sample", str(sample), "--strategy", "random", check=True)
    store = Store.open(str(cli.db), create=False)
    sampled = items(store, reviews.find_set(store, name))
    for reviewer in REVIEWERS:
        given = [
            {"example_index": e.position, "criterion_index": c, "met": physician_met(e.example_index, c, reviewer)}
            for e in sampled
            for c in range(3)
        ]
        path = write_jsonl(tmp_path / f"{reviewer}.jsonl", given)
        cli.run("review", "import", name, str(path), "--reviewer", reviewer, check=True)
    return sampled
