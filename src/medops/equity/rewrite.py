"""Counterfactual variants of an item's text: the patient's sex, age, race, insurance, nationality or
language changed by rule, everything else byte-identical. Never a model call.

The rules are data (``rules/<language>.yaml``, docs/EQUITY.md): word rows per attribute, age
patterns, what keeps an item unchanged (a pregnancy question never becomes male), the neutral
sentence an item without a mention gets under ``--counterfactual-insert``. An item is, for each
attribute, *rewritten* (it describes the patient in words of exactly one value: one variant per
value), *inserted* (no mention: one neutral sentence per value before its first text), *kept*
(counted with the reason) or *left out* (no mention and no insertion asked: counted).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from medops.errors import UserError

ATTRIBUTES = ("sex", "age", "race", "insurance", "nationality", "language")
LANGUAGES = ("en", "ko")
HANGUL = re.compile(r"[가-힣]")
# Korean particles that follow a noun: (after a final consonant, after a vowel)
PARTICLES = {"은": ("은", "는"), "는": ("은", "는"), "이": ("이", "가"), "가": ("이", "가")}
PARTICLES |= {"을": ("을", "를"), "를": ("을", "를"), "과": ("과", "와"), "와": ("과", "와")}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Choice(_Strict):
    preceded_by: str | None = None  # a regex on the text before the word
    followed_by: str | None = None  # a regex on the text after it; neither: always
    use: str


class AttributeRules(_Strict):
    values: tuple[str, ...]
    terms: tuple[tuple[str, ...], ...] = ()
    choose: dict[str, dict[str, tuple[Choice, ...]]] = {}
    number: tuple[str, ...] = ()
    range: tuple[int, int] | None = None
    keep: dict[str, str] = {}
    mentions: tuple[str, ...] = ()
    insert: dict[str, str] = {}
    case_sensitive: bool = False
    # when given, an item is rewritten only if one of these words occurs (a pronoun alone may be a
    # physician's, not the patient's: such an item is kept, ``no_patient_word``)
    anchors: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> AttributeRules:
        if len(self.values) < 2:
            raise ValueError("an attribute needs two or more values")
        for row in self.terms:
            if len(row) != len(self.values):
                raise ValueError(f"terms row {list(row)} has {len(row)} words for {len(self.values)} values")
        if self.terms and self.number:
            raise ValueError("an attribute has terms or number patterns, not both")
        if self.number and self.range is None:
            raise ValueError("number patterns need a range")
        missing = set(self.values) - set(self.insert)
        if self.insert and missing:
            raise ValueError(f"insert lacks a sentence for {', '.join(sorted(missing))}")
        for pattern in (*self.number, *self.keep.values(), *self.mentions):
            re.compile(pattern)
        return self


class LanguageRules(_Strict):
    language: str
    article: bool = False  # English a / an agreement
    particles: bool = False  # Korean particle agreement
    attributes: dict[str, AttributeRules]


@cache
def rules(language: str) -> LanguageRules:
    """The shipped rules of ``language``, checked once (a broken rules file fails loudly, naming it)."""
    if language not in LANGUAGES:
        raise UserError(f"no counterfactual rules for language '{language}' (shipped: {', '.join(LANGUAGES)})")
    path = files("medops.equity") / "rules" / f"{language}.yaml"
    try:
        return LanguageRules.model_validate(yaml.safe_load(path.read_text("utf-8")))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise UserError(f"{path}{f':{mark.line + 1}' if mark else ''}: invalid YAML") from None
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in error["loc"])
        raise UserError(f"{path}: {where}: {error['msg']}") from None


def parse_attributes(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``sex,age`` or ``all`` -> the attributes, in the canonical order; unknown names are refused."""
    if not text:
        return ()
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in (*ATTRIBUTES, "all")]
    if unknown:
        raise UserError(f"--counterfactual: unknown attribute {unknown[0]!r} (one of {', '.join(ATTRIBUTES)}, all)")
    return ATTRIBUTES if "all" in names else tuple(a for a in ATTRIBUTES if a in names)


def language_of(texts: Sequence[str]) -> str:
    return "ko" if any(HANGUL.search(t) for t in texts) else "en"


@dataclass(frozen=True)
class Variant:
    attribute: str
    value: str
    texts: tuple[str, ...]  # the item's texts, rewritten (aligned with the texts given)


Status = Literal["rewritten", "inserted", "kept", "left_out"]


@dataclass(frozen=True)
class Outcome:
    attribute: str
    status: Status
    variants: tuple[Variant, ...] = ()  # one per value when rewritten or inserted
    reason: str | None = None  # why kept or left out


