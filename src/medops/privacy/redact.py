"""Redaction with typed placeholders that stay consistent within one conversation.

``Redactor`` numbers each distinct value per type in the order it first appears: the same
person is ``[PERSON_1]`` in every message of the conversation, a second person ``[PERSON_2]``,
so a grader can still follow who is who. The replacement is what Presidio's ``AnonymizerEngine``
does with a custom operator per type (entities of one type with only spaces between them become
one), spliced here directly: the engine's per-call objects cost more than the splice.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Any

from medops.privacy.engine import DetectionMemo, Entity, detect

_TITLE = re.compile(r"^(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Doctor|Professor)\.?\s+)", re.IGNORECASE)
_NOT_ALNUM = re.compile(r"[\W_]+")
_SPACES = re.compile(r" +")


def _key(kind: str, value: str) -> str:
    if kind == "PERSON":
        return _TITLE.sub("", value.strip()).casefold()
    value = unicodedata.normalize("NFKC", value)  # a full-width number is the same number
    if kind in ("ADDRESS", "DATE", "DATE_OF_BIRTH", "URL", "EMAIL_ADDRESS"):
        return " ".join(value.split()).casefold()
    return _NOT_ALNUM.sub("", value).casefold()


class Redactor:
    """One per conversation: ``redact`` replaces PHI with ``[TYPE_n]``, the same n for the same value."""

    def __init__(self, memo: DetectionMemo | None = None) -> None:
        self._memo = memo  # where the same text with the same known names was detected before
        self._numbers: dict[str, dict[str, int]] = {}
        self._names: set[str] = set()  # person names seen, so a later bare mention is redacted too
        self.counts: dict[str, int] = {}

    def _placeholder(self, kind: str, value: str) -> str:
        numbers = self._numbers.setdefault(kind, {})
        key = _key(kind, value)
        if key not in numbers and kind == "PERSON":
            tokens = set(key.split())
            for known, n in numbers.items():  # "Smith" after "John Smith" is the same person
                if tokens and tokens <= set(known.split()):
                    numbers[key] = n
                    break
        if key not in numbers:
            numbers[key] = len(set(numbers.values())) + 1
        return f"[{kind}_{numbers[key]}]"

    def detect(self, text: str) -> list[Entity]:
        """The entities ``redact`` would replace (names seen earlier in the conversation included)."""
        if self._memo is not None:
            return self._memo.detect(text, self._names)
        return detect(text, known_names=self._names)

    def redact_entities(self, text: str) -> tuple[str, list[Entity]]:
        """The redacted text and the entities replaced, with offsets into the original ``text``."""
        entities = self.detect(text)
        if not entities:
            return text, []
        for e in entities:
            if e.type == "PERSON":
                self._names.add(_TITLE.sub("", text[e.start : e.end]))
        for e in entities:  # number values in reading order
            self._placeholder(e.type, text[e.start : e.end])
        spans: list[list[Any]] = []  # [type, start, end]; one type with only spaces between: one span
        for e in entities:
            if spans and spans[-1][0] == e.type and _SPACES.fullmatch(text, spans[-1][2], e.start):
                spans[-1][2] = e.end
            else:
                spans.append([e.type, e.start, e.end])
        pieces, at = [], len(text)
        for kind, start, end in reversed(spans):  # replaced from the end, as Presidio does
            pieces.append(text[end:at])
            pieces.append(self._placeholder(kind, text[start:end]))
            at = start
        pieces.append(text[:at])
        redacted = "".join(reversed(pieces))
        for kind, n in Counter(e.type for e in entities).items():
            self.counts[kind] = self.counts.get(kind, 0) + n
        return redacted, entities

    def redact(self, text: str) -> str:
        return self.redact_entities(text)[0]
