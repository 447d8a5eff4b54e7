"""HealthBench Professional rows (OpenAI, 2026): clinician tasks, mapped onto rubric examples.

A row holds ``id``, ``conversation.messages``, ``rubric_items`` (``criterion_text``, ``points``),
``use_case``, ``type``, ``difficulty``, ``specialty``, ``physician_response`` and
``canary_string``. The mapping follows the reference converter (medicalsphere/HealthBench,
``_convert_professional_example``): prompt = conversation.messages, criterion =
criterion_text, no rubric tags, prompt_id = id. Two differences, both named:

* example tags are ``field:value`` (``use_case:consult``, ``type:red_teaming``,
  ``difficulty:difficult``, ``specialty:...``) where the reference keeps the bare values
  (``consult``): the metric names say what they break down, and a specialty can never collide
  with a use case. The values, and so every metric's numbers, are the same;
* ``physician_response`` becomes the ideal completion (the reference drops it), so
  ``--completions ideal`` grades the physicians' own answers. Model runs never read it.

Field errors name the file's own fields (``rubric_items.0.criterion_text``), not medops's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator

from medops.datasets.healthbench import (
    Example,
    IdealCompletions,
    Message,
    NonEmptyStr,
    RubricDataset,
    RubricItem,
    _Frozen,
    load_rubric_dataset,
)
from medops.datasets.jsonl import describe_validation_error, iter_json_lines, read_bytes
from medops.errors import DataError

FORMAT = "healthbench-professional"
# The reference's example_tags, in its order (None values skipped).
TAG_FIELDS = ("use_case", "type", "difficulty", "specialty")


class Conversation(_Frozen):
    messages: list[Message] = Field(min_length=1)


def _finite_number(value: Any) -> int | float:
    # int stays int (the grader sees "[5] ..." as the reference renders it); "5", true, NaN refused
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"points must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError("points must be a finite number")
    return value


class ProfessionalRubricItem(_Frozen):
    criterion_text: NonEmptyStr
    points: Annotated[int | float, BeforeValidator(_finite_number)]


class ProfessionalRow(_Frozen):
    id: NonEmptyStr
    conversation: Conversation
    rubric_items: list[ProfessionalRubricItem] = Field(min_length=1)
    use_case: NonEmptyStr | None = None
    type: NonEmptyStr | None = None
    difficulty: NonEmptyStr | None = None
    specialty: NonEmptyStr | None = None
    physician_response: str | None = None
    canary_string: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _same_format(cls, data: Any) -> Any:
        if isinstance(data, dict) and "conversation" not in data and "prompt" in data and "rubrics" in data:
            raise ValueError("a HealthBench-format row (prompt, rubrics) in a HealthBench Professional file")
        return data

    @field_validator("rubric_items")
    @classmethod
    def _scorable(cls, items: list[ProfessionalRubricItem]) -> list[ProfessionalRubricItem]:
        if not any(item.points > 0 for item in items):
            raise ValueError("no criterion has positive points, so the example cannot be scored")
        return items

    def example_tags(self) -> list[str]:
        return [f"{name}:{value}" for name in TAG_FIELDS if (value := getattr(self, name)) is not None]

    def to_example(self) -> Example:
        ideal = None
        if self.physician_response:
            ideal = IdealCompletions(ideal_completion=self.physician_response)
        return Example(
            prompt=list(self.conversation.messages),
            prompt_id=self.id,
            rubrics=[RubricItem(criterion=i.criterion_text, points=i.points, tags=[]) for i in self.rubric_items],
            example_tags=self.example_tags(),
            ideal_completions_data=ideal,
        )


def is_professional_row(obj: Any) -> bool:
    """A Professional row carries ``conversation`` and ``rubric_items`` (HealthBench: ``prompt``, ``rubrics``)."""
    return isinstance(obj, dict) and "conversation" in obj and "rubric_items" in obj


def example_from_row(obj: dict) -> Example:
    """Validate one Professional row and map it; raises pydantic's ValidationError on a bad row."""
    return ProfessionalRow.model_validate(obj).to_example()


def _first_row(path: str | Path) -> tuple[int, Any]:
    for line, obj in iter_json_lines(path, read_bytes(path)):
        return line, obj
    raise DataError(path, None, None, "contains no examples")


def detect_format(path: str | Path) -> str:
    """``healthbench-professional`` or ``healthbench``, decided by the first row (as loading does)."""
    return FORMAT if is_professional_row(_first_row(path)[1]) else "healthbench"


def load_professional_rows(path: str | Path) -> list[ProfessionalRow]:
    """Every row as written (use_case, physician_response, canary ...), for analyses beyond scoring."""
    rows: list[ProfessionalRow] = []
    for line, obj in iter_json_lines(path, read_bytes(path)):
        if not isinstance(obj, dict):
            raise DataError(path, line, None, f"expected a JSON object, got {type(obj).__name__}")
        try:
            rows.append(ProfessionalRow.model_validate(obj))
        except ValidationError as exc:
            raise describe_validation_error(path, line, exc) from None
    if not rows:
        raise DataError(path, None, None, "contains no examples")
    return rows


def load_professional_dataset(path: str | Path, name: str | None = None) -> RubricDataset:
    """A Professional file as a rubric set; a HealthBench-format file is refused, naming its line."""
    line, first = _first_row(path)
    if not is_professional_row(first):
        raise DataError(
            path, line, None, "not a HealthBench Professional row (needs 'conversation' and 'rubric_items')"
        )
    return load_rubric_dataset(path, name)
