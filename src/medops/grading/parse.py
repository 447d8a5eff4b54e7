"""Reading a grader's verdict out of free text.

Graders wrap JSON in code fences, add prose around it, or write ``"true"`` as a string.
The rule (docs/GRADING.md): only a JSON boolean or the string ``"true"``/``"false"`` counts;
when a reply holds several top-level JSON objects with ``criteria_met``, the last one is the
grader's verdict. Anything else (no such object, or a last one whose value is ``"yes"``, ``1``,
``null``...) gives ``None``: the caller retries and finally records the criterion as
ungraded. It never guesses.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

_DECODER = json.JSONDecoder()
_TRUE_FALSE = {"true": True, "false": False}


@dataclass(frozen=True)
class Verdict:
    criteria_met: bool
    explanation: str


def _as_bool(value: object) -> bool | None:
    """A JSON boolean, or the string "true"/"false" (any letter case, surrounding spaces ignored)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _TRUE_FALSE.get(value.strip().lower())
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
    """The verdict of the last top-level JSON object with ``criteria_met``, or None.

    The last one wins because graders that quote an example or revise themselves put their
    answer last. If that last value is not usable the reply is unreadable: an earlier object
    is never taken in its place.
    """
    if not reply:
        return None
    last = None
    for obj in _objects(reply):
        if "criteria_met" in obj:
            last = obj
    if last is None:
        return None
    met = _as_bool(last["criteria_met"])
    if met is None:
        return None
    explanation = last.get("explanation")
    return Verdict(met, explanation if isinstance(explanation, str) else "")


def parse_group_verdicts(reply: str | None, expected: set[int]) -> dict[int, Verdict]:
    """Verdicts by criterion number from a grouped reply.

    A number that is missing, unexpected or given more than once yields nothing for that
    criterion: the caller retries it, and never assigns a verdict by position.
    """
    if not reply:
        return {}
    entries: list = []
    for obj in _values(reply):
        if isinstance(obj, dict) and isinstance(obj.get("grades"), list):
            entries = obj["grades"]
            break
        if isinstance(obj, list):
            entries = obj
            break
    found: dict[int, list[Verdict]] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        index, met = entry.get("index"), _as_bool(entry.get("criteria_met"))
        if isinstance(index, str) and index.strip().isdigit():
            index = int(index)
        if not isinstance(index, int) or isinstance(index, bool) or index not in expected or met is None:
            continue
        explanation = entry.get("explanation")
        found.setdefault(index, []).append(Verdict(met, explanation if isinstance(explanation, str) else ""))
    return {index: verdicts[0] for index, verdicts in found.items() if len(verdicts) == 1}


def _values(text: str):
    """Every JSON object or array embedded in ``text``, in order of appearance."""
    position = min((p for p in (text.find("{"), text.find("[")) if p != -1), default=-1)
    while position != -1:
        try:
            value, end = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError:
            end = position + 1
        else:
            yield value
        candidates = [p for p in (text.find("{", end), text.find("[", end)) if p != -1]
        position = min(candidates, default=-1)


def p_met_from_choice_logprobs(choice_logprobs: dict[str, float]) -> float | None:
    """P(true) among {true, false} from each choice's log-probability."""
    scores = {_TRUE_FALSE.get(k.strip().strip('"').lower()): v for k, v in choice_logprobs.items()}
    if True not in scores or False not in scores:
        return None
    top = max(scores[True], scores[False])
    p_true, p_false = math.exp(scores[True] - top), math.exp(scores[False] - top)
    return p_true / (p_true + p_false)


def p_met_from_token_logprobs(logprobs: dict | None) -> float | None:
    """P(true) at the token that gives ``criteria_met`` its value, from OpenAI-style logprobs.

    Walks the generated tokens; the first token reading ``true``/``false`` after the text
    ``criteria_met`` is the decision point, and its top alternatives give both probabilities.
    """
    tokens = (logprobs or {}).get("content") or []
    seen = ""
    for token in tokens:
        text = token.get("token", "")
        if "criteria_met" in seen and text.strip().strip('":').lower() in _TRUE_FALSE:
            mass = {True: 0.0, False: 0.0}
            for alternative in token.get("top_logprobs") or [token]:
                value = _TRUE_FALSE.get(alternative.get("token", "").strip().strip('":').lower())
                if value is not None:
                    mass[value] += math.exp(alternative.get("logprob", -math.inf))
            total = mass[True] + mass[False]
            return mass[True] / total if total > 0 else None
        seen += text
    return None
