# ruff: noqa: E501, RUF001  (regular-expression tables read best one pattern a line; the en dash is matched on purpose)
"""medops's PHI recognizers: compiled regular expressions, validators and context rules.

Pure Python (``re`` only), so this module imports without Presidio; ``engine.py`` wraps each
:class:`Recognizer` as a Presidio ``EntityRecognizer`` and Presidio runs them. Every rule is
anchored either on a distinctive format (a valid date inside a resident registration number, a
Luhn check digit, an ``@``) or on a context word (``MRN:``, ``환자``, ``Dr.``), which keeps
clinical text (doses, lab values, vital signs, codes, eponyms) out of the results.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources

Candidate = tuple[str, int, int, float]  # (entity type, start, end, score)

ENTITY_TYPES: dict[str, str] = {
    "KR_RRN": "Korean resident registration number (주민등록번호), with or without the hyphen",
    "KR_FRN": "Korean foreigner registration number (외국인등록번호)",
    "KR_DRIVER_LICENSE": "Korean driver licence number (운전면허번호)",
    "KR_PASSPORT": "Korean passport number (여권번호), old and new formats",
    "PASSPORT": "another passport number, after a 'passport' context word",
    "US_SSN": "US social security number",
    "HEALTH_INSURANCE_ID": "health-insurance number (건강보험증번호, member / policy / Medicare ID)",
    "MRN": "hospital medical record number / patient ID (site-configurable patterns)",
    "PHONE_NUMBER": "phone and fax numbers: Korean mobile and landline, +82, US, UK",
    "EMAIL_ADDRESS": "e-mail address",
    "URL": "web address",
    "IP_ADDRESS": "IPv4 / IPv6 address",
    "CREDIT_CARD": "payment card number (Luhn check)",
    "BANK_ACCOUNT": "bank account number (after 계좌 / account / a bank's name) and IBAN",
    "DATE_OF_BIRTH": "date or year of birth (생년월일, DOB, 1938년생, born ...)",
    "DATE": "other dates tied to a person: admission, discharge, visit, procedure (day and month)",
    "AGE_OVER_89": "an age of 90 or more (HIPAA Safe Harbor)",
    "ADDRESS": "street address: Korean 도로명 / 지번 and English, with unit and postcode",
    "PERSON": "person name: Korean (surname + given name next to 환자, 님, 씨, 보호자, 성명:) and English",
}

STRUCTURED = frozenset(ENTITY_TYPES) - {"PERSON", "DATE_OF_BIRTH", "DATE", "AGE_OVER_89", "ADDRESS"}

# What ``(?i)`` matches besides the two ASCII cases of these letters (capital I with a dot and dotless i for i, the Kelvin sign, long s).
_FOLD_EXTRA = {"i": "\u0130\u0131", "k": "\u212a", "s": "\u017f"}


def _ci_words(*words: str, group: bool = True) -> str:
    """``(?i:w1|w2|...)``, matching exactly the same, but with the words grouped by their first letter,
    one group per way of writing it (``p(?i:atient|t\\.?)|P(?i:atient|t\\.?)|n(?i:ame)|N(?i:ame)``), their
    order kept within a group. Words that start with different characters cannot match at one
    place, so the grouping changes no match; ``re`` then skips a group on its first character
    instead of entering every case-insensitive word in turn (about 3x faster on a long list), and
    a pattern that starts with the words is scanned for their first characters only."""
    groups: dict[str, list[str]] = {}
    for word in words:
        if not word[0].isalnum():
            raise ValueError(f"{word!r}: a word must start with a letter or a digit")
        groups.setdefault(word[0].lower(), []).append(word[1:])
    parts = []
    for first, rests in groups.items():
        for char in dict.fromkeys(first + first.upper() + _FOLD_EXTRA.get(first, "")):
            parts.append(f"{re.escape(char)}(?i:{'|'.join(rests)})")
    return f"(?:{'|'.join(parts)})" if group else "|".join(parts)


# A record number: a code of letters, digits and hyphens ending in a digit, or digit groups with single
# spaces between them ("590 887 0016"); after a record label, either is the record's number.
_RECORD_CODE = r"[A-Z]{0,3}-?\d[\dA-Z-]{3,14}\d|\d{3,4}(?: \d{3,4}){1,3}"
DEFAULT_MRN_PATTERNS: tuple[str, ...] = (
    # (?i:\bMRN|\bmedical record (?:number|no\.?|#)|...), the words grouped by their first letter
    r"(?=[MmPpHhCcUuRr])\b"
    + _ci_words(
        "MRN",
        r"medical record (?:number|no\.?|#)",
        r"patient (?:ID|no\.?|number|#)",
        r"pt\.? ?ID",
        r"hospital (?:no\.?|number|ID)",
        r"chart (?:no\.?|number|#)",
        r"unit (?:no\.?|number)",
        r"case (?:no\.?|number)",
        r"registration (?:no\.?|number)",
    )
    + rf"\s*(?:is|was)?\s*[:#.]?\s*(?P<value>{_RECORD_CODE})\b",
    r"(?:등록번호(?<!주민등록번호)(?<!외국인등록번호)|환자번호|병록번호|차트번호|의무기록번호|진료번호|환자 ?ID|병원번호|수진자번호)\s*(?:는|은)?\s*[:：#.]?\s*"
    rf"(?P<value>{_RECORD_CODE})(?!\d)",
)


_last_lowered: tuple[str, str] = ("", "")


def _lowered(text: str) -> str:
    """``text.lower()``, kept for the text the rules are scanning (each gated rule asks for it); one
    tuple, read and replaced whole, so a thread never gets another thread's text."""
    global _last_lowered
    kept = _last_lowered
    if kept[0] is text:
        return kept[1]
    lowered = text.lower()
    _last_lowered = (text, lowered)
    return lowered


@dataclass(frozen=True)
class Rule:
    """One regular expression: the span is group ``value`` when the pattern has it, else the match."""

    entity: str
    regex: re.Pattern[str]
    score: float
    validate: Callable[[re.Match[str], str], float | None] | None = None  # -> score, or None to drop
    gate: re.Pattern[str] | None = None  # something every match holds: a text without it is not scanned
    words: tuple[str, ...] = ()  # or: every match holds one of these (lower case) words
    # A pattern that matches where every match of ``regex`` starts (``regex`` less its lookarounds, or
    # weaker): the rule is then found in the one pass of ``OnePass`` instead of a scan of its own.
    lead: str | None = None

    def find(self, text: str) -> Iterator[Candidate]:
        if self.gate is not None and self.gate.search(text) is None:
            return
        if self.words and not any(w in _lowered(text) for w in self.words):
            return
        yield from self.candidates(self.regex.finditer(text), text)

    def candidates(self, matches: Iterable[re.Match[str]], text: str) -> Iterator[Candidate]:
        """The findings of ``regex``'s matches in ``text`` (as ``finditer`` finds them)."""
        has_value = "value" in self.regex.groupindex
        for m in matches:
            start, end = m.span("value") if has_value else m.span()
            if start < 0 or start == end:
                continue
            score = self.score if self.validate is None else self.validate(m, text)
            if score is not None:
                yield (self.entity, start, end, score)


@dataclass
class Recognizer:
    """A named group of rules for one or more entity types (one Presidio recognizer)."""

    name: str
    entities: list[str]
    rules: list[Rule] = field(default_factory=list)
    finder: Callable[[str], Iterator[Candidate]] | None = None

    def find(self, text: str) -> Iterator[Candidate]:
        for rule in self.rules:
            yield from rule.find(text)
        if self.finder is not None:
            yield from self.finder(text)


def _c(pattern: str, flags: int = 0, first: str | None = None) -> re.Pattern[str]:
    """Compile once. ``first``: a character class holding every character a match can start with; as a
    leading lookahead it lets the scan skip other positions cheaply (3-4x faster on long alternations)."""
    return re.compile(f"(?={first})(?:{pattern})" if first else pattern, flags)


def _window(text: str, start: int, width: int = 30) -> str:
    return text[max(0, start - width) : start].lower()


# -- resident / foreigner registration numbers ------------------------------------------------

_RRN = _c(
    r"(?<![\d-])(?P<value>\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?:[ \t]{0,3}[-‐‑‒–—―−./_][ \t]{0,3}|[ \t]{1,3})?[0-9]\d{6})(?![\d-])",
    first=r"\d",
)
_RRN_LEAD = r"\d\d[01]\d[0-3]\d"
_RRN_CONTEXT = ("주민", "등록번호", "rrn", "resident registration", "외국인", "registration")


def _valid_date(year: int, month: int, day: int) -> bool:
    try:
        _dt.date(year, month, day)
    except ValueError:
        return False
    return True


