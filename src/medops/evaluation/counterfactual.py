"""Counterfactual variants as extra samples of a run (``--counterfactual``, docs/EQUITY.md).

A benchmark appends its items' variants after the originals (``Variants``: where each one comes
from, what was counted), plans them with the originals they belong to, scores its headline on
the originals alone, and hands the variants' outcomes to ``medops.equity.stats.summarize``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from medops.equity.rewrite import VariantOf, expand
from medops.equity.stats import Observation, summarize
from medops.evaluation.engine import Job


@dataclass(frozen=True)
class Variants:
    """The variants appended to a data set of ``n_original`` items: ``of[i]`` is item ``n_original + i``."""

    n_original: int
    of: tuple[VariantOf, ...] = ()
    counts: dict[str, Any] = field(default_factory=dict)  # per attribute: rewritten, inserted, kept, left out
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)  # per attribute: its values, in order
    insert: bool = False

    def record(self) -> dict[str, Any]:
        return {
            "n_original": self.n_original,
            "of": [v.record() for v in self.of],
            "counts": self.counts,
            "values": {k: list(v) for k, v in self.values.items()},
            "insert": self.insert,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Variants:
        return cls(
            int(record["n_original"]),
            tuple(VariantOf.from_record(v) for v in record["of"]),
            dict(record["counts"]),
            {k: tuple(v) for k, v in record["values"].items()},
            bool(record.get("insert")),
        )

    def variant(self, index: int) -> VariantOf | None:
        """What item ``index`` is a variant of; None for an original."""
        return self.of[index - self.n_original] if index >= self.n_original else None

    def plan(self, chosen: Sequence[int], repeats: int) -> list[Job]:
        """Each chosen original, then its variants, per repeat."""
        by_original: dict[int, list[int]] = {}
        for offset, v in enumerate(self.of):
            by_original.setdefault(v.original_index, []).append(self.n_original + offset)
        return [
            job
            for repeat in range(repeats)
            for index in chosen
            for job in [(index, repeat), *((i, repeat) for i in by_original.get(index, ()))]
        ]

    def originals(self, jobs: Sequence[Job]) -> list[Job]:
        return [job for job in jobs if job[0] < self.n_original]

    def summary(self, outcomes: dict[Job, tuple[str | None, float]], *, kind: str, seed: int) -> dict[str, Any]:
        """The ``counterfactual`` block from each answered variant job's (answer, score)."""
        observations = []
        for (index, repeat), (answer, score) in outcomes.items():
            v = self.variant(index)
            if v is not None:
                observations.append(Observation(v.original_index, repeat, v.attribute, v.value, answer, score))
        block = summarize(observations, self.values, kind=kind, seed=seed, counts=self.counts)
        block["insert"] = self.insert
        return block


def make_variants(
    items: Sequence[tuple[int, Sequence[str], Sequence[str]]],
    n_original: int,
    attributes: Sequence[str],
    *,
    insert: bool,
) -> tuple[Variants, list[tuple[str, ...]]]:
    """The variants of ``items`` ((index, texts, context) of each chosen original) and their texts."""
    found, counts, values = expand(items, attributes, insert=insert)
    return Variants(n_original, tuple(v for v, _ in found), counts, values, insert), [t for _, t in found]
