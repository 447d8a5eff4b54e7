"""Redaction with typed placeholders that stay consistent within one conversation.

``Redactor`` numbers each distinct value per type in the order it first appears: the same
person is ``[PERSON_1]`` in every message of the conversation, a second person ``[PERSON_2]``,
so a grader can still follow who is who. The replacement itself is done by Presidio's
``AnonymizerEngine`` with a custom operator per entity type.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Any

from medops.privacy.engine import Entity, PhiUnavailable, detect, missing_components

_TITLE = re.compile(r"^(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Doctor|Professor)\.?\s+)", re.IGNORECASE)
_NOT_ALNUM = re.compile(r"[\W_]+")
_anonymizer: Any = None


def _anonymizer_engine() -> Any:
    global _anonymizer
    if _anonymizer is None:
        problem = missing_components()
        if problem:
            raise PhiUnavailable(problem)
        from presidio_anonymizer import AnonymizerEngine

        _anonymizer = AnonymizerEngine()
    return _anonymizer


def _key(kind: str, value: str) -> str:
    if kind == "PERSON":
        return _TITLE.sub("", value.strip()).casefold()
    value = unicodedata.normalize("NFKC", value)  # a full-width number is the same number
    if kind in ("ADDRESS", "DATE", "DATE_OF_BIRTH", "URL", "EMAIL_ADDRESS"):
        return " ".join(value.split()).casefold()
    return _NOT_ALNUM.sub("", value).casefold()


class Redactor:
    """One per conversation: ``redact`` replaces PHI with ``[TYPE_n]``, the same n for the same value."""

    def __init__(self) -> None:
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
        return detect(text, known_names=self._names)

    def redact_entities(self, text: str) -> tuple[str, list[Entity]]:
        """The redacted text and the entities replaced, with offsets into the original ``text``."""
        entities = self.detect(text)
        if not entities:
            return text, []
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        engine = _anonymizer_engine()
        for e in entities:
            if e.type == "PERSON":
                self._names.add(_TITLE.sub("", text[e.start : e.end]))
        operators = {
            kind: OperatorConfig("custom", {"lambda": lambda value, kind=kind: self._placeholder(kind, value)})
            for kind in {e.type for e in entities}
        }
        # Presidio applies operators from the end of the text; number values in reading order first.
        for e in entities:
            self._placeholder(e.type, text[e.start : e.end])
        results = [RecognizerResult(e.type, e.start, e.end, e.score) for e in entities]
        redacted = engine.anonymize(text=text, analyzer_results=results, operators=operators).text
        for kind, n in Counter(e.type for e in entities).items():
            self.counts[kind] = self.counts.get(kind, 0) + n
        return redacted, entities

    def redact(self, text: str) -> str:
        return self.redact_entities(text)[0]
