"""The value types of a review set: an example as stored, its criteria, the labels given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Criterion:
    criterion: str
    points: float
    tags: tuple[str, ...]
    grader: bool | None  # the run's verdict (a jury's aggregate)
    p_met: float | None
    jurors: dict[str, bool | None]  # each judge's own verdict


@dataclass(frozen=True)
class ReviewItem:
    """One example of a set, as stored: everything a reviewer needs, without the run."""

    position: int
    example_index: int
    repeat: int
    prompt_id: str
    conversation: list[dict[str, Any]]
    response: str
    criteria: tuple[Criterion, ...]
    metadata: dict[str, Any]

    @property
    def theme(self) -> str | None:
        return self.metadata.get("theme")

    @property
    def language(self) -> str | None:
        return self.metadata.get("language")


Labels = dict[tuple[int, int], dict[str, bool]]  # (position, criterion_index) -> reviewer -> met
Finals = dict[tuple[int, int], bool]  # (position, criterion_index) -> an operator's adjudicated label