def _rrn(m: re.Match[str], text: str) -> float | None:
    raw = m.group("value")
    digits = re.sub(r"\D", "", raw)
    if len(digits) != 13:
        return None
    yy, mm, dd, gender = int(digits[:2]), int(digits[2:4]), int(digits[4:6]), int(digits[6])
    century = {1: 1900, 2: 1900, 5: 1900, 6: 1900, 3: 2000, 4: 2000, 7: 2000, 8: 2000, 9: 1800, 0: 1800}[gender]
    if not _valid_date(century + yy, mm, dd):
        return None
    weights = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
    total = sum(int(d) * w for d, w in zip(digits[:12], weights, strict=True))
    check_rrn, check_frn = (11 - total % 11) % 10, (13 - total % 11) % 10
    foreign = gender in (5, 6, 7, 8)
    checked = int(digits[12]) == (check_frn if foreign else check_rrn)
    context = any(word in _window(text, m.start(), 25) for word in _RRN_CONTEXT)
    separated = raw != digits  # 850101-1234568, 850101.1234568, 850101 1234568
    if not (checked or context or separated):
        return None  # 13 bare digits that happen to start with a date: too weak on its own
    return 0.95 if checked or context else 0.8


def _registration_numbers(text: str) -> Iterator[Candidate]:
    yield from _registration_candidates(_RRN.finditer(text), text)


def _registration_candidates(matches: Iterable[re.Match[str]], text: str) -> Iterator[Candidate]:
    for m in matches:
        score = _rrn(m, text)
        if score is not None:
            gender = re.sub(r"\D", "", m.group("value"))[6]
            yield ("KR_FRN" if gender in "5678" else "KR_RRN", m.start("value"), m.end("value"), score)


# -- other national identifiers -----------------------------------------------------------------

_REGIONS = "서울|부산|경기|강원|충북|충남|전북|전남|경북|경남|제주|대구|인천|광주|대전|울산|세종"
_DRIVER = [
    Rule(
        "KR_DRIVER_LICENSE",
        _c(rf"(?:{_REGIONS})\s?\d{{2}}-\d{{6}}-\d{{2}}(?!\d)"),
        0.9,
    ),
    Rule(
        "KR_DRIVER_LICENSE",
        _c(r"(?<![\d-])(?:1[1-9]|2[0-8])-\d{2}-\d{6}-\d{2}(?![\d-])", first="[12]"),
        0.85,
        lead=r"[12]\d-\d\d-",
    ),
    Rule(
        "KR_DRIVER_LICENSE",
        _c(
            r"(?:운전\s?면허(?:증)?(?:\s?번호)?|"
            + _ci_words(r"driver'?s? licen[cs]e(?: (?:no\.?|number|#))?", group=False)
            + r")\s*[:#]?\s*(?P<value>[A-Z0-9][A-Z0-9-]{7,15}\d)",
            first="[운dD]",
        ),
        0.85,
        words=("운전", "driver"),
    ),
]

_PASSPORT_CONTEXT = ("여권", "passport")


def _kr_passport(m: re.Match[str], text: str) -> float | None:
    return 0.9 if any(w in _window(text, m.start(), 30) for w in _PASSPORT_CONTEXT) else 0.6


_PASSPORT = [
    # (?<![A-Za-z0-9])[MSRODG]...: the letter first and the lookbehind after it, so that re scans for the letters
    Rule("KR_PASSPORT", _c(r"[MSRODG](?<![A-Za-z0-9][MSRODG])\d{8}(?![A-Za-z0-9])"), 0.6, _kr_passport),
    Rule(
        "KR_PASSPORT",
        _c(r"[MSRODG](?<![A-Za-z0-9][MSRODG])\d{3}[A-Z]\d{4}(?![A-Za-z0-9])"),
        0.6,
        _kr_passport,
    ),
    Rule(
        "PASSPORT",
        _c(
            r"(?:"
            + _ci_words("passport", group=False)
            + r"|여권)(?:\s?(?:no\.?|number|#|번호))?\s*(?:is)?\s*[:#]?\s*(?P<value>[A-Z0-9]{6,9})(?![A-Za-z0-9])",
            first="[pP여]",
        ),
        0.8,
        lambda m, t: 0.8 if any(ch.isdigit() for ch in m.group("value")) else None,
        words=("passport", "여권"),
    ),
]

_SSN = [
    Rule(
        "US_SSN",
        _c(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])", first=r"\d"),
        0.85,
        lead=r"\d\d\d-\d\d-",
    )
]

_INSURANCE = [
    Rule(
        "HEALTH_INSURANCE_ID",
        _c(
            r"(?:"
            + _ci_words(
                "health[- ]insurance", "insurance", "medicare", "medicaid", "member", "policy", "subscriber", "NHS"
            )
            + r"(?:\s(?i:card))?\s?(?i:no\.?|number|ID|#)|건강보험(?:증)?(?:\s?번호)?|보험증\s?번호|보험\s?번호|피보험자\s?번호|의료급여\s?번호)"
            r"\s*(?:is)?\s*[:：#]?\s*(?P<value>[A-Z0-9](?:[A-Z0-9]|[- ](?=[A-Z0-9])){5,19})(?![A-Za-z0-9])",
            first="[A-Za-z건보피의]",
        ),
        0.85,
        lambda m, t: 0.85 if sum(ch.isdigit() for ch in m.group("value")) >= 4 else None,
        words=("insurance", "medicare", "medicaid", "member", "policy", "subscriber", "nhs", "보험", "의료급여"),
    )
]


# -- contact details --------------------------------------------------------------------------

_SEP = r"(?:[ ]?[-./][ ]?|[ ])"  # between a phone number's groups: "-", ".", " ", or " - "
_PHONE = [
    # Korean mobile, landline, +82 and 15xx business numbers
    Rule(
        "PHONE_NUMBER",
        _c(rf"(?<![\d-])01[016789]{_SEP}?\d{{3,4}}{_SEP}?\d{{4}}(?![\d-])", first="0"),
        0.85,
        lead=r"01[016789]",
    ),
    Rule(
        "PHONE_NUMBER",
        _c(
            rf"(?<![\d-])(?:\((?:0(?:2|[3-6]\d|70|80|50\d)|01[016789])\)[ ]?|0(?:2|[3-6]\d|70|80|50\d)(?:\)[ ]{{0,2}}|{_SEP}?))\d{{3,4}}{_SEP}\d{{4}}(?![\d-])",
            first="[(0]",
        ),
        0.8,
        lead=r"0[2-8]|\(0",
    ),
    Rule("PHONE_NUMBER", _c(r"(?<![\d-])1[5-8]\d{2}-\d{4}(?![\d-])", first="1"), 0.6, lead=r"1[5-8]\d\d-"),
    Rule("PHONE_NUMBER", _c(r"(?:\(\+82\)|\+82)[-. ]?(?:\(0\))?\s?\d{1,2}[-. ]?\d{3,4}[-. ]?\d{4}(?!\d)"), 0.9),
    # US / NANP
    Rule(
        "PHONE_NUMBER",
        _c(
            r"(?:(?<![\d-])\+?1[-. ]?|(?<![\d-]))(?:\([2-9]\d{2}\)[ ]?|[2-9]\d{2}[-. ]?)[2-9]\d{2}[-. ]\d{4}(?![\d-])",
            first=r"[+(1-9]",
        ),
        0.75,
        lead=r"[2-9]\d\d[-. ]?[2-9]\d\d[-. ]\d|\([2-9]\d\d\)|\+1|1[-. ]?[2-9(]",
    ),
    # UK
    Rule("PHONE_NUMBER", _c(r"\+44\s?(?:\(0\)\s?)?\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}(?!\d)"), 0.9),
    Rule(
        "PHONE_NUMBER",
        _c(r"(?<![\d-])0(?:7\d{3}|20|1\d{2,3})\s\d{3,4}\s?\d{3,4}(?!\d)", first="0"),
        0.7,
        lead=r"0[712]",
    ),
    # any number after a phone context word
    Rule(
        "PHONE_NUMBER",
        _c(
            r"(?:\b(?:"
            + _ci_words("phone", r"tel\.?", "mobile", "cell", "fax", group=False)
            + r")|연락처|전화(?:번호)?|휴대폰|핸드폰|팩스)\s*[:：]?\s*(?P<value>\+?(?:\(\d{1,4}\)|\d{1,4})(?:[-. ]?(?:\(\d{2,4}\)|\d{2,4})){2,4})(?![\d])",
            first="[pPtTmMcCfF연전휴핸팩]",
        ),
        0.8,
        words=("phone", "tel", "mobile", "cell", "fax", "연락처", "전화", "휴대폰", "핸드폰", "팩스"),
    ),
]

_EMAIL = [
    Rule(
        "EMAIL_ADDRESS",
        _c(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}(?![\w-])"),
        0.95,
        gate=_c("@"),
    )
]

_URL = [
    Rule("URL", _c(_ci_words("https?://", r"www\.") + r"[^\s<>\"'()\[\]]+[^\s<>\"'()\[\].,;:!?]"), 0.9),
    Rule(
        "URL",
        _c(
            r"(?<![@\w.-])(?:[a-z0-9-]+\.)+(?:com|net|org|co\.kr|or\.kr|go\.kr|ac\.kr|kr|io|co\.uk|nhs\.uk)(?:/[^\s<>\"']*[\w/])?(?![\w@-])"
        ),
        0.6,
        gate=_c(r"\.(?:com|net|org|kr|io|uk)"),
    ),
]

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IP = [
    Rule(
        "IP_ADDRESS",
        _c(rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d.]|\.\d)", first=r"\d"),
        0.85,
        lead=r"\d\d{0,2}\.\d{1,3}\.",
    ),
    Rule(
        "IP_ADDRESS",
        _c(r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}(?![\w:])", first="[0-9a-fA-F]"),
        0.85,
        gate=_c(r":[0-9a-fA-F]{1,4}:"),  # the second group, between two colons
    ),
    Rule(
        "IP_ADDRESS",
        _c(r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4}:?){1,6}(?<!:)(?![\w:])", first="[0-9a-fA-F]"),
        0.6,
        gate=_c("::"),
    ),
]


