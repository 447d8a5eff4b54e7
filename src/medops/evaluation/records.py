"""One record per sample, and the views a benchmark declares over its records.

Every benchmark reads a stored run back as :class:`SampleRecord` s (one per item and repeat it has an
answer for): what was asked, what came back, each judge's assessment, scores, flags and the
item's metadata. Export, reports, the dashboard and ``runs show`` render records and the
benchmark's declared specs (:class:`Bars`, :class:`Histogram`, :class:`Samples`,
:class:`Reliability`, :class:`ExportSpec`, :class:`Headline`, :class:`MetricGroup`) only: no view
knows a benchmark.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from medops.content import Content, digests, map_text, text_of


def modality(messages: Iterable[Message]) -> str:
    """``image`` when any message holds a part that is not text, else ``text``."""
    for m in messages:
        if isinstance(m.content, list) and any(p.get("type") != "text" for p in m.content):
            return "image"
    return "text"


def _maybe(fn: Callable[[str], str], text: str | None) -> str | None:
    return fn(text) if text else text


@dataclass(frozen=True)
class Message:
    role: str
    content: Content

    @property
    def text(self) -> str:
        return text_of(self.content)


@dataclass(frozen=True)
class Assessment:
    """One judgement of a sample: a rubric criterion by one judge, or an exam answer read by a rule."""

    name: str  # the criterion's text, or what was assessed ("answer")
    judge: str  # who gave it: the grader's label, or the rule that read an answer
    value: bool | float | str | None  # None: no verdict (see reason)
    explanation: str | None = None  # the judge's own words, or the rule that read the answer
    reason: str | None = None  # why there is no verdict (unreadable reply, failed call)
    p: float | None = None  # P(met), when the judge gives one
    points: float | None = None  # the criterion's weight
    tags: tuple[str, ...] = ()
    answer: str | None = None  # what was read from the output (an exam's letter)
    recorded: bool = True  # the store holds an outcome for it (False: never asked yet)

    def map_text(self, fn: Callable[[str], str]) -> Assessment:
        return replace(
            self, name=fn(self.name), explanation=_maybe(fn, self.explanation), reason=_maybe(fn, self.reason)
        )


@dataclass(frozen=True)
class SampleRecord:
    """One item (at one repeat) of a run, as every view sees it."""

    index: int  # position in the data
    repeat: int
    item_id: str
    input: tuple[Message, ...]
    output: Content | None  # the model's (or given) response; None when the call failed
    error: str | None = None  # why there is no output
    finish_reason: str | None = None
    choices: dict[str, str] = field(default_factory=dict)  # an exam's options, by letter
    target: str | None = None  # the gold answer, where there is one
    scores: dict[str, float | None] = field(default_factory=dict)
    assessments: tuple[Assessment, ...] = ()
    tags: tuple[str, ...] = ()  # labels shown with the sample (a rubric example's tags)
    metadata: dict[str, Any] = field(default_factory=dict)  # theme, subject, language, modality...
    flags: frozenset[str] = frozenset()  # e.g. failed, negative_met, ungraded, wrong, unparsed
    # a counterfactual variant (docs/EQUITY.md): {original_index, attribute, value}; None for an original
    variant: dict[str, Any] | None = None

    @property
    def prompt_text(self) -> str:
        """The text of the last user turn (the question, for an exam)."""
        users = [m for m in self.input if m.role == "user"]
        return users[-1].text if users else ""

    def map_text(self, fn: Callable[[str], str], image: Callable[[dict[str, Any]], Any] | None = None) -> SampleRecord:
        """The record with ``fn`` applied to every text a person or model wrote (PHI redaction), and
        each image part replaced by ``image(part)`` when given (an image cannot be redacted)."""
        return replace(
            self,
            input=tuple(Message(m.role, map_text(m.content, fn, image)) for m in self.input),
            output=map_text(self.output, fn, image),
            error=_maybe(fn, self.error),
            choices={k: fn(v) if v else v for k, v in self.choices.items()},
            assessments=tuple(a.map_text(fn) for a in self.assessments),
        )

    def as_dict(self, flags: Iterable[str] = ()) -> dict[str, Any]:
        """Plain data (the dashboard's JSON): ``prompt`` and ``response`` as before, each declared flag
        also as a boolean key, and ``score`` the sample's headline score."""
        return {
            "index": self.index,
            "repeat": self.repeat,
            "item_id": self.item_id,
            "prompt": [{"role": m.role, "content": m.content} for m in self.input],
            "choices": dict(self.choices),
            "target": self.target,
            "response": self.output,
            "error": self.error,
            "finish_reason": self.finish_reason,
            "scores": dict(self.scores),
            "assessments": [_assessment_dict(a) for a in self.assessments],
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
            "flags": sorted(self.flags),
            **{flag: flag in self.flags for flag in flags},
            **({"variant": dict(self.variant)} if self.variant is not None else {}),
        }


_ASSESSMENT_FIELDS = tuple(f.name for f in fields(Assessment))


def _assessment_dict(a: Assessment) -> dict[str, Any]:
    """``dataclasses.asdict(a)`` with ``tags`` as a list: the same dict, built without asdict's deep
    copy (every value is immutable) because a run's close makes one per criterion of every sample."""
    found = {name: getattr(a, name) for name in _ASSESSMENT_FIELDS}
    found["tags"] = list(a.tags)
    return found


# declared views ------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetricGroup:
    """Summary metrics shown together: those named ``prefix...`` (an empty prefix: every metric),
    labelled without the prefix."""

    name: str
    prefix: str

    def rows(self, metrics: dict[str, Any]) -> list[tuple[str, float, float]]:
        """(label, mean, bootstrap std) of every metric of the group that has a mean."""
        return [
            (name.removeprefix(self.prefix), m["mean"], m.get("bootstrap_std") or 0.0)
            for name, m in metrics.items()
            if name.startswith(self.prefix) and isinstance(m, dict) and m.get("mean") is not None
        ]


def ordered_metrics(metrics: dict[str, Any], groups: Iterable[MetricGroup]) -> list[tuple[str, Any]]:
    """Every metric once: those in no named group first (the headline), then group by group."""
    named = [g for g in groups if g.prefix]
    ordered = [(n, m) for n, m in metrics.items() if not any(n.startswith(g.prefix) for g in named)]
    for group in named:
        seen = {n for n, _ in ordered}
        ordered += [(n, m) for n, m in metrics.items() if n.startswith(group.prefix) and n not in seen]
    return ordered


@dataclass(frozen=True)
class Bars:
    """A bar per summary metric of ``group`` (mean ± bootstrap std)."""

    title: str
    group: str
    kind: str = "bars"


@dataclass(frozen=True)
class Histogram:
    """The spread of the records' ``scores[score]``, leaving out records with any flag in ``unless``."""

    title: str
    score: str
    unless: tuple[str, ...] = ()
    kind: str = "histogram"

    def values(self, records: Iterable[SampleRecord]) -> list[float]:
        return [
            v
            for r in records
            if (v := r.scores.get(self.score)) is not None and not any(f in r.flags for f in self.unless)
        ]


@dataclass(frozen=True)
class Flag:
    """A filter over samples: ``key`` is the record flag, ``label`` the filter's name, ``badge`` what a
    flagged sample shows, ``css`` its style class and ``short`` the report's filter attribute."""

    key: str
    label: str
    badge: str
    css: str = ""
    short: str = ""

    @property
    def attr(self) -> str:
        return self.short or self.key


@dataclass(frozen=True)
class Samples:
    """A list of samples: every record, or only those flagged ``only``; filters by ``flags``; each
    sample shows ``scores[score]`` when named."""

    title: str
    flags: tuple[Flag, ...] = ()
    only: str | None = None
    score: str | None = None
    kind: str = "samples"

    def chosen(self, records: Iterable[SampleRecord]) -> list[SampleRecord]:
        return [r for r in records if self.only is None or self.only in r.flags]


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram from the run's summary: ``summary[bins]`` (per confidence bin its range,
    size, mean confidence and accuracy) with the figures of ``summary[figures]`` (ECE, Brier...)."""

    title: str
    bins: str = "reliability"
    figures: str = "calibration"
    kind: str = "reliability"

    def of(self, summary: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return summary.get(self.bins) or [], summary.get(self.figures) or {}


View = Bars | Histogram | Samples | Reliability


@dataclass(frozen=True)
class Count:
    key: str  # a summary key
    label: str


@dataclass(frozen=True)
class Headline:
    """How a run's size reads: ``N {unit}``, then the ``counts`` (the short form: ``brief``)."""

    unit: str
    counts: tuple[Count, ...] = ()
    brief: tuple[Count, ...] = ()


