"""HealthBench-format rubric sets: the official files and any hospital's own, in any language."""

from __future__ import annotations

import math
import random
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from medops.content import Content
from medops.datasets.images import image_part
from medops.datasets.jsonl import (
    FileFacts,
    describe_validation_error,
    file_facts,
    iter_json_lines,
    read_bytes,
)
from medops.errors import DataError

NonEmptyStr = Annotated[str, Field(min_length=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


ROLES = ("system", "developer", "user", "assistant")


class Message(_Frozen):
    role: str
    content: Content  # text, or parts: an image's url is a data: URI or a path relative to the file

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        # A typo ("asistant") or another API's role ("tool", "model") would reach the model and
        # the grader as a turn of nobody's; refuse it with the file, line and field instead.
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
        return role


class RubricItem(_Frozen):
    criterion: NonEmptyStr
    # int stays int: the reference renders "[5] ..." not "[5.0] ...", byte for byte.
    points: StrictInt | StrictFloat
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> RubricItem:
        if not math.isfinite(self.points):
            raise ValueError("points must be a finite number")
        if len(set(self.tags)) != len(self.tags):
            raise ValueError("tags repeat within one criterion")
        return self

    def render(self) -> str:
        """The rubric item as the grader sees it (the reference's ``str(RubricItem)``)."""
        return f"[{self.points}] {self.criterion}"


class IdealCompletions(_Frozen):
    ideal_completion: str | None = None
    ideal_completions_group: str | None = None
    ideal_completions_ref_completions: list[str] | None = None


class Example(_Frozen):
    prompt: list[Message] = Field(min_length=1)
    prompt_id: NonEmptyStr
    rubrics: list[RubricItem] = Field(min_length=1)
    example_tags: list[str] = Field(default_factory=list)
    ideal_completions_data: IdealCompletions | None = None

    @field_validator("rubrics")
    @classmethod
    def _scorable(cls, rubrics: list[RubricItem]) -> list[RubricItem]:
        if not any(item.points > 0 for item in rubrics):
            raise ValueError("no criterion has positive points, so the example cannot be scored")
        return rubrics

    @field_validator("example_tags")
    @classmethod
    def _unique_tags(cls, tags: list[str]) -> list[str]:
        if len(set(tags)) != len(tags):
            raise ValueError("a tag is repeated")
        return tags

    @property
    def ideal_completion(self) -> str | None:
        return self.ideal_completions_data.ideal_completion if self.ideal_completions_data else None


@dataclass(frozen=True)
class RubricDataset:
    """A loaded rubric set. An example's identity is its position (``index``), not its prompt_id."""

    name: str
    facts: FileFacts
    examples: tuple[Example, ...]

    def __len__(self) -> int:
        return len(self.examples)


# HealthBench Professional rows (the mapping: datasets/healthbench_professional.py).
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


class DuplicatePromptIdWarning(UserWarning):
    pass


def load_rubric_dataset(path: str | Path, name: str | None = None) -> RubricDataset:
    """Read and validate every row; the first bad row stops the load with file:line and field.

    A HealthBench Professional file (rows with ``conversation`` and ``rubric_items``) is
    recognised by its first row and mapped (``ProfessionalRow``, described in
    ``healthbench_professional``)."""
    data = read_bytes(path)
    examples: list[Example] = []
    parse: Callable[[dict], Example] | None = None
    for line, obj in iter_json_lines(path, data):
        if not isinstance(obj, dict):
            raise DataError(path, line, None, f"expected a JSON object, got {type(obj).__name__}")
        if parse is None:  # the first row decides the file's format: HealthBench or Professional
            parse = example_from_row if is_professional_row(obj) else Example.model_validate
        try:
            example = parse(obj)
        except ValidationError as exc:
            raise describe_validation_error(path, line, exc) from None
        examples.append(_with_images_read(example, Path(path), line))
    if not examples:
        raise DataError(path, None, None, "contains no examples")
    repeated = [pid for pid, count in Counter(e.prompt_id for e in examples).items() if count > 1]
    if repeated:
        warnings.warn(
            f"{path}: {len(repeated)} prompt_id value(s) appear on more than one row "
            f"(e.g. {repeated[0]}); every row is kept and identified by its position",
            DuplicatePromptIdWarning,
            stacklevel=2,
        )
    return RubricDataset(name or Path(path).stem, file_facts(path, data), tuple(examples))


def _with_images_read(example: Example, path: Path, line: int) -> Example:
    """Each image part whose url is a path, read (relative to the data file) into a data: URI."""
    if all(isinstance(m.content, str) for m in example.prompt):
        return example
    prompt = []
    for i, message in enumerate(example.prompt):
        content = message.content
        if not isinstance(content, str):
            content = [
                _read_image(part, path, line, f"prompt.{i}.content.{j}.image_url.url")
                if part["type"] == "image_url"
                else part
                for j, part in enumerate(content)
            ]
        prompt.append(Message(role=message.role, content=content))
    return example.model_copy(update={"prompt": prompt})


def _read_image(part: dict, path: Path, line: int, field: str) -> dict:
    """The part with its image read (``datasets.images``: checked, resized, DICOM rendered)."""
    read = image_part(part["image_url"]["url"], data_file=path, line=line, field=field)
    return {**part, "image_url": {**part["image_url"], "url": read["image_url"]["url"]}}


def select_indices(n_available: int, limit: int | None, seed: int) -> list[int]:
    """Pick ``limit`` positions reproducibly.

    ``random.Random(seed).sample`` over positions picks the same rows as the reference
    implementation's ``random.Random(0).sample(examples, n)`` when ``seed`` is 0.
    """
    if limit is None or limit >= n_available:
        return list(range(n_available))
    return random.Random(seed).sample(range(n_available), limit)
