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

from pathlib import Path
from typing import Any

from pydantic import ValidationError

# The row model lives beside the HealthBench one, which the loader picks by a file's first row;
# it is re-exported here, where the format is described.
from medops.datasets.healthbench import (
    TAG_FIELDS,
    ProfessionalRow,
    RubricDataset,
    example_from_row,
    is_professional_row,
    load_rubric_dataset,
)
from medops.datasets.jsonl import describe_validation_error, iter_json_lines, read_bytes
from medops.errors import DataError

FORMAT = "healthbench-professional"
__all__ = [
    "FORMAT",
    "TAG_FIELDS",
    "ProfessionalRow",
    "detect_format",
    "example_from_row",
    "is_professional_row",
    "load_professional_dataset",
    "load_professional_rows",
]

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