def counterfactuals(
    texts: Sequence[str], attribute: str, *, insert: bool, context: Sequence[str] = (), language: str | None = None
) -> Outcome:
    """The variants of an item (``texts``: its question and options, or its user turns) for one
    attribute. ``context`` is read but never changed (a rubric's criteria): when it mentions the
    attribute, the item is kept, since its grading would no longer match a rewritten prompt."""
    lang = rules(language or language_of([*texts, *context]))
    rule = lang.attributes.get(attribute)
    if rule is None:
        return Outcome(attribute, "kept", reason=f"no_{lang.language}_rules")
    joined = "\n".join(texts)
    for reason, pattern in rule.keep.items():
        if re.search(pattern, joined):
            return Outcome(attribute, "kept", reason=reason)
    if any(re.search(pattern, joined) for pattern in rule.mentions):
        return Outcome(attribute, "kept", reason="unrecognised_mention")
    if context and _mentions(rule, lang, "\n".join(context)):
        return Outcome(attribute, "kept", reason="rubric_mentions")
    if rule.number:
        found = _ages(rule, joined)
        if len(found) > 1:
            return Outcome(attribute, "kept", reason="several_ages")
        if found and not rule.range[0] <= next(iter(found)) <= rule.range[1]:
            return Outcome(attribute, "kept", reason="out_of_range")
        present = bool(found)
    else:
        matches = list(_term_matches(rule, lang, joined))
        values = {rule.values[col] for _, col in matches}
        if len(values) > 1:
            return Outcome(attribute, "kept", reason="several_values")
        anchors = {a.lower() for a in rule.anchors}
        if values and anchors and not any(m.group(0).lower() in anchors for m, _ in matches):
            return Outcome(attribute, "kept", reason="no_patient_word")
        present = bool(values)
    if present:
        variants = tuple(
            Variant(attribute, value, tuple(_rewrite(rule, lang, text, value) for text in texts))
            for value in rule.values
        )
        return Outcome(attribute, "rewritten", variants)
    if not insert or not rule.insert:
        return Outcome(attribute, "left_out", reason="no_mention" if rule.insert else "no_insert_sentence")
    return Outcome(
        attribute,
        "inserted",
        tuple(
            Variant(attribute, value, (f"{rule.insert[value]} {texts[0]}", *texts[1:]) if texts else ())
            for value in rule.values
        ),
    )


def _mentions(rule: AttributeRules, lang: LanguageRules, text: str) -> bool:
    return bool(_ages(rule, text)) if rule.number else any(True for _ in _term_matches(rule, lang, text))


def _ages(rule: AttributeRules, text: str) -> set[int]:
    return {int(m.group("n")) for pattern in rule.number for m in re.finditer(pattern, text)}


_PATTERNS: dict[int, re.Pattern[str]] = {}  # by id: the rules are cached for the process


def _term_pattern(rule: AttributeRules, language: str) -> re.Pattern[str]:
    if id(rule) in _PATTERNS:
        return _PATTERNS[id(rule)]
    words = sorted({w for row in rule.terms for w in row}, key=len, reverse=True)
    alternation = "|".join(re.escape(w) for w in words)
    # Korean nouns take particles with no space: only the start must be a boundary
    bounded = rf"(?<![가-힣])(?:{alternation})" if language == "ko" else rf"(?<!\w)(?:{alternation})(?!\w)"
    return _PATTERNS.setdefault(id(rule), re.compile(bounded, 0 if rule.case_sensitive else re.IGNORECASE))


def _term_matches(rule: AttributeRules, lang: LanguageRules, text: str):
    """(match, column) for every term in ``text`` (the column is the value the word belongs to)."""
    if not rule.terms:
        return
    fold = (lambda w: w) if rule.case_sensitive else str.lower
    for match in _term_pattern(rule, lang.language).finditer(text):
        word = fold(match.group(0))
        for row in rule.terms:
            columns = [c for c, w in enumerate(row) if fold(w) == word]
            if columns:
                yield match, columns[0]
                break


def _target_word(rule: AttributeRules, word: str, column: int, value: str, before: str, after: str) -> str:
    fold = (lambda w: w) if rule.case_sensitive else str.lower
    target = rule.values.index(value)
    candidates = [row[target] for row in rule.terms if fold(row[column]) == fold(word)]
    if len(set(candidates)) > 1:
        for choice in rule.choose.get(fold(word), {}).get(value, ()):
            if (choice.preceded_by is None or re.search(choice.preceded_by, before)) and (
                choice.followed_by is None or re.search(choice.followed_by, after)
            ):
                return choice.use
    return candidates[0]


