"""An exam answer's confidence, read three ways, and whether an answer abstains.

* ``option_probability``: the chosen option's share of the choice probabilities (log-likelihood
  scoring, in-process models);
* ``letter_probability``: the probability of the answer-letter token, from OpenAI-style token
  logprobs (served models that return ``logprobs``; in-process generation), renormalised over the
  option letters among the token's top alternatives;
* ``stated_confidence``: a confidence the answer states ("Confidence: 80%", "확신도: 0.8"), for
  prompts that ask for one (``--style confidence``). Rule-based; tests/scoring/test_confidence.py
  holds the cases, with a held-out part scored for parse accuracy.

``is_abstention`` reads "I don't know" / "모르겠습니다"-style answers (``--allow-abstain``).
Every reader returns None when it cannot tell: a missing confidence is never a default.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

_STRIP = " \t\n\r\"'*_`()[]{}.:,<>\\/"


def option_probability(choice_logprobs: Mapping[str, float], chosen: str | None) -> float | None:
    """Softmax over the options' log-likelihoods: the chosen option's probability."""
    if chosen is None or not choice_logprobs:
        return None
    scores = {k.strip(): v for k, v in choice_logprobs.items()}
    if chosen not in scores:
        return None
    top = max(scores.values())
    mass = {k: math.exp(v - top) for k, v in scores.items()}
    return mass[chosen] / sum(mass.values())


def _letter(token: str) -> str:
    return token.strip(_STRIP)


def letter_probability(logprobs: Mapping | None, chosen: str | None, letters: Iterable[str]) -> float | None:
    """P(chosen letter) at the last generated token that reads as the chosen letter.

    The probability is the chosen letter's mass among the token's top alternatives that read as an
    option letter (" B" and "B" pooled); without alternatives, the token's own probability.
    """
    if chosen is None:
        return None
    options = set(letters)
    tokens = (logprobs or {}).get("content") or []
    for token in reversed(tokens):
        if _letter(token.get("token", "")) != chosen:
            continue
        mass: dict[str, float] = {}
        for alternative in token.get("top_logprobs") or []:
            letter = _letter(alternative.get("token", ""))
            if letter in options:
                mass[letter] = mass.get(letter, 0.0) + math.exp(alternative.get("logprob", -math.inf))
        total = sum(mass.values())
        if chosen in mass and total > 0:
            return mass[chosen] / total
        logprob = token.get("logprob")
        return math.exp(logprob) if isinstance(logprob, (int, float)) else None
    return None


# "Confidence: 80%", "confidence level - 0.8", "I am 80% confident", "확신도: 80%", "신뢰도 0.8", "확률: 80 %"
_NUMBER = r"(\d{1,3}(?:\.\d+)?|\.\d+)\s*(%|퍼센트|percent)?"
_LABEL = r"(?:confidence(?:\s+(?:level|score))?|certainty|확신도|신뢰도|확신|자신감|확률)"
_STATED = [
    re.compile(_LABEL + r"\s*(?:\(\s*0\s*-\s*100\s*%?\s*\)|\(\s*0\s*-\s*1\s*\))?\s*(?:is|=|:|-|은|는)?\s*" + _NUMBER,
               re.IGNORECASE),
    re.compile(r"\b" + _NUMBER + r"\s*(?:confident|confidence|sure|certain)\b", re.IGNORECASE),
    re.compile(_NUMBER + r"\s*(?:확신|정도\s*확신)", re.IGNORECASE),
]


def _stated_matches(text: str) -> list[re.Match]:
    return sorted((m for pattern in _STATED for m in pattern.finditer(text)), key=lambda m: m.start())


def stated_confidence(text: str | None) -> float | None:
    """The last confidence the text states, in [0, 1]: a percentage ("80%", "80 percent", or a
    number above 1 read as percent) or a fraction ("0.8"); None when there is none or it is out
    of range."""
    if not text:
        return None
    matches = _stated_matches(text)
    if not matches:
        return None
    number, percent = matches[-1].group(1), matches[-1].group(2)
    value = float(number)
    if percent or value > 1:
        value /= 100
    return value if 0 <= value <= 1 else None


def without_stated_confidence(text: str) -> str:
    """The answer with its confidence statements removed, so their numbers are never read as options."""
    for match in reversed(_stated_matches(text)):
        text = text[: match.start()] + text[match.end() :]
    return text


_ABSTAIN = re.compile(
    r"\b(?:I\s+(?:do\s+not|don['\u2019]?t)\s+know|I\s+(?:am\s+not|['\u2019]m\s+not)\s+(?:sure|certain)"
    r"|I\s+(?:cannot|can['\u2019]?t)\s+(?:answer|tell|determine)|(?:I\s+)?abstain|unsure|not\s+sure)\b"
    r"|모르겠|알\s*수\s*없|잘\s*모르|답(?:을|하기)?\s*(?:할\s*수\s*없|어렵)|확실하지\s*않|기권",
    re.IGNORECASE,
)


def is_abstention(text: str | None, chosen: str | None) -> bool:
    """An answer that declines: it says it does not know and names no option."""
    return chosen is None and bool(text) and _ABSTAIN.search(text or "") is not None