# -- financial --------------------------------------------------------------------------------


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(m: re.Match[str], text: str) -> float | None:
    digits = re.sub(r"\D", "", m.group())
    return 0.9 if 13 <= len(digits) <= 19 and _luhn(digits) else None


def _iban(m: re.Match[str], text: str) -> float | None:
    raw = re.sub(r"\s", "", m.group()).upper()
    moved = raw[4:] + raw[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return 0.9 if int(number) % 97 == 1 else None


_BANKS = "국민|신한|우리|하나|농협|기업|카카오뱅크|토스뱅크|SC제일|제일|우체국|새마을금고|신협|수협|씨티|부산|대구|경남|광주|전북|제주|케이뱅크"
_FINANCIAL = [
    Rule(
        "CREDIT_CARD",
        _c(r"(?<![\d-])(?:\d{4}[- ]){3}\d{1,7}(?![\d-])|(?<![\d-])\d{13,19}(?![\d-])", first=r"\d"),
        0.9,
        _card,
        lead=r"\d(?:\d{3}[- ]\d{4}[- ]|\d{12})",
    ),
    Rule(
        "BANK_ACCOUNT",
        _c(
            rf"(?:계좌(?:번호)?|(?:{_BANKS})(?:은행)?|{_ci_words('account', 'acct', 'a/c')}(?:\s?(?i:no\.?|number|#))?)\s*[:：#]?\s*"
            r"(?P<value>\d(?:\d|-(?=\d)){8,22})(?![\d-])",
            first="[계국신우하농기카토S제새신수씨부대경광전케aA]",
        ),
        0.8,
    ),
    # \b[A-Z]{2}...: the letter first and \b before it checked from behind, so that re scans for capitals
    Rule("BANK_ACCOUNT", _c(r"[A-Z](?<=\b[A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"), 0.9, _iban),
]


# -- dates and ages ---------------------------------------------------------------------------

_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DOB_BEFORE = (
    "생년월일",
    "dob",
    "d.o.b",
    "date of birth",
    "birth date",
    "birthdate",
    "born",
    "출생",
    "생일",
    "birthday",
    "b.",
)
_DATE_PATTERNS = [
    r"(?<![\d.:/-])(?:19|20)\d{2}(?P<s>[-./])(?:0?[1-9]|1[0-2])(?P=s)(?:0?[1-9]|[12]\d|3[01])(?![\d:]|[./-]\d)",
    r"(?<![\d.:/-])(?:0?[1-9]|[12]\d|3[01])(?P<t>[/.-])(?:0?[1-9]|[12]\d|3[01])(?P=t)(?:19|20)?\d{2}(?![\d:]|[./-]\d)",
    r"(?:(?:19|20)?\d{2}\s?년\s?)?(?:0?[1-9]|1[0-2])\s?월\s?(?:0?[1-9]|[12]\d|3[01])\s?일",
    r"(?:19|20)\d{2}\s?년\s?(?:0?[1-9]|1[0-2])\s?월(?!\s?\d)",
    rf"\b{_MONTHS}\.?\s(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?(?:,?\s(?:19|20)\d{{2}})?\b",
    rf"\b(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\s(?:of\s)?{_MONTHS}\.?(?:,?\s(?:19|20)\d{{2}})?\b",
    rf"\b{_MONTHS}\.?,?\s(?:19|20)\d{{2}}\b",
    r"(?<![\d.:/-])(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?=\s?(?:생|출생|입원|퇴원))",
]
_DATE = _c("|".join(f"(?:{p})" for p in _DATE_PATTERNS), first=r"[\dJFMASOND]")
# What each of _DATE_PATTERNS needs in the text: 월 (the Korean ones), a month's name, 생 or 원 (생, 출생,
# 입원, 퇴원). A text without it scans the alternation without that pattern, in the same order: a
# pattern that cannot match anywhere in the text changes no match of the others.
_DATE_NEEDS = ("", "", "월", "월", "month", "month", "month", "생원")
_MONTH_WORD = _c("Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec")


def _date_variant(korean: bool, month: bool, event: bool) -> re.Pattern[str]:
    held = {"": True, "월": korean, "month": month, "생원": event}
    kept = [p for p, need in zip(_DATE_PATTERNS, _DATE_NEEDS, strict=True) if held[need]]
    return _c("|".join(f"(?:{p})" for p in kept), first=r"[\dJFMASOND]" if month else r"\d")


_DATES = {(k, m, e): _date_variant(k, m, e) for k in (False, True) for m in (False, True) for e in (False, True)}
_BIRTH_YEAR = _c(
    r"(?<!\d)(?P<value>(?:19|20)?\d{2}\s?년생)|(?i:\bborn\s(?:in\s)?|\bb\.\s?|year of birth:?\s?|출생(?:연도)?\s?:?\s?)(?P<year>(?:19|20)\d{2})\b",
    first=r"[\dbByY출]",
)


def _birth_year_possible(text: str) -> bool:
    """Whether _BIRTH_YEAR can match: 년생, 출생, or (any case) "born", "b." or "year of b" ("year of
    birth" less its i, which ``(?i)`` also matches as a dotted capital I or a dotless i, which lower() keeps apart)."""
    if "년생" in text or "출생" in text:
        return True
    lowered = _lowered(text)
    return "born" in lowered or "b." in lowered or "year of b" in lowered


def _dates(text: str) -> Iterator[Candidate]:
    variant = _DATES["월" in text, _MONTH_WORD.search(text) is not None, "생" in text or "원" in text]
    for m in variant.finditer(text):
        start, end = m.span()
        before = _window(text, start, 25)
        after = text[end : end + 4]
        birth = any(w in before for w in _DOB_BEFORE) or after.lstrip(" ()").startswith(("생", "출생"))
        yield ("DATE_OF_BIRTH" if birth else "DATE", start, end, 0.85 if birth else 0.7)
    if not _birth_year_possible(text):
        return
    for m in _BIRTH_YEAR.finditer(text):
        start, end = m.span("value") if m.group("value") else m.span("year")
        yield ("DATE_OF_BIRTH", start, end, 0.8)


_AGE = [
    Rule(
        "AGE_OVER_89",
        _c(
            r"(?<![\d.])(?P<value>(?:9\d|1[0-2]\d)(?:\s?(?:세|살)|(?:-| )?(?i:years?[- ]old|year-old|yrs?[- ]old|y/?o\b|y\.o\.)|(?=\s?[MF]\b|/[MF]\b)))",
            first="[91]",
        ),
        0.85,
        lead=r"[91][\d0-2]\d?(?:\s?[세살]|[- ]?[yY]|\s?[MF]|/[MF])",
    ),
    Rule(
        "AGE_OVER_89",
        _c(
            r"(?:\b(?:"
            + _ci_words(r"aged?\b", "age:", group=False)
            + r")|나이|연령|만)\s*[:：]?\s*(?P<value>(?:9\d|1[0-2]\d))(?![\d.])",
            first="[aA나연만]",
        ),
        0.85,
    ),
    Rule("AGE_OVER_89", _c(r"\((?:[MF남여]|male|female)\s?[/,]\s?(?P<value>9\d|1[0-2]\d)(?:세)?\)"), 0.85),
]


# -- addresses --------------------------------------------------------------------------------

_SIDO = (
    r"(?:서울|부산|대구|인천|광주|대전|울산|세종|경기|강원|충북|충남|전북|전남|경북|경남|제주|충청북|충청남|전라북|전라남|경상북|경상남)"
    r"(?:특별시|광역시|특별자치시|특별자치도|도|시)?"
)
_ADMIN = r"[가-힣]{1,6}(?:시|군|구)"
_ADMIN_GATE = _c(r"[가-힣][시군구]\s")  # every Korean address rule holds an _ADMIN word and a space
_KR_ADDRESS = [
    # 도로명: [시도] 시/군/구 ... 로/길 번호 [, 동 호]
    Rule(
        "ADDRESS",
        _c(
            rf"(?:{_SIDO}\s)?(?:{_ADMIN}\s){{1,3}}(?:[가-힣]{{1,6}}(?:읍|면)\s)?[가-힣0-9]{{1,10}}(?:로|길)\s?\d{{1,4}}(?:-\d{{1,4}})?"
            r"(?:번?길\s?\d{1,4}(?:-\d{1,4})?)?(?:,?\s?(?:\d{1,4}|[A-Z])동\s?\d{1,4}호|,?\s?\d{1,4}호)?(?:\s?\([가-힣0-9,. ]{2,20}\))?",
            first="[가-힣]",  # a 시/도 or a 시/군/구 word
        ),
        0.85,
        gate=_ADMIN_GATE,
    ),
    Rule(
        "ADDRESS",
        _c(
            rf"(?:{_SIDO}\s)?(?:{_ADMIN}\s){{1,3}}(?:[가-힣]{{1,6}}(?:읍|면)\s)?[가-힣0-9]{{1,8}}(?:동|리|가)\s?\d{{1,5}}(?:-\d{{1,5}})?(?:번지)?"
            r"(?:,?\s?(?:\d{1,4}|[A-Z])동\s?\d{1,4}호|,?\s?\d{1,4}호)?",
            first="[가-힣]",
        ),
        0.85,
        gate=_ADMIN_GATE,
    ),
    Rule(
        "ADDRESS",
        _c(
            rf"{_SIDO}\s(?:{_ADMIN}\s)?{_ADMIN}\s[가-힣0-9]{{1,8}}(?:동|읍|면)(?![가-힣])",
        ),
        0.6,
        gate=_ADMIN_GATE,
    ),
]

# After a label (주소:, 거주지:), an address runs for as long as its words are address words: a region
# or place name ending in 시 / 도 / 군 / 구 / 읍 / 면, a road or 동 / 리 before its number, a number (12, 12-3, 101동,
# 1203호, 5층, 33번지), a building (...아파트) or a parenthesised 동 name. It ends before the first
# other word, so "주소: 서울시 마포구 월드컵북로 396 고혈압으로 내원" keeps 고혈압.
_ADDRESS_LABEL = _c(r"(?:주소|거주지|자택|현주소|소재지)\s*[:：]?[ \t]*(?=[가-힣0-9])")
_ADDRESS_WORD = _c(
    rf"(?:{_SIDO}|[가-힣0-9]{{1,12}}(?:시|도|군|구|읍|면|아파트|빌라|오피스텔|타운|마을|단지|빌딩|타워|맨션)"
    r"|[가-힣0-9]{1,12}(?:동|리|가|로|길)(?=[ \t]?\d)|\d{1,5}(?:-\d{1,5})?(?:번지|동|호|층|번길)?|\([가-힣0-9,. ]{1,20}\))(?=[,\s]|$)"
)


def _labelled_addresses(text: str) -> Iterator[Candidate]:
    for label in _ADDRESS_LABEL.finditer(text):
        start = end = pos = label.end()
        while True:
            m = _ADDRESS_WORD.match(text, pos)
            if m is None:
                break
            end = m.end()
            gap = re.match(r",?[ \t]*", text[end:])
            pos = end + (gap.end() if gap else 0)
        if end - start >= 5 and " " in text[start:end]:
            yield ("ADDRESS", start, end, 0.7)


_STREET = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|Terrace|Close|Crescent"
    r"|Parkway|Pkwy|Highway|Hwy|Square|Sq|Gardens|Grove|Row|Mews|Park|Walk|Hill|Rise|Green)"
)
# ", QC H3B 1A7" (Canada), " D04 X2Y1" (an Irish Eircode)
_POSTCODE_TAIL_CA_IE = (
    r"(?:,?\s(?:[A-Z]{2}\s)?[ABCEGHJ-NPRSTVXY]\d[A-Z]\s?\d[A-Z]\d|,?\s[AC-FHKNPRTV-Y]\d[\dW]\s[\dAC-FHKNPRTV-Y]{4})?"
)
_EN_STREET_ADDRESS = (
    rf"\b\d{{1,5}}[A-Z]?\s(?:[NSEW]\.?\s)?(?:[A-Z][a-z]+\s|\d{{1,3}}(?:st|nd|rd|th)\s){{1,3}}{_STREET}\b\.?"
    r"(?:,?\s(?:Apt|Apartment|Suite|Ste|Unit|Flat|#)\.?\s?#?\w{1,5})?"
    r"(?:,\s[A-Z][a-z]+(?:\s[A-Z][a-z]+){0,2})?(?:,?\s[A-Z]{2}\s\d{5}(?:-\d{4})?)?"
    r"(?:,?\s[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2})?" + _POSTCODE_TAIL_CA_IE
)
_EN_ADDRESS = [
    Rule(
        "ADDRESS",
        _c(
            _EN_STREET_ADDRESS,
            first=r"\d",
        ),
        0.85,
        lead=r"\d\d{0,4}[A-Z]?\s(?:[NSEW]\.?\s)?(?:[A-Z][a-z]|\d)",
    ),
    # a flat or unit before the number ("Flat 2, 41 Grove Park, ..."): not digit-started, so its own scan
    Rule(
        "ADDRESS",
        _c(rf"(?:F(?<=\bF)lat|A(?<=\bA)(?:partment|pt)|U(?<=\bU)nit|S(?<=\bS)uite)\s\w{{1,5}},\s{_EN_STREET_ADDRESS}"),
        0.85,
    ),
    # the street type first, as in French, Spanish, Italian and Portuguese: "14 Rue Sainte-Catherine, Montreal"
    Rule(
        "ADDRESS",
        _c(
            r"\b\d{1,5}[A-Z]?,?\s(?:Rue|Avenue|Av\.|Boulevard|Bd|Chemin|Route|Place|Calle|Avenida|Via|Viale|Rua|Piazza)\s"
            r"(?:(?:de|du|des|de la|del|della|da|do|dos)\s)?[A-Z][\w'’-]+(?:\s[A-Z][\w'’-]+){0,2}"
            r"(?:,\s[A-Z][a-z]+(?:[\s-][A-Z][a-z]+){0,2})?(?:,?\s[A-Z]{2}\s\d{5}(?:-\d{4})?)?" + _POSTCODE_TAIL_CA_IE,
            first=r"\d",
        ),
        0.8,
        lead=r"\d{1,5}[A-Z]?,?\s(?:Rue|Av|Bo|Bd|Ch|Ro|Pl|Ca|Vi|Ru|Pi)",
    ),
    Rule("ADDRESS", _c(r"[A-Z](?<=\b[A-Z])(?:[A-Z]?\d[A-Z\d]?)\s\d[A-Z]{2}\b"), 0.5),  # \b[A-Z]{1,2}..., as above
    Rule("ADDRESS", _c(r"\b(?:PO|P\.O\.)\sBox\s\d{1,6}\b", first="P"), 0.7, gate=_c("Box")),
]


