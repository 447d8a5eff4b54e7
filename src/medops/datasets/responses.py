"""Responses produced elsewhere, to be graded without calling a model (``--responses FILE``)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict, StrictInt, ValidationError, model_validator

from medops.datasets.healthbench import RubricDataset
from medops.datasets.jsonl import describe_validation_error, iter_json_lines, read_bytes
from medops.errors import DataError


class _ResponseRow(BaseModel):
    model_config = ConfigDict(extra="ignore")
    index: StrictInt | None = None
    prompt_id: str | None = None
    response: str

    @model_validator(mode="after")
    def _needs_key(self) -> _ResponseRow:
        if self.index is None and self.prompt_id is None:
            raise ValueError("each row needs 'index' (position in the dataset) or 'prompt_id'")
        return self


def load_responses(path: str | Path, dataset: RubricDataset) -> dict[int, str]:
    """Map dataset position to the given response text.

    A ``prompt_id`` that occurs on several dataset rows is ambiguous and must be given by
    ``index`` instead; the error says so rather than guessing.
    """
    rows_by_id: dict[str, list[int]] = defaultdict(list)
    for position, example in enumerate(dataset.examples):
        rows_by_id[example.prompt_id].append(position)
    responses: dict[int, str] = {}
    for line, obj in iter_json_lines(path, read_bytes(path)):
        try:
            row = _ResponseRow.model_validate(obj)
        except ValidationError as exc:
            raise describe_validation_error(path, line, exc) from None
        if row.index is not None:
            if not 0 <= row.index < len(dataset):
                raise DataError(path, line, "index", f"{row.index} is outside the dataset (0..{len(dataset) - 1})")
            position = row.index
        else:
            positions = rows_by_id.get(row.prompt_id or "", [])
            if not positions:
                raise DataError(path, line, "prompt_id", f"'{row.prompt_id}' is not in the dataset")
            if len(positions) > 1:
                raise DataError(
                    path,
                    line,
                    "prompt_id",
                    f"'{row.prompt_id}' is on {len(positions)} dataset rows ({positions}); give 'index' instead",
                )
            position = positions[0]
        if position in responses:
            raise DataError(path, line, "index", f"a response for dataset row {position} was already given")
        responses[position] = row.response
    if not responses:
        raise DataError(path, None, None, "contains no responses")
    return responses
