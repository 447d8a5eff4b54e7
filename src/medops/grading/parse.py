"""Reading a grader's verdict out of free text.

Graders wrap JSON in code fences, add prose around it, or write ``"true"`` as a string.
``parse_verdict`` accepts all of that and returns ``None`` only when no object with a usable
``criteria_met`` can be found: the caller retries and finally records the criterion as
ungraded. It never guesses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

_DECODER = json.JSONDecoder()
_TRUE, _FALSE = {"true", "yes", "met"}, {"false", "no", "not met", "not_met"}


@dataclass(frozen=True)
class Verdict:
    criteria_met: bool
    explanation: str


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def _objects(text: str):
    """Every JSON object embedded in ``text``, outermost first, in order of appearance."""
    position = text.find("{")
    while position != -1:
        try:
            obj, end = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError:
            position = text.find("{", position + 1)
            continue
        if isinstance(obj, dict):
            yield obj
        position = text.find("{", end)


def parse_verdict(reply: str | None) -> Verdict | None:
    if not reply:
        return None
    for obj in _objects(reply):
        if "criteria_met" in obj:
            met = _as_bool(obj["criteria_met"])
            if met is None:
                continue
            explanation = obj.get("explanation")
            return Verdict(met, explanation if isinstance(explanation, str) else "")
    return None