# -- person names -----------------------------------------------------------------------------


def _load_surnames() -> tuple[list[str], list[str]]:
    text = resources.files("medops.privacy").joinpath("korean_surnames.txt").read_text(encoding="utf-8")
    names = [w for line in text.splitlines() if not line.startswith("#") for w in line.split()]
    return sorted({n for n in names if len(n) == 1}), sorted({n for n in names if len(n) == 2})


_SINGLE, _DOUBLE = _load_surnames()
_KR_SURNAME = f"(?:{'|'.join(_DOUBLE)}|[{''.join(_SINGLE)}])"
_KR_NAME = rf"{_KR_SURNAME}[가-힣]{{1,2}}"

# Words that look like surname + syllables but are not names (clinical words, kinship and job titles).
KR_STOPWORDS = frozenset(
    [
        "선생",
        "고객",
        "환자",
        "이사",
        "이모",
        "박사",
        "원장",
        "과장",
        "부장",
        "사장",
        "회장",
        "실장",
        "팀장",
        "소장",
        "국장",
        "차장",
        "반장",
        "조장",
        "조교",
        "주임",
        "교수",
        "기사",
        "신부",
        "수녀",
        "목사",
        "하나",
        "주님",
        "하느",
        "선배",
        "후배",
        "동기",
        "손자",
        "손녀",
        "조카",
        "형님",
        "누님",
        "형수",
        "고모",
        "이모부",
        "고모부",
        "사모",
        "도련",
        "아가",
        "마음",
        "가족",
        "부모",
        "보호",
        "간호",
        "당뇨",
        "고혈압",
        "고지혈",
        "신부전",
        "심부전",
        "천식",
        "우울",
        "우울증",
        "치매",
        "결핵",
        "폐렴",
        "노인",
        "여성",
        "남성",
        "성인",
        "소아",
        "중증",
        "경증",
        "고령",
        "정상",
        "소견",
        "전신",
        "신장",
        "간경화",
        "심근",
        "심장",
        "위암",
        "유방암",
        "폐암",
        "대장암",
        "전립선",
        "갑상선",
        "신경",
        "정신",
        "조현",
        "조울",
        "공황",
        "불안",
        "양극",
        "이상",
        "장애",
        "장염",
        "위염",
        "고열",
        "오한",
        "구토",
        "설사",
        "두통",
        "복통",
        "요통",
        "흉통",
        "관절",
        "골절",
        "염증",
        "감염",
        "외상",
        "화상",
        "수술",
        "시술",
        "검사",
        "진료",
        "진단",
        "처방",
        "투약",
        "주사",
        "수혈",
        "입원",
        "퇴원",
        "외래",
        "응급",
        "중환",
        "해당",
        "기존",
        "신규",
        "초진",
        "재진",
        "전원",
        "이송",
        "이전",
        "이후",
        "이번",
        "이상",
        "이하",
        "이미",
        "정도",
        "정기",
        "정밀",
        "조기",
        "조절",
        "조치",
        "주의",
        "주요",
        "주치",
        "지속",
        "진행",
        "차후",
        "추가",
        "추적",
        "한번",
        "한쪽",
        "함께",
        "현재",
        "호전",
        "호흡",
        "혈압",
        "혈당",
        "안정",
        "안전",
        "안내",
        "양성",
        "음성",
        "우측",
        "좌측",
        "유지",
        "유의",
        "위험",
        "인지",
        "임신",
        "임상",
        "장기",
        "전체",
        "전반",
        "제공",
        "제한",
        "조영",
        "최근",
        "최종",
        "최대",
        "최소",
        "치료",
        "통증",
        "표준",
        "하지",
        "상지",
        "성별",
        "연령",
        "영양",
        "예정",
        "예후",
        "오늘",
        "오전",
        "오후",
        "원인",
        "유전",
        "윤리",
        "고위험",
        "남편",
        "아내",
        "배우자",
        "아들",
        "딸",
        "어머",
        "아버",
        "할머",
        "할아버",
        "어르신",
        "여사",
        "부인",
        "장남",
        "장녀",
        "차남",
        "차녀",
        "막내",
        "담당",
        "기관",
        "병원",
        "보건",
        "복지",
        "공단",
        "국민",
        "민원",
        "상담",
        "상태",
        "설명",
        "성함",
        "이름",
        "남자",
        "여자",
        "남동",
        "여동",
        "경우",
        "신원",
        "실명",
        "연락",
        "방문",
        "방문간호",
        "변화",
        "변경",
        "보고",
        "보류",
        "문의",
        "문제",
        "민감",
        "구강",
        "구역",
        "구역질",
        "구내염",
        "구강암",
        "정형",
        "성형",
        "신경과",
        "안과",
        "이비인후",
        "피부",
        "비뇨",
        "산부인",
        "소아과",
        "내과",
        "외과",
        "가정의학",
        "재활",
        "마취",
        "영상",
        "진단검사",
        "병리",
        "핵의학",
        "방사선",
        "응급의학",
        "직업환경",
        "예방",
        "감염내과",
        "신장내과",
        "심장내과",
        "호흡기",
        "소화기",
        "내분비",
        "류마티스",
        "혈액종양",
        "노년",
        "간호사",
        "약사",
        "의사",
        "주치의",
        "전공의",
        "인턴",
        "레지던트",
        "직원",
        "간병",
        "간병인",
        "동반",
        "동행",
        "본인",
        "당사자",
        "대상",
        "대상자",
        "수진",
        "수신",
        "발신",
        "작성",
        "확인",
    ]
)

