"""HealthBench meta-evaluation rows: a completion, one criterion, and several physicians' labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medops.datasets.healthbench import Example, Message, RubricDataset, RubricItem
from medops.datasets.jsonl import FileFacts, describe_validation_error, file_facts, iter_json_lines, read_bytes
from medops.errors import DataError


class MetaRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")
    prompt: list[Message] = Field(min_length=1)
    completion: str
    rubric: str = Field(min_length=1)
    category: str = "uncategorized"
    binary_labels: list[bool] = Field(min_length=1)
    anonymized_physician_ids: list[str]
    prompt_id: str = ""
    completion_id: str = ""

    @model_validator(mode="after")
    def _one_id_per_label(self) -> MetaRow:
        if len(self.anonymized_physician_ids) != len(self.binary_labels):
            raise ValueError("anonymized_physician_ids and binary_labels differ in length")
        return self


@dataclass(frozen=True)
class MetaEvalSet:
    name: str
    facts: FileFacts
    rows: tuple[MetaRow, ...]

    def as_rubric_dataset(self) -> tuple[RubricDataset, dict[int, str], list[tuple[int, int]]]:
        """The rows as rubric examples, so the grading pipeline (concurrency, cache, resume,
        grouped grading) serves meta-evaluation unchanged.

        Rows about the same completion become one example with one criterion per row; the
        third value maps each row to its ``(example_index, criterion_index)``.
        """
        groups: dict[tuple[str, str], list[int]] = {}
        for i, row in enumerate(self.rows):
            key = (row.prompt_id, row.completion_id) if row.completion_id else ("", f"row-{i}")
            groups.setdefault(key, []).append(i)
        examples, given, where = [], {}, [(0, 0)] * len(self.rows)
        for example_index, members in enumerate(groups.values()):
            first = self.rows[members[0]]
            examples.append(
                Example(
                    prompt=first.prompt,
                    prompt_id=first.prompt_id or f"row-{members[0]}",
                    rubrics=[
                        RubricItem(criterion=self.rows[i].rubric, points=1, tags=[self.rows[i].category])
                        for i in members
                    ],
                )
            )
            given[example_index] = first.completion
            for criterion_index, i in enumerate(members):
                where[i] = (example_index, criterion_index)
        return RubricDataset(self.name, self.facts, tuple(examples)), given, where


def load_meta_eval(path: str | Path, name: str | None = None) -> MetaEvalSet:
    data = read_bytes(path)
    rows = []
    for line, obj in iter_json_lines(path, data):
        try:
            rows.append(MetaRow.model_validate(obj))
        except ValidationError as exc:
            raise describe_validation_error(path, line, exc) from None
    if not rows:
        raise DataError(path, None, None, "contains no rows")
    return MetaEvalSet(name or Path(path).stem, file_facts(path, data), tuple(rows))
