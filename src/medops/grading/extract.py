"""Reading the chosen option out of an exam answer: one rule set for scoring and for RL rewards.

``extract_choice`` runs a cascade of rules, most explicit first (``\\boxed{C}``,
``<answer>C</answer>``, "The answer is (C)", "Answer: C", "정답: C" / "정답은 3번", ...,
down to a bare letter). The first rule that finds anything decides, and within it the last
candidate wins (a model that changes its mind is scored on its final answer). Numbers 1-5 and
circled ①-⑤ map to letters; a quoted option text counts when it names exactly one option.
Nothing found gives ``None``: scored wrong and counted as unparsed. Every result says which
rule fired, so a report can show why an answer was read the way it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"
_LETTERS = "ABCDEFGHIJ"

# An answer token: (C) / C / c) / 3 / ③ ; captured as one group.
_TOKEN = r"[\(\[]?\s*([A-Ja-j]|10|[1-9]|[①-⑩])\s*[\)\]]?"
_END = r"(?![A-Za-z0-9가-힣])"


@dataclass(frozen=True)
class Extraction:
    choice: str | None  # the letter, or None when nothing could be read
    rule: str | None


def _rule(name: str, pattern: str, flags: int = re.IGNORECASE) -> tuple[str, re.Pattern[str]]:
    return name, re.compile(pattern, flags)


_RULES = (
    _rule("boxed", r"\\boxed\s*\{\s*(?:\\text(?:bf)?\s*\{\s*)?" + _TOKEN + r"[^}]*\}"),
    _rule("answer_tag", r"<answer>\s*" + _TOKEN + _END),
    _rule(
        "answer_is",
        r"(?:final|correct|best)?\s*answer\s+(?:is|would be|should be)\s*:?\s*(?:option\s+)?" + _TOKEN + _END,
    ),
    _rule("answer_colon", r"answer\s*[:：]\s*(?:option\s+)?" + _TOKEN + _END),
    _rule("korean_answer", r"정답\s*(?:은|는|:|：)?\s*(?:보기\s*)?" + _TOKEN + r"\s*(?:번|입니다|이다|\.|$|\s)"),
    _rule("option_is_correct", r"(?:option|choice)\s+" + _TOKEN + r"\s+is\s+(?:the\s+)?correct"),
)
_PREFILTER = {
    "boxed": "boxed",
    "answer_tag": "<answer>",
    "answer_is": "answer",
    "answer_colon": "answer",
    "korean_answer": "정답",
    "option_is_correct": "correct",
}
_BARE = re.compile(r"^\s*(?:option\s+)?[\(\[]?([A-J]|[①-⑩])[\)\]]?\s*[.:)]?\s*$", re.IGNORECASE)
_LEADING = re.compile(r"^\s*[\(\[]?([A-J])[\)\].:]\s+\S")
_MARKUP = re.compile(r"\*\*|__|`")


def _to_letter(token: str, letters: str) -> str | None:
    token = token.strip()
    if token in CIRCLED:
        index = CIRCLED.index(token)
    elif token.isdigit():
        index = int(token) - 1
    else:
        index = _LETTERS.index(token.upper())
    return letters[index] if 0 <= index < len(letters) else None


def _lowercase_is_safe(match: re.Match[str], text: str) -> bool:
    """A lower-case letter counts only when it is clearly a choice: "(c)", "c)", "c." or line end."""
    token = match.group(1)
    if not token.islower():
        return True
    after = text[match.end(1) : match.end(1) + 1]
    before = text[match.start(1) - 1 : match.start(1)] if match.start(1) else ""
    return before == "(" or after in (")", ".", "", "<") or after == "\n"


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip(" .")


def extract_choice(text: str | None, letters: str = "ABCDE", options: dict[str, str] | None = None) -> Extraction:
    """The chosen letter among ``letters`` (and, if given, option texts), with the rule that fired."""
    if not text:
        return Extraction(None, None)
    clean = _MARKUP.sub("", text) if ("*" in text or "_" in text or "`" in text) else text
    lower = clean.lower()
    for name, pattern in _RULES:
        if _PREFILTER[name] not in lower:  # a substring test is ~50x cheaper than the regex
            continue
        found = None
        for match in pattern.finditer(clean):
            if _lowercase_is_safe(match, clean):
                letter = _to_letter(match.group(1), letters)
                if letter is not None:
                    found = letter
        if found is not None:
            return Extraction(found, name)
    if options:
        quoted = _quoted_option(clean, options)
        if quoted is not None:
            return Extraction(quoted, "option_text")
    last_line = clean.strip().splitlines()[-1] if clean.strip() else ""
    for candidate in (clean, last_line):
        match = _BARE.match(candidate)
        if match:
            letter = _to_letter(match.group(1), letters)
            if letter is not None:
                return Extraction(letter, "bare_letter")
    match = _LEADING.match(clean)
    if match:
        letter = _to_letter(match.group(1), letters)
        if letter is not None:
            return Extraction(letter, "leading_letter")
    return Extraction(None, None)


def _quoted_option(text: str, options: dict[str, str]) -> str | None:
    """The option whose full text the answer ends with or states as its answer, if exactly one."""
    tail = _normalise(text.strip().splitlines()[-1]) if text.strip() else ""
    tail = re.sub(r"^(?:the\s+)?(?:final\s+)?(?:answer|정답)\s*(?:is|은|는)?\s*[:：]?\s*", "", tail)
    candidates = {tail.strip(" .\"'"), tail.rsplit(":", 1)[-1].strip(" .\"'")}
    hits = [letter for letter, option in options.items() if option and _normalise(option) in candidates]
    return hits[0] if len(hits) == 1 else None