_KR_HONORIFIC = r"님|씨|어르신|여사님?|선생님|교수님?|원장님?|과장님?|간호사님?|약사님?"
_KR_AFTER = (
    rf"(?:\s?(?P<after>{_KR_HONORIFIC}|환자분?|보호자|주치의|전공의|학생)|\s(?:군|양)(?![가-힣])"
    r"|(?:입니다|이에요|예요|이라고\s?합니다|라고\s?합니다)"
    r"|\s?\((?:[MF남여](?:성)?\s?[/,]|\d{1,3}\s?(?:세|살)|만\s?\d)|\s?\(\d{1,3}\s?[MF남여]\))"
)
# A name introduced by a word for name, a role, a kinship word (in apposition) or a form label.
_KR_BEFORE = (
    r"(?:성명|이름|환자명|환자\s?성명|수진자|피보험자|보호자명?|담당의|주치의|담당\s?간호사|진료의|작성자?|의뢰의|의뢰인|서명|수신|발신|신청인"
    r"|담당\s?교수|담당자?|확인자|집도의|전공의|인턴|간호사|약사|저는|제\s?이름은|이름(?:은|이)?|성함(?:은|이)?"
    r"|아들|딸|남편|아내|부인|배우자|어머니|아버지|며느리|사위|손자|손녀|언니|오빠|누나|동생|"
    # (?i:patient|name|pt\.?|attending|dr\.?): every word above starts with a literal, so re scans for those
    + _ci_words("patient", "name", r"pt\.?", "attending", r"dr\.?", group=False)
    + r")\s*(?:[:：]\s*|\s)"
)
# After the name: the end of the word, or a particle or copula ("김민수이고", "김민수께서").
_KR_NAME_END = (
    r"(?:(?![가-힣]{2})|(?=이고|이며|이다|이에|이었|이라|입니|이구|이세|이시|이신|인데|께서|에게|한테|님|씨))"
)
_KR_SURNAME_FIRST = f"[{''.join(sorted(set(_SINGLE) | {d[0] for d in _DOUBLE}))}]"
_KR_PERSON_AFTER = _c(rf"(?<![가-힣])(?P<value>{_KR_NAME})(?={_KR_AFTER})", first=_KR_SURNAME_FIRST)
_KR_PERSON_BEFORE = _c(rf"{_KR_BEFORE}(?P<value>{_KR_NAME}){_KR_NAME_END}")
# A full three-syllable name before a bare age ("김민수 67세"); two syllables there are mostly words (남자 67세).
_KR_PERSON_AGE = _c(
    rf"(?<![가-힣])(?P<value>{_KR_SURNAME}[가-힣]{{2}})(?=,?\s(?:만\s?)?\d{{1,3}}\s?(?:세|살)(?![가-힣]))",
    first=_KR_SURNAME_FIRST,
)
_KR_NAME_LABEL = _c(
    r"저는|성명|이름|성함|환자명|담당|주치의|간호사|전공의|인턴|약사|작성|의뢰|진료의|집도의|확인자|서명|수신|발신"
)
_KR_PERSON_PATIENT = _c(r"(?:환자|보호자)\s(?P<value>" + _KR_NAME + r")(?=\s?(?:\(|님|씨|[,.은는이가의을를]|\s|$))")


# A clinical word and a particle or suffix ("소견상", "정상은"): the word itself, not a name that starts like it.
_KR_WORD_SUFFIXES = frozenset("상은는이가을를도의적성과와로에")
# Demographics in brackets right after the word ("(남/45세)", "(67세)"): said of a person.
_KR_DEMOGRAPHICS = _c(r"\s?\((?:[MF남여](?:성)?\s?[/,]|\d{1,3}\s?(?:세|살)|만\s?\d|\d{1,3}\s?[MF남여]\))")
# A speaker introducing themself before "<name>입니다" ("안녕하세요, 저는 ...", "제 이름은 ...").
_SENTENCE_END = _c(r"[.?!\n]")
_KR_SELF_INTRODUCTION = ("안녕하세요", "안녕하십니까", "저는", "제 이름은", "이름은", "성함은")


def _clinical_word(value: str) -> bool:
    return len(value) == 3 and value[:2] in KR_STOPWORDS and value[2] in _KR_WORD_SUFFIXES


def _kr_name_ok(value: str, honorific: bool = False) -> bool:
    """Not a clinical or kinship word; before an honorific (님, 씨), after a name label (성명:) or before
    demographics ("(남/45세)") only the whole word is checked: no clinical compound (당뇨병, 고혈압성) is
    found there, but names such as 이하은, 조영숙 and 정상우 start like one."""
    if value in KR_STOPWORDS:
        return False
    return honorific or (value[:2] not in KR_STOPWORDS and value[:3] not in KR_STOPWORDS)


def _korean_names(text: str) -> Iterator[Candidate]:
    for m in _KR_PERSON_AFTER.finditer(text):
        value = m.group("value")
        after = m.group("after")
        demographics = _KR_DEMOGRAPHICS.match(text, m.end("value")) is not None
        if (
            after is None
            and not demographics
            and text.startswith(("입", "이에", "예요", "이라", "라고"), m.end("value"))
        ):
            # "<word>입니다" alone is most often a clinical finding ("폐렴 소견입니다", "경과 양호입니다"):
            # a name there has three syllables, or a speaker introducing themself before it
            sentence = _SENTENCE_END.split(text[max(0, m.start() - 20) : m.start()])[-1]
            introduced = any(w in sentence for w in _KR_SELF_INTRODUCTION)
            if len(value) < 3 and not introduced:
                continue
            demographics = introduced
        if _kr_name_ok(value, honorific=demographics or bool(re.fullmatch(_KR_HONORIFIC, after or ""))):
            yield ("PERSON", m.start("value"), m.end("value"), 0.7 if len(value) >= 3 else 0.5)
    pos = 0
    while (m := _KR_PERSON_BEFORE.search(text, pos)) is not None:
        value = m.group("value")
        labelled = _KR_NAME_LABEL.search(text, m.start(), m.start("value")) is not None  # 성명: 조영숙
        if labelled and _clinical_word(value) and not text.startswith(("님", "씨"), m.end("value")):
            labelled = False  # "담당의 소견상": the word and a particle, not a name that starts like it
        if _kr_name_ok(value, honorific=labelled):
            yield ("PERSON", m.start("value"), m.end("value"), 0.85 if len(value) >= 3 else 0.65)
            pos = m.end()
        else:  # "보호자 이름은 강영숙": the rejected word may itself introduce the name
            pos = m.start("value")
    for m in _KR_PERSON_AGE.finditer(text) if "세" in text or "살" in text else ():
        if _kr_name_ok(m.group("value")):
            yield ("PERSON", m.start("value"), m.end("value"), 0.6)
    for m in _KR_PERSON_PATIENT.finditer(text):
        value = m.group("value")
        apposition = text.startswith((",", "("), m.end("value")) and value[-1] not in _KR_WORD_SUFFIXES
        if len(value) >= 3 and _kr_name_ok(
            value, honorific=apposition or text.startswith(("님", "씨"), m.end("value"))
        ):
            yield ("PERSON", m.start("value"), m.end("value"), 0.6)


