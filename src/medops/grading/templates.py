"""Grader prompts.

The conversation comes first in medops's default template so that the grader prompts of one
example share a long prefix (endpoints with prefix caching reuse it across criteria).
``--grader-template FILE`` takes any template with ``<<conversation>>`` and
``<<rubric_item>>``; given the official HealthBench template it yields the reference
implementation's prompts byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from medops.content import text_of
from medops.errors import UserError

CONVERSATION, RUBRIC_ITEM = "<<conversation>>", "<<rubric_item>>"


def default_template() -> str:
    return files("medops.grading").joinpath("default_grader_template.txt").read_text("utf-8").strip()


def load_template(path: str | Path, placeholders: tuple[str, ...] = ("<<conversation>>", "<<rubric_item>>")) -> str:
    """Read a template file; surrounding whitespace is dropped, as the reference strips its own."""
    try:
        text = Path(path).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read grader template ({exc})") from None
    missing = [p for p in placeholders if p not in text]
    if missing:
        raise UserError(f"{path}: grader template lacks the placeholder(s) {', '.join(missing)}")
    return text


def render_conversation(messages: Sequence[Mapping[str, Any]]) -> str:
    """``role: content`` blocks joined by a blank line, as the reference renders them (a turn's
    text parts joined by newlines: ``content.text_of``)."""
    return "\n\n".join(f"{m['role']}: {text_of(m['content'])}" for m in messages)


def render_grader_prompt(template: str, conversation: str, rubric_item: str) -> str:
    # Same replacement order as the reference: a conversation that happens to contain
    # "<<rubric_item>>" is therefore treated exactly as the reference treats it.
    return template.replace(CONVERSATION, conversation).replace(RUBRIC_ITEM, rubric_item)


RUBRIC_ITEMS = "<<rubric_items>>"


def default_group_template() -> str:
    return files("medops.grading").joinpath("default_group_template.txt").read_text("utf-8").strip()


def render_group_prompt(template: str, conversation: str, numbered_items: list[tuple[int, str]]) -> str:
    """Several criteria in one prompt, each as ``number. [points] criterion``."""
    listing = "\n".join(f"{number}. {item}" for number, item in numbered_items)
    return template.replace(CONVERSATION, conversation).replace(RUBRIC_ITEMS, listing)
