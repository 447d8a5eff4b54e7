"""Reading the chosen option out of an exam answer: one rule for scoring and for RL rewards.

``extract_choice`` is the only reader: ``medops eval mcqa`` calls it with the item's letters and
option texts, and ``medops.rewards`` (TRL and verl) calls it with the same letters and texts as
the exported rows carry them, so a model is trained on exactly what it is measured on.

The cascade, most explicit first; the first tier that reads anything decides:

1. ``\\boxed{C}`` (also ``\\boxed{\\text{C}}``, ``\\boxed{\\mathrm{C}}``, ``\\boxed{Metformin}``);
2. ``<answer>C</answer>`` (padded or lower-case letters too);
3. answer statements: "The answer is C", "The correct option is C", "Answer: C", "Answer - C",
   "Answer (C)", "정답: 3번", "답: ②", "최종 답: C", "B가 정답", or the same with the option's
   text ("The answer is Metformin", PubMedQA's "Answer: yes");
4. weaker statements: "C is correct", "Option C is correct", "I would choose C", "3번을 선택";
5. the whole reply: an option's text, a bare letter ("C", "(C)", "②번"), a leading "C) ...".

Within a tier the last statement in the text wins (a model that changes its mind is scored on
its final answer). Numbers 1-10 and circled ①-⑩ map to letters, but not a number with a unit
or a decimal ("The answer is 2 mg"). A hedge ("A or B", "A and C", ``\\boxed{ABCD}``,
``\\boxed{A, B}``, "2번과 4번") is never credited: the result is unparsed with rule ``hedge``.
Nothing found gives ``Extraction(None, None)``; either way an unparsed answer scores wrong.
Every result names its rule (boxed, answer_tag, answer_is, answer_colon, korean_answer,
option_is_correct, choose, option_text, bare_letter, leading_letter; hedge when unparsed), so a
report can show why an answer was read the way it was. The table of realistic completions in
tests/scoring/test_extract.py pins the behaviour; benchmarks/extraction_quality.py scores it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"
HEDGE = "hedge"
_LETTERS = "ABCDEFGHIJ"
_I = re.IGNORECASE

# An answer token (C / c / 3 / ③), captured as group 1 when used with _TOKEN_AT.
_TOK = r"(?:[A-Ja-j]|10|[1-9]|[①-⑩])"
# Hangul may follow an answer only as a particle or copula ("B입니다", "3번이", "B가"), not as
# part of a word ("A형 간염", "2개").
_KO_OK = r"(?:번|입니|이다|이에|이며|이고|이니|이므|이|가|은|는|을|를|와|과|나|로|으로|예요|요|임|였|라|일|아니)"
_END = r"(?![A-Za-z0-9])(?!(?!" + _KO_OK + r")[가-힣])"
_TOKEN_AT = re.compile(r"[\(\[]?\s*(" + _TOK + r")\s*[\)\]]?" + _END)
_KO_PARTICLE = re.compile(_KO_OK)

# What makes a number a quantity, not an option index: a decimal, a ratio or range, a unit.
_QUANTITY = re.compile(
    r"\s*(?:[.,]\d|%|[:/]\s*\d|(?:-|\u2013|to\b)\s*\d|(?:mg|mcg|µg|μg|ug|g|kg|ng|pg|ml|l|dl|µl|μl|mmol|mol|meq|iu"
    r"|units?|mmhg|cm|mm|m|km|h|hrs?|hours?|mins?|minutes?|s|secs?|seconds?|d|days?|wks?|weeks?|months?"
    r"|yrs?|years?|times|x|fold|cells?|bpm|kcal|cal|mosm|breaths?|beats?|tablets?|tabs?|doses?|drops?"
    r"|puffs?|episodes?|cycles?|patients?|people|cases|children|percent|degrees?)(?![A-Za-z])"
    r"|°|개|세|살|일|주|개월|년|시간|분|초|회|배|명|정|알|밀리|그램|퍼센트)",
    _I,
)
_PRONOUN = re.compile(
    r"(?:['\u2019]|\s+(?:think|believe|would|will|am|guess|feel|do|don|can|cannot|have|must|need|agree|chose"
    r"|choose|pick|select|go|prefer|suspect|lean|was|also|hope)\b)",
    _I,
)
_CONNECTIVE = r"(?:,|/|&|\+|(?i:\bor\b|\band\b)|및|또는|혹은|아니면|이나|나|와|과)"
_SECOND = (  # the second option of a hedge; "I" only when not the pronoun
    r"(?:(?i:possibly|maybe|perhaps|probably|potentially|아마)\s+)?(?:(?i:option|choice)\s+)?"
    r"[\(\[]?\s*(?:[A-HJ]|I(?![\s'\u2019]+[a-z])|10|[1-9]|[①-⑩])(?:\s*번)?[\)\]]?"
    r"(?![A-Za-z0-9])"
)
_HEDGE_AFTER = re.compile(r"\s*(?:번)?\s*" + _CONNECTIVE + r"\s*" + _SECOND)
_HEDGE_BEFORE = re.compile(
    r"(?:[A-J]|[1-9]|[①-⑩])[\)\]]?\s*(?:번)?\s*" + _CONNECTIVE + r"\s*(?:(?i:option|choice)\s+)?[\(\[]?\s*$"
)
# "B가 아니라 C": the answer is the option after the negation.
_KO_NOT_BUT = re.compile(r"\s*(?:번)?\s*(?:이|가)?\s*아니(?:라|고)\s*,?\s*")
# Words before a capital letter that make it a name, not an option ("vitamin B is correct").
_NAME_BEFORE = re.compile(
    r"(?:vitamin|hepatitis|type|group|class|stage|grade|factor|lead|phase|protein|complex|zone|schedule"
    r"|cluster|level|part|plan|section|step|category|blood|strep|influenza|hemophilia|비타민|[A-Za-z]-)\s*$",
    _I,
)

_VERB = r"(?:is|would\s+be|should\s+be|will\s+be|must\s+be)\b\s*[:：]?\s*"


@dataclass(frozen=True)
class _Statement:
    """One way of stating an answer. Patterns run on the lower-cased text and start with ``key``,
    a literal: a substring test skips most texts, and a literal first lets the regex engine jump."""

    rule: str
    key: str
    pattern: re.Pattern[str]
    before: re.Pattern[str] | None = None  # must end right where the pattern starts (lower-cased text)
    token_before: re.Pattern[str] | None = None  # reverse forms: the answer precedes the keyword
    unless_after: re.Pattern[str] | None = None  # a negation right after the keyword ("정답이 아닙니다")


def _st(rule: str, key: str, pattern: str, **kwargs: re.Pattern[str]) -> _Statement:
    return _Statement(rule, key, re.compile(re.escape(key) + pattern), **kwargs)


_NOUN_VERB = r"\s*(?:[:：]|\s(?:is|would\s+be)\b)\s*[:：]?\s*"  # "my choice is C", "my final choice: C"
_ADJECTIVE_BEFORE = re.compile(r"(?:correct|best|right|final|appropriate|likely)\s+$")
_I_BEFORE = re.compile(
    r"\bi(?:\s+would|\s+will|\s+am\s+going\s+to|['\u2019]d|['\u2019]ll|['\u2019]m\s+going\s+to)?\s+$"
)
_MY_BEFORE = re.compile(r"\bmy\s+(?:final\s+)?$")
_EN_TOKEN_BEFORE = re.compile(
    r"(?P<opt>\b(?:option|choice)\s+)?[\(\[]?\s*(?<![A-Za-z0-9])(?P<tok>" + _TOK + r")\s*[\)\]]?\s+"
    r"(?:is|would\s+be|seems\s+to\s+be|appears\s+to\s+be)\s+(?:the\s+)?(?:most\s+)?$",
    _I,
)
_NOT_BUT = re.compile(  # "The answer is not A; it is C"
    r"not\s+(?:option\s+)?[\(\[]?\s*" + _TOK + r"\s*[\)\]]?\s*[;,.]?\s*(?:but\s+(?:rather\s+)?|it\s+is\s+"
    r"|it['\u2019]s\s+|rather\s+|instead\s+)(?:option\s+)?",
    _I,
)
_KO_TOKEN = r"[\(\[]?\s*(?<![A-Za-z0-9])(?P<tok>" + _TOK + r")\s*[\)\]]?\s*(?:번)?\s*"
_KO_IS_BEFORE = re.compile(_KO_TOKEN + r"(?:이|가|은|는)\s*(?:바로\s*|가장\s*)?정?$")
_KO_OBJECT_BEFORE = re.compile(_KO_TOKEN + r"(?:을|를)\s*$")
_KO_NOT = re.compile(r"[가-힣]{0,4}\s?(?:않|아니|아닌|아님|아닙)")
_NOT_A_QUESTION = re.compile(r"\s*\?")
_ANSWER_WORDS = r"(?:\s+(?:choice|option))?"

# Tier 3: answer statements. The answer follows the match: a token, else an option's text.
_STRONG = (
    _st(
        "answer_is",
        "answer",
        _ANSWER_WORDS + r"(?:\s+(?:to|for)\s+(?:this|the)\s+(?:question|case|item|problem|vignette))?"
        r"\s+(?:here\s+)?" + _VERB,
    ),
    _st("answer_is", "option", r"\s+(?:here\s+)?" + _VERB, before=_ADJECTIVE_BEFORE),
    _st("answer_is", "choice", r"\s+(?:here\s+)?" + _VERB, before=_ADJECTIVE_BEFORE),
    _st(
        "answer_colon",
        "answer",
        _ANSWER_WORDS + r"\s*(?:[:：=]|[-\u2013\u2014]+>?|→|=>|은|는|(?=[\(\[]\s*" + _TOK + r"\s*[\)\]]))\s*",
    ),
    _st("answer_colon", "option", r"\s*[:：]\s*", before=_ADJECTIVE_BEFORE),  # "Correct option: B"
    _st("answer_colon", "choice", r"\s*[:：]\s*", before=_ADJECTIVE_BEFORE),
    _st("korean_answer", "답", r"(?:안|변)?\]?\s*(?:은|는|이|:|：|=|[-\u2013\u2014])?\s*"),
    _st("korean_answer", "답", r"", token_before=_KO_IS_BEFORE, unless_after=_KO_NOT),  # "B가 정답"
    # "가장 적절한 것은 ③번", "옳은 약물은 메트포르민"
    *(
        _st("korean_answer", word, r"\s*(?:[가-힣]{1,6}\s*)?(?:은|는)\s*")
        for word in ("적절한", "옳은", "알맞은", "맞는")
    ),
)
# Tier 4: weaker statements.
_WEAK = (
    *(_st("choose", verb, r"\s*[:：]?\s*", before=_I_BEFORE) for verb in ("choose", "pick", "select", "go with")),
    _st("choose", "opt for", r"\s*[:：]?\s*", before=_I_BEFORE),
    _st("choose", "going with", r"\s*[:：]?\s*"),
    _st("choose", "선택", r"(?:은|는|:|：)\s*"),  # "제 선택은 C"
    *(_st("choose", noun, _NOUN_VERB, before=_MY_BEFORE) for noun in ("choice", "pick", "selection")),
    *(
        _st("option_is_correct", word, r"(?![a-z])", token_before=_EN_TOKEN_BEFORE, unless_after=_NOT_A_QUESTION)
        for word in ("correct", "right", "best", "appropriate")
    ),
    *(
        _st("option_is_correct", word, r"", token_before=_KO_IS_BEFORE, unless_after=_KO_NOT)
        for word in ("옳", "맞", "적절")
    ),
    *(
        _st("choose", word, r"", token_before=_KO_OBJECT_BEFORE, unless_after=_KO_NOT)
        for word in ("선택", "고르", "골라", "고릅", "택하", "택합")
    ),
)


def _by_key(statements: tuple[_Statement, ...]) -> tuple[tuple[str, bool, tuple[_Statement, ...]], ...]:
    """Statements grouped by their literal, so each literal is looked for once per text."""
    groups: dict[str, list[_Statement]] = {}
    for st in statements:
        groups.setdefault(st.key, []).append(st)
    return tuple((key, key.isascii(), tuple(group)) for key, group in groups.items())


_TIERS = (_by_key(_STRONG), _by_key(_WEAK))
_FILLER = re.compile(
    r"(?:(?:therefore|thus|hence|clearly|definitely|probably|likely|most\s+likely|(?P<hedge>either|both)|option"
    r"|choice|letter|number|보기|선택지)\b\s*[:.]?\s*)*",
    _I,
)

_BOXED = re.compile(r"\\boxed\s*\{")
_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", _I | re.DOTALL)
_LATEX_WRAP = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}")
_CONTENT_PREFIX = re.compile(
    r"^(?:(?:the\s+)?(?:final\s+|correct\s+|best\s+)?(?:answer|option|choice)\b\s*(?:is\b)?\s*[:：]?\s*"
    r"|(?:최종\s*)?(?:정답|답)\s*(?:은|는)?\s*[:：]?\s*)",
    _I,
)
_WHOLE_TOKEN = re.compile(r"[\(\[]?\s*(" + _TOK + r")\s*[\)\]]?\s*(?:번)?\s*\.?")
_BETWEEN_BOXES = re.compile(r"\s*(?:,|/|or|and|또는|혹은|이나|와|과)\s*", _I)
# Several options and nothing else ("A, B", "A or C", "2번과 4번"): split on the joins, then every
# part must be an option (regexes that try every split of the spaces take exponential time).
_JOINS = re.compile(r" ?(?:,|/|&|\+|(?i:\bor\b|\band\b)|및|또는|혹은|아니면|이나|나|와|과) ?")
_PART = re.compile(r"(?:(?i:option|choice) )?[\(\[]? ?(?:[A-J]|10|[1-9]|[①-⑩]) ?[\)\]]?(?: ?번)?")
_HEDGE_FRAME = re.compile(
    r"(?:(?i:both|either) )?(?:(?i:options?|choices?) )?(?P<body>.+?) ?(?:(?i:are|is) (?:(?i:both|all) )?"
    r"(?i:correct|possible|right)|모두 ?(?:정답|맞)[가-힣]*)? ?[.!]?"
)
_BARE = re.compile(
    r"\s*(?:(?:option|choice)\s+)?[\(\[]?\s*([A-J]|[①-⑩]|10(?=\s*번)|[1-9](?=\s*번))\s*[\)\]]?\s*(?:번)?\s*"
    r"(?:입니다|이다)?\s*[.:)]?\s*",
    _I,
)
_LEADING = re.compile(r"\s*[\(\[]?([A-J])[\)\].:]\s+\S")
_LEADING_CIRCLED = re.compile(r"([①-⑩])\s*[.:)]?\s*")
_MARKUP = re.compile(r"\*+|__+|`+|\$")
_OPTION_JOIN = re.compile(r"\s*(?:,|/|&|or\b|and\b|및|또는|혹은|이나|나|와|과)\s*")


_Options = tuple[tuple[str, str], ...]  # (letter, normalised text)


@dataclass(frozen=True)
class Extraction:
    choice: str | None  # the letter, or None when unparsed
    rule: str | None  # the rule that decided; "hedge" for an unparsed hedge, None when nothing was found


_INDEX = {
    **{c: i for i, c in enumerate(_LETTERS)},
    **{c: i for i, c in enumerate(_LETTERS.lower())},
    **{c: i for i, c in enumerate(CIRCLED)},
    **{str(i + 1): i for i in range(10)},
}


def _to_letter(token: str, letters: str) -> str | None:
    index = _INDEX.get(token.strip())
    return letters[index] if index is not None and index < len(letters) else None


_LONGEST = 300  # characters an answer may take (an option's text, a \boxed{}): bounds the work per statement
_HEDGE_START = frozenset(",/&+oOaA및또혹아이나와과")
_FILLER_START = frozenset("tThHcCdDpPlLmMeEbBoOnN보선")


def _compact(text: str) -> str:
    return " ".join(text.split())


def _several_options(text: str, spaces_join: bool) -> bool:
    """Whether ``text`` (short, spaces compacted) names two or more options and nothing else."""
    if len(text) > 60:
        return False
    if 2 <= len(text) <= 10 and text.isalpha() and text.isascii() and all("A" <= c <= "J" for c in text):
        return True  # "ABCD"
    parts = _JOINS.split(text)
    if spaces_join:
        parts = [word for part in parts for word in part.split(" ")]
    return len(parts) >= 2 and all(_PART.fullmatch(part) for part in parts)


def _judge(text: str, start: int, end: int, letters: str, after: int | None) -> str | None:
    """The token text[start:end] as a letter, ``HEDGE``, or None when it is not an answer here."""
    token = text[start:end]
    if token.islower():  # "a" / "c" count only when clearly a choice: "(c)", "c)", "c.", line end
        following = text[end : end + 1]
        if not (
            text[start - 1 : start] == "("
            or following in ("", ")", ".", ",", ";", ":", "<", "\n", "}")
            or "가" <= following <= "힣"
        ):
            return None
    elif (token == "I" and _PRONOUN.match(text, end)) or (
        token.isdigit() and text[end : end + 1] not in ("번", "", "\n", ")") and _QUANTITY.match(text, end)
    ):
        return None  # "I think ...", "2 mg"
    if after is not None:
        # (the character tests only spare the regexes the common case of nothing after the answer)
        if text[after : after + 8].lstrip(" \t\n번")[:1] in _HEDGE_START and _HEDGE_AFTER.match(text, after):
            return HEDGE
        but = _KO_NOT_BUT.match(text, end) if "아니" in text[end : end + 8] else None
        if but is not None:  # "정답은 B가 아니라 C": read what follows
            return _token_at(text, but.end(), letters)
    return _to_letter(token, letters)


def _token_at(text: str, pos: int, letters: str) -> str | None:
    match = _TOKEN_AT.match(text, pos)
    if match is None:
        return None
    return _judge(text, match.start(1), match.end(1), letters, match.end())


def _normalise(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .")


def _option_texts(options: Mapping[str, str | None], letters: str) -> _Options:
    """(letter, normalised text) of the options among ``letters`` that have a text (Arrow may give
    None for a key another row has); cached, since a training batch asks the same question many times."""
    try:
        return _normalised_options(letters, tuple(options.items()))
    except TypeError:  # unhashable values: not worth caching
        return tuple((k, _normalise(str(v))) for k, v in options.items() if k in letters and v)


@functools.lru_cache(maxsize=4096)
def _normalised_options(letters: str, items: tuple[tuple[str, str | None], ...]) -> _Options:
    return tuple((letter, _normalise(str(text))) for letter, text in items if letter in letters and text)


def _option_at(span: str, options: _Options, strict: bool = False) -> str | None:
    """The option whose text ``span`` starts with (the longest, if several), ``HEDGE`` for "X or Y".

    ``strict``: the text must end the span or be followed by punctuation (a reply that opens with it)."""
    head = span[:_LONGEST].lstrip(" \t\"'\u201c\u2018(")[:1].lower()
    if not head or not any(text.startswith(head) for _, text in options):
        return None  # no option starts like this: spare the normalising
    span = _normalise(span[:_LONGEST].split("\n", 1)[0]).lstrip(" \"'\u201c\u2018(")
    best: list[tuple[str, str]] = []
    for letter, text in options:
        if text and span.startswith(text) and _boundary(span, len(text), strict):
            if not best or len(text) > len(best[0][1]):
                best = [(letter, text)]
            elif len(text) == len(best[0][1]):
                best.append((letter, text))
    if len(best) != 1:
        return None
    rest = span[len(best[0][1]) :]
    but = _KO_NOT_BUT.match(rest)
    if but is not None:  # "A형 간염이 아니라 B형 간염"
        return _option_at(rest[but.end() :], options)
    join = _OPTION_JOIN.match(rest)
    if join and any(
        letter != best[0][0] and rest[join.end() :].startswith(text) and _boundary(rest[join.end() :], len(text))
        for letter, text in options
    ):
        return HEDGE
    return best[0][0]


def _boundary(span: str, i: int, strict: bool = False) -> bool:
    if i >= len(span):
        return True
    if strict:
        rest = span[i:].lstrip()
        return not rest or rest[0] in ",.;:!)-\u2013\u2014"
    return not span[i].isalnum() or bool(_KO_PARTICLE.match(span, i))


def _read_content(content: str, letters: str, options: _Options) -> str | None:
    """What a ``\\boxed{}`` or ``<answer>`` holds: a letter, ``HEDGE``, or None."""
    if len(content) == 1 and (content.upper() in _LETTERS or content in CIRCLED or content.isdigit()):
        return _to_letter(content, letters)  # the common \boxed{C}
    for _ in range(3):
        unwrapped = _LATEX_WRAP.sub(r"\1", content)
        if unwrapped == content:
            break
        content = unwrapped
    content = _CONTENT_PREFIX.sub("", _compact(content.replace("\\,", " ").replace("~", " ")), count=1).strip()
    if not content:
        return None
    whole = _WHOLE_TOKEN.fullmatch(content) if len(content) <= 40 else None
    if whole:
        return _to_letter(whole.group(1), letters)
    normalised = _normalise(content)
    exact = [letter for letter, text in options if text == normalised]
    if len(exact) == 1:
        return exact[0]
    if _several_options(content, spaces_join=True):
        return HEDGE
    found = _token_at(content, 0, letters)
    if found is not None:
        return found
    return _option_at(content, options) if options else None


def _boxed(text: str) -> Iterator[tuple[int, int, str]]:
    for match in _BOXED.finditer(text):
        start = match.end()
        if text[start + 1 : start + 2] == "}":  # the common \boxed{C}
            yield match.start(), start + 2, text[start]
            continue
        depth, i, stop = 1, start, min(len(text), start + _LONGEST)
        while i < stop and depth:
            depth += (text[i] == "{") - (text[i] == "}")
            i += 1
        yield match.start(), i, text[start : i - 1 if depth == 0 else i]


def _read_boxes(text: str, letters: str, options: _Options) -> str | None:
    last, last_end = None, -1
    for start, end, content in _boxed(text):
        read = _read_content(content, letters, options)
        if read is None:
            continue
        if last not in (None, read) and start - last_end < 16 and _BETWEEN_BOXES.fullmatch(text, last_end, start):
            read = HEDGE  # "\boxed{A} or \boxed{B}"
        last, last_end = read, end
    return last


def _statements(
    text: str, lower: str, rules: tuple[tuple[str, bool, tuple[_Statement, ...]], ...], letters: str, options: _Options
) -> tuple[str | None, str | None]:
    """The last statement of these rules in the text: (letter or HEDGE, rule), or (None, None)."""
    best: tuple[int, str, str] | None = None
    ascii_only = lower.isascii()
    for key, key_is_ascii, group in rules:
        if (ascii_only and not key_is_ascii) or key not in lower:
            continue
        for st, match in ((one, found) for one in group for found in one.pattern.finditer(lower)):
            at = match.start()
            if st.token_before is None:  # the answer follows
                if at and st.key.isascii() and lower[at - 1].isalpha():
                    continue
                if st.before is not None and not st.before.search(lower, max(0, at - 40), at):
                    continue
                if best is not None and at < best[0]:
                    continue
                rule, read = st.rule, None
                answer_at, hedged = match.end(), False
                if text[answer_at : answer_at + 1] in _FILLER_START:
                    filler = _FILLER.match(text, answer_at)
                    answer_at, hedged = filler.end(), bool(filler.group("hedge"))
                read = _token_at(text, answer_at, letters)
                if read is None and text[answer_at : answer_at + 3].lower() == "not":
                    not_but = _NOT_BUT.match(text, answer_at)
                    read = _token_at(text, not_but.end(), letters) if not_but else None
                if read is not None and hedged:
                    read = HEDGE
                if read is None and options:
                    rule = "option_text"
                    read = _option_at(text[answer_at : answer_at + _LONGEST], options)
                    if read is None and answer_at != match.end():  # "the answer is clearly metformin"
                        read = _option_at(text[match.end() : match.end() + _LONGEST], options)
            else:  # "B is correct", "B가 정답": the answer precedes
                if st.unless_after is not None and st.unless_after.match(lower, match.end()):
                    continue
                at, rule, read = _answer_before(text, lower, at, st, letters, options)
                if best is not None and at < best[0]:
                    continue
            if read is not None:
                best = (at, read, rule)
    return (best[1], best[2]) if best else (None, None)


def _joined_before(lower: str, at: int, objective: bool) -> int | None:
    """Where the words that join an answer to ``at`` start ("B| is the correct", "B|가 정답",
    "B|를 선택"), or None: a cheap test that spares most candidates the token regex."""
    head = lower[max(0, at - 24) : at].rstrip()
    if head[-1:] >= "가":  # Korean
        for word in ("정", "바로", "가장"):
            head = head.removesuffix(word).rstrip()
        joined = head[-1:] in ("을", "를") if objective else head[-1:] in ("이", "가", "은", "는")
        return max(0, at - 24) + len(head) - 1 if joined else None
    for word in ("most", "the"):
        if head.endswith(word):
            head = head[: -len(word)].rstrip()
    if not head.endswith((" is", " be")):
        return None
    head = head[:-3]
    while head.endswith((" would", " should", " will", " must", " to", " seems", " appears")):
        head = head.rsplit(" ", 1)[0]
    return max(0, at - 24) + len(head)


def _answer_before(
    text: str, lower: str, at: int, st: _Statement, letters: str, options: _Options
) -> tuple[int, str, str | None]:
    """(where the answer starts, rule, letter / HEDGE / None) for a statement whose answer precedes ``at``."""
    joint = _joined_before(lower, at, st.token_before is _KO_OBJECT_BEFORE)
    if joint is None:
        return at, st.rule, None
    found = st.token_before.search(text, max(0, at - 40), at)  # type: ignore[union-attr]
    if found is not None:
        start, end = found.span("tok")
        token = text[start]
        plain = "opt" in found.groupdict() and not found.group("opt")
        if not plain or (
            (token.isupper() or token in CIRCLED) and not _NAME_BEFORE.search(text, max(0, start - 16), start)
        ):
            read = _judge(text, start, end, letters, None)
            if read is not None and _HEDGE_BEFORE.search(text, max(0, found.start() - 24), found.start()):
                read = HEDGE
            return found.start(), st.rule, read
        # else "2 is correct", "vitamin B is correct": not an option; maybe an option's text
    if options:  # "Glipizide is the most appropriate", "메트포르민이 정답"
        head = _normalise(lower[max(0, joint - 120) : joint])
        hits = sorted(
            (
                (letter, option)
                for letter, option in options
                if head.endswith(option) and not head[: len(head) - len(option)][-1:].isalnum()
            ),
            key=lambda hit: -len(hit[1]),
        )
        if hits and (len(hits) == 1 or len(hits[0][1]) > len(hits[1][1])):
            return joint - len(hits[0][1]), "option_text", hits[0][0]
    return at, st.rule, None


def extract_choice(text: str | None, letters: str = "ABCDE", options: Mapping[str, str] | None = None) -> Extraction:
    """The chosen letter among ``letters`` (and, if given, option texts), with the rule that fired."""
    if not text:
        return _NOTHING
    clean = _MARKUP.sub("", text) if ("*" in text or "_" in text or "`" in text or "$" in text) else text
    lower = clean.lower()
    if len(lower) != len(clean):  # a character whose lower case is longer ("İ"): keep positions aligned
        lower = "".join(c.lower() if len(c.lower()) == 1 else c for c in clean)
    texts = _option_texts(options, letters) if options else ()
    if "boxed" in lower:
        read = _read_boxes(clean, letters, texts)
        if read is not None:
            return _result(read, "boxed")
    if "<answer>" in lower:
        read = None
        for match in _ANSWER_TAG.finditer(clean):
            read = _read_content(match.group(1), letters, texts) or read
        if read is not None:
            return _result(read, "answer_tag")
    for tier in _TIERS:
        read, rule = _statements(clean, lower, tier, letters, texts)
        if read is not None:
            return _result(read, rule)
    return _whole_reply(clean, letters, texts)


_NOTHING = Extraction(None, None)
_RESULTS: dict[tuple[str, str | None], Extraction] = {}


def _result(read: str, rule: str | None) -> Extraction:
    """Results are shared (they are immutable): building one costs more than reading most answers."""
    key = (read, rule)
    if key not in _RESULTS:
        _RESULTS[key] = Extraction(None, HEDGE) if read == HEDGE else Extraction(read, rule)
    return _RESULTS[key]


def _whole_reply(clean: str, letters: str, options: _Options) -> Extraction:
    stripped = clean.strip()
    if not stripped:
        return _NOTHING
    last_line = stripped.splitlines()[-1].strip()
    if options:
        longest = 2 * max((len(text) for _, text in options), default=0) + 8
        for candidate in (stripped, last_line, last_line.rsplit(":", 1)[-1]):
            if len(candidate) > longest:  # far longer than any option's text
                continue
            normalised = _normalise(candidate).strip("\"'\u201c\u201d\u2018\u2019")
            hits = [letter for letter, text in options if text == normalised]
            if len(hits) == 1:
                return _result(hits[0], "option_text")
    for candidate in (stripped, last_line):
        if len(candidate) > 160 or len(candidate := _compact(candidate)) > 80:
            continue  # a bare answer or a hedge is short
        frame = _HEDGE_FRAME.fullmatch(candidate)
        if frame and _several_options(frame.group("body"), spaces_join=False):
            return _result(HEDGE, HEDGE)
        match = _BARE.fullmatch(candidate)
        if match:
            letter = _to_letter(match.group(1), letters)
            if letter is not None:
                return _result(letter, "bare_letter")
    match = _LEADING.match(clean)
    if match:
        letter = _to_letter(match.group(1), letters)
        if letter is not None:
            return _result(letter, "leading_letter")
    match = _LEADING_CIRCLED.match(stripped)
    if match and options:  # "① 메트포르민": a circled number counts when its option's text follows
        letter = _to_letter(match.group(1), letters)
        if letter is not None and _option_at(stripped[match.end() :], options) == letter:
            return _result(letter, "leading_letter")
    if options:
        read = _option_at(stripped, options, strict=True)
        if read is not None:
            return _result(read, "option_text")
    return _NOTHING