# Surnames that also name a disease, sign or device: a stop word only where they name the disease.
EPONYMS = frozenset(
    [
        "Parkinson",
        "Parkinsons",
        "Alzheimer",
        "Alzheimers",
        "Crohn",
        "Crohns",
        "Hodgkin",
        "Hashimoto",
        "Graves",
        "Cushing",
        "Addison",
        "Down",
        "Bell",
        "Guillain",
        "Barre",
        "Kawasaki",
        "Wilson",
        "Huntington",
        "Raynaud",
        "Sjogren",
        "Tourette",
        "Asperger",
        "Bright",
        "Meniere",
        "Paget",
        "Wernicke",
        "Korsakoff",
        "Marfan",
        "Turner",
        "Klinefelter",
        "Kaposi",
        "Burkitt",
        "Ewing",
        "Wilms",
        "Hirschsprung",
        "Meckel",
        "Barrett",
        "Babinski",
        "Glasgow",
        "Apgar",
        "Whipple",
        "Foley",
        "Swan",
        "Ganz",
        "Holter",
        "Doppler",
        "Gram",
        "Levine",
        "Murphy",
        "McBurney",
        "Homan",
        "Homans",
        "Trendelenburg",
        "Valsalva",
        "Epley",
        "Heimlich",
        "Korotkoff",
    ]
)

# Capitalised words that follow a title or a context word but are not names (eponyms apart).
_EN_GRAMMAR = frozenset(
    [
        "The",
        "This",
        "That",
        "These",
        "Those",
        "He",
        "She",
        "They",
        "It",
        "His",
        "Her",
        "Their",
        "We",
        "You",
        "I",
        "A",
        "An",
        "And",
        "Or",
        "But",
        "If",
        "On",
        "In",
        "At",
        "Of",
        "For",
        "To",
        "From",
        "With",
        "By",
        "As",
        "Is",
        "Was",
        "Has",
        "Had",
        "Have",
        "Will",
        "Would",
        "Should",
        "Can",
        "May",
        "Might",
        "Must",
        "Did",
        "Does",
        "Not",
        "No",
        "Yes",
        "Please",
        "Thank",
        "Thanks",
        "Dear",
        "Hi",
        "Hello",
        "Today",
        "Patient",
        "Patients",
        "Doctor",
        "Doctors",
        "Nurse",
        "Hospital",
        "Clinic",
        "Department",
        "Dept",
        "Ward",
        "Unit",
        "Service",
        "Team",
        "Center",
        "Centre",
        "Medical",
        "Emergency",
        "Internal",
        "Medicine",
        "Surgery",
        "Cardiology",
        "Neurology",
        "Oncology",
        "Pediatrics",
        "Psychiatry",
        "Radiology",
        "Urology",
        "Nephrology",
        "History",
        "Exam",
        "Examination",
        "Plan",
        "Assessment",
        "Diagnosis",
        "Impression",
        "Findings",
        "Results",
        "Labs",
        "Vitals",
        "Medications",
        "Allergies",
        "Denies",
        "Reports",
        "Presents",
        "Presented",
        "Admitted",
        "Discharged",
        "Referred",
        "Seen",
        "Noted",
        "Started",
        "Continue",
        "Continued",
        "Stop",
        "Stopped",
        "Disease",
        "Syndrome",
        "Sign",
        "Test",
        "Score",
        "Scale",
        "Type",
        "Stage",
        "Grade",
        "Class",
        "Level",
        "Positive",
        "Negative",
        "Normal",
        "Abnormal",
        "Acute",
        "Chronic",
        "Left",
        "Right",
        "Bilateral",
        "Mild",
        "Moderate",
        "Severe",
        "Stable",
        "Unstable",
        "Follow",
        "Up",
        "Call",
        "Note",
        "Notes",
        "Summary",
        "Letter",
        "Report",
        "Reason",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "January",
        "February",
        "March",
        "April",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
        "Korea",
        "Korean",
        "Seoul",
        "Busan",
        "English",
        "Name",
        "Names",
        "Unknown",
        "Mr",
        "Mrs",
        "Ms",
        "Dr",
        "Prof",
        "Regards",
        "Sincerely",
        "Best",
        "Kind",
        "Warm",
        "Yours",
        "Cheers",
        "Signed",
        "Attending",
        "Resident",
        "Physician",
        "Consultant",
        "Registrar",
        "Surgeon",
    ]
)
# Capitalised at the start of a sentence, right before a name: "Daughter Susan", "Caller Jane Doe".
_EN_GRAMMAR = _EN_GRAMMAR | frozenset([
    "Daughter", "Son", "Wife", "Husband", "Mother", "Father", "Mom", "Mum", "Dad", "Brother", "Sister", "Spouse",
    "Partner", "Guardian", "Caregiver", "Carer", "Caller", "Contact", "Friend", "Neighbour", "Neighbor",
    "Colleague", "Niece", "Nephew", "Grandson", "Granddaughter", "Aunt", "Uncle", "Cousin", "Also", "Then", "Spoke",
    "Called", "Met", "Saw", "Per", "Via", "Cc", "Re", "Attn", "Ref", "Pt",
    # words that label an identifier ("Chart ID", "Account no."): never the given name in "Doe, Chart ID ..."
    "Chart", "Account", "Admission", "Visit", "Encounter", "Billing", "Episode", "Record", "Registration",
    "Reference", "Member", "Policy", "Claim", "Accession", "Inpatient", "Outpatient",
])  # fmt: skip
EN_STOPWORDS = _EN_GRAMMAR | EPONYMS
_EN_TOKEN = r"(?:[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+(?:[-'][A-ZÀ-ÖØ-Þ]?[a-zß-öø-ÿ]+)?|[A-Z]\.|Mc[A-Z][a-z]+|O'[A-Z][a-z]+)"
_EN_TOKEN_RE = _c(_EN_TOKEN)
_EN_NAME = rf"(?P<value>{_EN_TOKEN}(?:\s{_EN_TOKEN}){{0,2}})"
# \b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Doctor|Professor|Nurse|Sister), grouped by first letter, \b checked from behind it
_TITLE = (
    r"(?:M(?<=\bM)(?:r|rs|s|iss|x)|D(?<=\bD)(?:r|octor)|P(?<=\bP)(?:rof|rofessor)|N(?<=\bN)urse|S(?<=\bS)ister)\.?\s"
)
_EN_CONTEXT_WORDS = [
    "patient", "pt\\.?", "patient name", "name", "full name", "guardian", "caregiver", "mother", "father", "son",
    "daughter", "wife", "husband", "spouse", "brother", "sister", "emergency contact", "contact person",
    "next of kin", "referred by", "referring physician", "attending", "signed", "my name is", "this is", "I am",
    "I'm", "call me", "dear", "hi", "hello", "hey", "regards", "sincerely", "thanks", "thank you", "best", "cheers",
    "yours truly", "written by", "dictated by", "ordered by", "seen by", "reviewed by", "electronically signed by",
    "referring", "thank you for seeing", "on behalf of", "accompanied by", "nurse", "carer", "social worker",
    "friend", "neighbou?r", "colleague", "partner", "fellow", "resident", "intern", "midwife", "coordinator",
    "secretary", "translator", "referral from", "letter from", "message from", "phone call from", "call from",
    "e-?mail from", "note from", "fax from", "voicemail from", "request from", "consult from",
]  # fmt: skip
_EN_CONTEXT = (
    rf"(?:\b{_ci_words(*_EN_CONTEXT_WORDS)}\s*[:,\-]?\s*\n?\s*"
    rf"|\b{_ci_words('cc', 'from', 'to', 'signature', 'sign-off')}\s*:\s*)"
)
_EN_TITLE_NAME = _c(rf"{_TITLE}{_EN_NAME}")
_EN_CONTEXT_NAME = _c(rf"{_EN_CONTEXT}{_EN_NAME}", first="[A-Za-z]")
# A full name ("Given Family" or "Family, Given") right before an age or an identifier: "Jane Doe, 67-year-old",
# "Doe, Jane (MRN ...)", "Jane Doe (RRN ...)".
_EN_AGE_NAME = _c(
    rf"(?<![\w.])(?P<value>{_EN_TOKEN}(?:,\s|\s){_EN_TOKEN}(?:\s{_EN_TOKEN})?)(?=,?\s(?:is\s)?(?:an?\s)?\d{{1,3}}[- ]?(?:year|yo|y/o|M\b|F\b)"
    r"|,?\s(?:[-–—:/|]\s)?\(?(?:(?:DOB|D\.O\.B|born|aged?|MRN|RRN|SSN|NHS|ID|patient ID|hospital no)\b|주민|등록번호|환자번호))",
    first="[A-ZÀ-ÖØ-Þ]",  # every name token starts with a capital
)
# A role noun in -ist / -ian in apposition ("the physiotherapist, Jane Doe", "cardiologist Mark Lee"); the other
# role nouns ("our nurse, Jane Doe") are context words above.
_EN_ROLE_NAME = _c(rf"(?:ist|ian)(?<=[a-z](?:ist|ian))s?\b,?[ \t]{_EN_NAME}")  # (?<=[a-z])(?:ist|ian), as above
# The agent of a passive ("examined by Jane Doe"): one name token after a clinical act, a full name after any verb.
_EN_BY_NAME = _c(rf"[ \t](?<=[a-z][ \t])by[ \t]{_EN_NAME}")  # (?<=[a-z])[ \t]by..., the blank first (re scans for it)
# Role nouns that end in neither -ist nor -ian: "the registrar, Jane Doe", "radiographer Mark Lee".
_ROLE_WORDS = (
    "registrar", "consultant", "surgeon", "physician", "doctor", "practitioner", "officer", "radiographer",
    "sonographer", "paramedic", "matron", "chaplain", "interpreter", "scribe", "clerk", "houseman", "trainee",
    "student", "assistant", "worker", "volunteer",
)  # fmt: skip
_EN_ROLE_WORD_NAME = _c(
    rf"(?=[{''.join(sorted({c for w in _ROLE_WORDS for c in (w[0], w[0].upper())}))}])"
    rf"\b{_ci_words(*_ROLE_WORDS)}s?\b(?P<comma>,)?[ \t]{_EN_NAME}"
)
# What a document is made for: "Discharge summary for Jane Doe", "Prescription for Mark Lee". The scan looks
# for " for " (a literal, fast); the word before it is checked against these.
_DOCUMENT_WORDS = frozenset([
    "summary", "letter", "prescription", "result", "results", "referral", "report", "note", "notes", "plan",
    "appointment", "request", "invoice", "certificate", "form", "record", "records", "chart", "file", "label",
    "labels", "bill",
])  # fmt: skip
_EN_FOR_NAME = _c(rf"[ \t]for[ \t]{_EN_NAME}")
# Words that may stand between a verb and "by": "assessed today by", "seen again by".
_ADVERBS = frozenset([
    "today", "yesterday", "again", "also", "personally", "previously", "earlier", "later", "jointly", "initially",
    "independently", "remotely", "briefly", "urgently", "formally", "first", "recently", "subsequently", "tonight",
])  # fmt: skip