@dataclass(frozen=True)
class Column:
    key: str
    source: str  # a record field (``index``, ``output``, ``prompt_text``...), ``a.<field>`` of the
    # assessment, ``a.position`` its position in the record, or ``first.<field>`` of the first one


@dataclass(frozen=True)
class ExportSpec:
    """``medops export``'s rows: one per recorded assessment (``per="assessment"``) or per record,
    with these columns, records ordered by ``order`` (record fields)."""

    columns: tuple[Column, ...]
    per: str = "record"
    order: tuple[str, ...] = ("index", "repeat")

    def rows(self, records: Iterable[SampleRecord]) -> list[dict[str, Any]]:
        """The rows; a set with images adds ``images`` (each row's image digests, never bytes), so
        text-only exports keep their columns; a run with counterfactual variants adds ``variant``
        (attribute and value, null for an original) and ``original_index``."""
        ordered = sorted(records, key=lambda r: tuple(getattr(r, f) for f in self.order))
        images = {id(r): digests([m.content for m in r.input]) for r in ordered}
        with_images = any(images.values())
        with_variants = any(r.variant is not None for r in ordered)
        rows = []
        for r in ordered:
            units = (
                [(i, a) for i, a in enumerate(r.assessments) if a.recorded] if self.per == "assessment" else [(0, None)]
            )
            for i, a in units:
                row = {c.key: _value(r, a, i, c.source) for c in self.columns}
                if with_images:
                    row["images"] = images[id(r)]
                if with_variants:
                    v = r.variant
                    row["variant"] = None if v is None else {"attribute": v["attribute"], "value": v["value"]}
                    row["original_index"] = r.index if v is None else v["original_index"]
                rows.append(row)
        return rows


def _value(record: SampleRecord, assessment: Assessment | None, position: int, source: str) -> Any:
    if source == "a.position":
        return position
    where, _, name = source.partition(".")
    if where == "first":
        assessment, where = (record.assessments[0] if record.assessments else None), "a"
    if where == "a" and name:
        value = getattr(assessment, name) if assessment is not None else None
    else:
        value = getattr(record, source)
    return list(value) if isinstance(value, tuple) else value