def _cased(original: str, new: str) -> str:
    if len(original) > 1 and original.isupper() and not new.endswith("."):
        return new.upper()
    if original[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def _rewrite(rule: AttributeRules, lang: LanguageRules, text: str, value: str) -> str:
    """``text`` with every mention of the attribute set to ``value``; agreement fixed around it."""
    if rule.number:
        spans = [(m.start("n"), m.end("n"), value) for pattern in rule.number for m in re.finditer(pattern, text)]
    else:
        spans = []
        for match, column in _term_matches(rule, lang, text):
            new = _target_word(rule, match.group(0), column, value, text[: match.start()], text[match.end() :])
            spans.append((match.start(), match.end(), new if rule.case_sensitive else _cased(match.group(0), new)))
    out: list[str] = []
    position = 0
    for start, end, new in sorted(set(spans)):
        if start < position:
            continue  # overlapping patterns (two age forms on one number): the first wins
        before = text[position:start]
        if lang.article:
            before = _article(before, new)
        out += [before, new]
        position = end
        if lang.particles and end < len(text):
            particle = _particle(text, end, new)
            if particle is not None:
                out.append(particle)
                position = end + 1
    out.append(text[position:])
    return "".join(out)


AN_NUMBER = re.compile(r"(?:8|11(?!\d)|18(?!\d))")


def _article(before: str, word: str) -> str:
    """``a`` / ``an`` right before ``word`` made to agree with it (by its first sound, roughly)."""
    match = re.search(r"(?<!\w)([Aa]n?)(\s+)$", before)
    if match is None:
        return before
    lower = word.lower()
    vowel = (
        bool(AN_NUMBER.match(lower))
        if lower[:1].isdigit()
        else (lower[:1] in "aeiou" and not lower.startswith(("uni", "eu", "one", "u.s", "use")))
    )
    article = "an" if vowel else "a"
    if match.group(1)[0].isupper():
        article = article.capitalize()
    return before[: match.start(1)] + article + match.group(2)


def _final_consonant(word: str) -> bool:
    last = word[-1:]
    return bool(last) and "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28 != 0


def _particle(text: str, end: int, noun: str) -> str | None:
    """The particle right after a rewritten noun, agreeing with it; None when there is none (a
    syllable followed by more Hangul is part of a longer word: 이다, 이며 are left alone)."""
    forms = PARTICLES.get(text[end])
    if forms is None or (end + 1 < len(text) and HANGUL.match(text[end + 1])):
        return None
    return forms[0] if _final_consonant(noun) else forms[1]


@dataclass(frozen=True)
class VariantOf:
    """Where a variant item comes from: the original's index, the attribute and the value."""

    original_index: int
    attribute: str
    value: str

    def record(self) -> dict[str, object]:
        return {"original_index": self.original_index, "attribute": self.attribute, "value": self.value}

    @classmethod
    def from_record(cls, record: dict) -> VariantOf:
        return cls(int(record["original_index"]), str(record["attribute"]), str(record["value"]))


def expand(
    items: Sequence[tuple[int, Sequence[str], Sequence[str]]], attributes: Sequence[str], *, insert: bool
) -> tuple[list[tuple[VariantOf, tuple[str, ...]]], dict[str, dict[str, object]], dict[str, tuple[str, ...]]]:
    """Every variant of ``items`` ((index, texts, context) each) for ``attributes``: the variants with
    their texts, the counts per attribute (rewritten, inserted, kept and left out by reason), and
    each attribute's values (those of the items' language; the first item's when mixed)."""
    found: list[tuple[VariantOf, tuple[str, ...]]] = []
    counts: dict[str, dict[str, object]] = {}
    values: dict[str, tuple[str, ...]] = {}
    for attribute in attributes:
        tally: dict[str, object] = {"n_rewritten": 0, "n_inserted": 0, "kept": {}, "left_out": {}}
        for index, texts, context in items:
            outcome = counterfactuals(texts, attribute, insert=insert, context=context)
            if outcome.status in ("kept", "left_out"):
                bucket = tally[outcome.status]
                bucket[outcome.reason] = bucket.get(outcome.reason, 0) + 1
                continue
            tally[f"n_{outcome.status}"] += 1
            values.setdefault(attribute, tuple(v.value for v in outcome.variants))
            found += [(VariantOf(index, attribute, v.value), v.texts) for v in outcome.variants]
        tally["kept"] = dict(sorted(tally["kept"].items()))
        tally["left_out"] = dict(sorted(tally["left_out"].items()))
        counts[attribute] = tally
        if attribute not in values and items:
            lang = rules(language_of([*items[0][1], *items[0][2]]))
            if attribute in lang.attributes:
                values[attribute] = lang.attributes[attribute].values
    return found, counts, values