def _verb_before(text: str, at: int) -> str:
    """The word before position ``at`` (lower case), skipping one adverb ("assessed today by")."""
    start = text.rfind(" ", 0, at) + 1
    word = text[start:at].lower()
    if word in _ADVERBS and start > 1:
        before = text.rfind(" ", 0, start - 1) + 1
        word = text[before : start - 1].lower()
    return word


_AGENT_VERBS = frozenset([
    "seen", "examined", "performed", "reviewed", "assessed", "evaluated", "treated", "operated", "interpreted",
    "read", "written", "dictated", "signed", "ordered", "referred", "prescribed", "authored", "approved",
    "verified", "transcribed", "witnessed", "consented", "completed", "done", "reported", "attended", "covered",
    "discussed", "checked", "entered", "updated", "called", "visited", "interviewed", "counselled", "counseled",
    "escorted", "brought", "accompanied", "admitted", "discharged", "triaged", "supervised", "taken", "drawn",
    "given", "administered", "explained",
])  # fmt: skip
_NOT_AGENT_VERBS = frozenset([
    "caused", "complicated", "followed", "induced", "mediated", "characterized", "characterised", "triggered",
    "preceded", "marked", "defined", "affected", "supported", "suggested", "indicated", "evidenced", "measured",
    "confirmed", "diagnosed", "detected", "shown", "demonstrated", "revealed", "replaced", "relieved", "worsened",
    "aggravated", "exacerbated", "limited", "obscured", "produced",
])  # fmt: skip
# What follows an eponym used as the name of a disease, sign, test or device, not of a person.
_EPONYM_USE = _c(
    r"(?:-[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+)?(?:'s?|’s?)?[ \t-]?(?i:[a-z]+(?:osis|itis|oma|a?emia|pathy|plasia|trophy|algia|iasis)"
    r"|disease|syndrome|palsy|sign|chorea|disorder|lymphoma|sarcoma|tumou?r|o?esophagus|ulcer"
    r"|phenomenon|reflex|test|manoeuvre|maneuver|procedure|operation|fracture|thyroiditis|encephalopathy|dystrophy"
    r"|anomaly|crisis|triad|node|cells?|law|score|scale|classification|criteria|catheter|tube|stain|clinic|type|stage"
    r"|monitor|angina|aneurysm|diverticulum|contracture|cyst|hernia|ileus|dementia|psychosis|arteritis|neuralgia"
    r"|varices|spots?|bodies|body|point|incision|position|respiration|murmur|phenomena|ratio|index|criterion|method)\b"
)


def eponym_used(text: str, end: int) -> bool:
    """True when the word ending at ``end`` is followed by a disease word ("Bell's palsy", "Hodgkin lymphoma")."""
    return _EPONYM_USE.match(text, end) is not None


def _eponym_base(token: str) -> str:
    """ "Addison's" -> "Addison", "Graves'" -> "Graves"."""
    for suffix in ("'s", "’s", "'", "’"):
        if token.endswith(suffix):
            return token[: -len(suffix)]
    return token


def _stop(token: str, text: str, end: int) -> bool:
    """A token that ends (or cannot start) a name: a grammar word, or an eponym naming its disease."""
    base = _eponym_base(token.rstrip("."))
    head = token.split("-")[0]
    if base in _EN_GRAMMAR or head in _EN_GRAMMAR:
        return True
    if base in EPONYMS or head in EPONYMS:
        return token.endswith(("'s", "’s", "s'")) or eponym_used(text, end)
    return False


def _trim_name(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Drop stop words from a captured name: a name ends at the first one, and must not start with one."""
    tokens = [(m.start() + start, m.end() + start, m.group()) for m in re.finditer(r"\S+", text[start:end])]
    kept = []
    for s, e, token in tokens:
        if _stop(token, text, e):
            break
        kept.append((s, e))
    if not kept:
        return None
    s, e = kept[0][0], kept[-1][1]
    if text[e - 1] == ",":  # "Doe, [stop word]": the comma belongs to what was dropped
        e -= 1
    if len(text[s:e]) < 2 or (e - s == 2 and text[e - 1] == "."):
        return None
    return s, e


_NEXT_TOKEN = _c(rf"[ \t]({_EN_TOKEN})")
_PREVIOUS_TOKEN = _c(rf"(?:^|(?<=[\s(\"]))({_EN_TOKEN})[ \t]$")
_GIVEN_AFTER_FAMILY = _c(
    rf",[ \t]?({_EN_TOKEN}(?:[ \t][A-Z]\.)?)(?=[ \t]?(?:[,.;:()\n]|$)|[ \t](?:is|was|has|had|DOB|MRN|RRN|aged?|\d))"
)


_LABEL = r"\.?[ \t]?(?i:no\b|#|number|ID\b)"  # what labels an identifier after a word ("Chart ID", "Hosp. No.")
_LABEL_AFTER = _c(_LABEL)


def expand_person(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen an English name span to the name tokens next to it, so no part of the name is left:
    "Thomas [Bell]" -> "[Thomas Bell]", "[Okafor], Michael," (family, given) -> "[Okafor, Michael],"."""
    if not text[start:end].isascii():
        return start, end
    for _ in range(2):
        m = _NEXT_TOKEN.match(text, end)
        if m is None or _stop(m.group(1), text, m.end()):
            break
        end = m.end()
    if " " not in text[start:end]:
        m = _GIVEN_AFTER_FAMILY.match(text, end)
        if (
            m is not None
            and not _stop(m.group(1).split()[0], text, m.end(1))
            and not _LABEL_AFTER.match(text, m.end(1))
        ):
            end = m.end(1)  # not "[Doe], Chart ID ...": a word before no. / # / ID labels an identifier
    m = _PREVIOUS_TOKEN.search(text, max(0, start - 30), start)
    if m is not None and not _stop(m.group(1), text, m.end(1)):
        start = m.start(1)
    return start, end


def _english_names(text: str) -> Iterator[Candidate]:
    for regex, score in ((_EN_TITLE_NAME, 0.85), (_EN_CONTEXT_NAME, 0.7), (_EN_AGE_NAME, 0.7), (_EN_ROLE_NAME, 0.6)):
        for m in regex.finditer(text):
            span = _trim_name(text, m.start("value"), m.end("value"))
            if span is not None:
                yield ("PERSON", span[0], span[1], score)
    lowered = _lowered(text)
    for m in _EN_FOR_NAME.finditer(text) if " for " in lowered else ():
        if text[text.rfind(" ", 0, m.start()) + 1 : m.start()].lower() not in _DOCUMENT_WORDS:
            continue
        span = _trim_name(text, m.start("value"), m.end("value"))
        if span is not None and " " in text[span[0] : span[1]]:  # a full name: "summary for Cardiology" is not one
            yield ("PERSON", span[0], span[1], 0.6)
    roles = any(word in lowered for word in _ROLE_WORDS)
    for m in _EN_ROLE_WORD_NAME.finditer(text) if roles else ():
        span = _trim_name(text, m.start("value"), m.end("value"))
        if span is not None and (
            m.group("comma") or " " in text[span[0] : span[1]]
        ):  # "registrar, Jo" / "registrar Jo Bloggs"
            yield ("PERSON", span[0], span[1], 0.6)
    for m in _EN_BY_NAME.finditer(text) if "by" in text else ():
        verb = _verb_before(text, m.start())
        span = _trim_name(text, m.start("value"), m.end("value"))
        if span is None or verb in _NOT_AGENT_VERBS:
            continue
        if verb in _AGENT_VERBS or (verb.endswith(("ed", "en", "wn")) and " " in text[span[0] : span[1]]):
            yield ("PERSON", span[0], span[1], 0.6)


_NAME_TOKEN = _c(rf"{_EN_TOKEN}|[가-힣]{{2,4}}")
# After a word that is a drug (a dose follows) or a label ("Hosp. No."), not a name.
_DOSE_AFTER = _c(r"[ \t]\d+(?:[.,]\d+)?[ \t]?(?i:mg|mcg|µg|g|units?|iu|ml|mmol|meq|puffs?|tabs?|%)\b|" + _LABEL)


def model_person_ok(text: str, start: int, end: int) -> bool:
    """Whether a PERSON span from an NER model looks like a name: name-shaped tokens only (no digits,
    no lower-case words, nothing in a script the model may not read), none of them a stop word, not a
    lone eponym, and not a word followed by a dose (models tag drug names as people: "Levetiracetam 500 mg")."""
    tokens = text[start:end].replace(",", " ").split()
    if not tokens or not all(_NAME_TOKEN.fullmatch(t) for t in tokens):
        return False
    if any(t.rstrip(".") in _EN_GRAMMAR or t in KR_STOPWORDS or t[:2] in KR_STOPWORDS for t in tokens):
        return False
    if len(tokens) == 1 and _eponym_base(tokens[0]) in EPONYMS:
        return False
    return _DOSE_AFTER.match(text, end) is None


def refine_people(text: str, candidates: list[Candidate]) -> list[Candidate]:
    """Person spans from every source (rules, mentions found elsewhere, an NER model), made whole:
    widened to the adjacent name tokens, and dropped where the word names a disease ("Bell's palsy",
    "Guillain-Barré syndrome")."""
    out = []
    for kind, start, end, score in candidates:
        if kind == "PERSON":
            tokens = text[start:end].split()
            if eponym_used(text, end) and (len(tokens) == 1 or all(_eponym_base(t) in EPONYMS for t in tokens)):
                continue  # one word before "'s disease", "syndrome", ...: the disease's name, listed eponym or not
            start, end = expand_person(text, start, end)
        out.append((kind, start, end, score))
    return out


# -- assembly ---------------------------------------------------------------------------------


def mrn_rules(patterns: list[str] | tuple[str, ...]) -> list[Rule]:
    return [Rule("MRN", re.compile(p), 0.85) for p in patterns]


def _record_number(m: re.Match[str], text: str) -> float | None:
    return 0.55 if sum(ch.isdigit() for ch in m.group("value")) >= 5 else None


# Any other "<word> no. / number / # / ID <code>" and "<...>번호 <code>" (admission no., Acc#, 입원번호,
# 접수번호): a record number of some kind. The score is below every specific identifier's, so a phone
# number after 전화번호 or an account after 계좌번호 keeps its own type when the spans are merged.
_RECORD_VALUE = rf"(?P<value>{_RECORD_CODE})(?![\dA-Za-z])"
_RECORD_NUMBERS = [
    Rule(
        "MRN",
        _c(
            rf"(?<=[A-Za-z.])(?:[ \t](?i:no\.?|num\.?|number)|[ \t]?(?:ID|#))[ \t]*(?:is|was)?[ \t]*[:#.]?[ \t]*{_RECORD_VALUE}",
            first="[ \tI#]",
        ),
        0.55,
        _record_number,
    ),
    Rule(
        "MRN",
        _c(
            rf"번(?<=[가-힣]번)(?<!주민번)(?<!주민등록번)(?<!외국인등록번)호[ \t]*(?:는|은|가|이)?[ \t]*[:：#.]?[ \t]*{_RECORD_VALUE}"
        ),  # (?<=[가-힣])번호
        0.55,
        _record_number,
    ),
]


class OnePass:
    """Rules that all start at a digit (or at the "(" or "+" before one), found in one pass over the
    text instead of a scan each: one pattern finds the places where any rule's ``lead`` holds and
    says which, and each rule is then tried there only (``.match``), in order and skipping the
    places inside its previous match: exactly the matches its own ``finditer`` finds, as a rule's
    matches all start where its lead holds."""

    def __init__(self, members: list[tuple[re.Pattern[str], str]]):
        self.regexes = [regex for regex, _ in members]
        leads = [lead for _, lead in members]
        which = "".join(f"(?:(?={lead})())?" for lead in leads)  # group i: empty where lead i holds
        # A place: "+", or a digit or "(" with no digit before it (every rule here has that lookbehind,
        # or a "+" first), where some lead holds. The character is matched first and the rest looked
        # at from behind it, so that ``re`` skips every other character without trying the pattern.
        self.places = re.compile(
            rf"[\d(+](?<=(?:(?=\+)|(?<!\d))(?={'|'.join(f'(?:{lead})' for lead in leads)}){which}.)"
        )

    def scan(self, text: str) -> list[list[re.Match[str]]]:
        found: list[list[re.Match[str]]] = [[] for _ in self.regexes]
        after = [0] * len(self.regexes)  # where each rule's next match may start
        regexes = self.regexes
        for place in self.places.finditer(text):
            at = place.start()
            for i, held in enumerate(place.groups()):
                if held is not None and at >= after[i]:
                    m = regexes[i].match(text, at)
                    if m is not None:
                        found[i].append(m)
                        after[i] = m.end()
        return found


# Finders that are one regular expression's matches turned into findings: (the expression, its lead,
# the findings of its matches), so that the one pass can find them too.
_FINDER_PASS: dict[
    Callable[..., Iterator[Candidate]], tuple[re.Pattern[str], str, Callable[..., Iterator[Candidate]]]
] = {
    _registration_numbers: (_RRN, _RRN_LEAD, _registration_candidates),
}


def scanner(recognizers: list[Recognizer]) -> Callable[[str], list[Candidate]]:
    """``text -> [every recognizer's findings, in order]``: the same list as calling each recognizer's
    ``find`` in turn, with the rules that have a lead found in one pass (``OnePass``)."""
    members: list[tuple[re.Pattern[str], str]] = []
    steps: list[tuple[int, Callable[..., Iterator[Candidate]]]] = []  # (member index or -1, how)
    for recognizer in recognizers:
        for rule in recognizer.rules:
            if rule.lead is not None and rule.gate is None and not rule.words:
                steps.append((len(members), rule.candidates))
                members.append((rule.regex, rule.lead))
            else:
                steps.append((-1, rule.find))
        if recognizer.finder is not None:
            joined = _FINDER_PASS.get(recognizer.finder)
            if joined is not None:
                steps.append((len(members), joined[2]))
                members.append((joined[0], joined[1]))
            else:
                steps.append((-1, recognizer.finder))
    one_pass = OnePass(members)

    def scan(text: str) -> list[Candidate]:
        found = one_pass.scan(text)
        out: list[Candidate] = []
        for index, how in steps:
            out.extend(how(text) if index < 0 else how(found[index], text))
        return out

    return scan


def build_recognizers(mrn_patterns: list[str] | tuple[str, ...] = DEFAULT_MRN_PATTERNS) -> list[Recognizer]:
    return [
        Recognizer("MedopsRegistrationNumberRecognizer", ["KR_RRN", "KR_FRN"], finder=_registration_numbers),
        Recognizer("MedopsDriverLicenseRecognizer", ["KR_DRIVER_LICENSE"], _DRIVER),
        Recognizer("MedopsPassportRecognizer", ["KR_PASSPORT", "PASSPORT"], _PASSPORT),
        Recognizer("MedopsSsnRecognizer", ["US_SSN"], _SSN),
        Recognizer("MedopsInsuranceRecognizer", ["HEALTH_INSURANCE_ID"], _INSURANCE),
        Recognizer("MedopsMrnRecognizer", ["MRN"], mrn_rules(mrn_patterns) + _RECORD_NUMBERS),
        Recognizer("MedopsPhoneRecognizer", ["PHONE_NUMBER"], _PHONE),
        Recognizer("MedopsEmailRecognizer", ["EMAIL_ADDRESS"], _EMAIL),
        Recognizer("MedopsUrlRecognizer", ["URL"], _URL),
        Recognizer("MedopsIpRecognizer", ["IP_ADDRESS"], _IP),
        Recognizer("MedopsFinancialRecognizer", ["CREDIT_CARD", "BANK_ACCOUNT"], _FINANCIAL),
        Recognizer("MedopsDateRecognizer", ["DATE_OF_BIRTH", "DATE"], finder=_dates),
        Recognizer("MedopsAgeRecognizer", ["AGE_OVER_89"], _AGE),
        Recognizer("MedopsAddressRecognizer", ["ADDRESS"], _KR_ADDRESS + _EN_ADDRESS, finder=_labelled_addresses),
        Recognizer("MedopsKoreanNameRecognizer", ["PERSON"], finder=_korean_names),
        Recognizer("MedopsEnglishNameRecognizer", ["PERSON"], finder=_english_names),
    ]
