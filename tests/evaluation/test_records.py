"""Sample records: the one shape every view reads, whatever a message's content holds."""

from __future__ import annotations

import base64
import hashlib

from medops.content import digests
from medops.evaluation.records import (
    Assessment,
    Column,
    ExportSpec,
    Histogram,
    Message,
    MetricGroup,
    SampleRecord,
    Samples,
    modality,
    ordered_metrics,
    text_of,
)

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
PARTS = [{"type": "text", "text": "John has a rash"}, IMAGE, {"type": "text", "text": "what is it?"}]


def record(**changes) -> SampleRecord:
    fields = dict(
        index=2,
        repeat=1,
        item_id="p2",
        input=(Message("system", "Be brief."), Message("user", PARTS)),
        output="John: eczema",
        scores={"score": 0.5},
        assessments=(
            Assessment("Names John's condition", "openai:g", True, explanation="John: yes", points=2.0),
            Assessment("Never asked", "openai:g", None, points=1.0, recorded=False),
        ),
        flags=frozenset({"ungraded"}),
    )
    return SampleRecord(**{**fields, **changes})


def test_content_is_read_through_a_text_view_strings_and_parts_alike():
    assert text_of("plain") == "plain" and text_of(None) == ""
    assert text_of(PARTS) == "John has a rash\nwhat is it?"
    r = record()
    assert r.prompt_text == "John has a rash\nwhat is it?"
    assert modality(r.input) == "image" and modality((Message("user", "text only"),)) == "text"


def test_map_text_reaches_every_text_and_leaves_image_parts_alone():
    redacted = record().map_text(lambda t: t.replace("John", "[PERSON_1]"))
    (text_a, image, text_b) = redacted.input[1].content
    assert text_a["text"] == "[PERSON_1] has a rash" and image == IMAGE and text_b["text"] == "what is it?"
    assert redacted.input[0].content == "Be brief." and redacted.output == "[PERSON_1]: eczema"
    first = redacted.assessments[0]
    assert first.name == "Names [PERSON_1]'s condition" and first.explanation == "[PERSON_1]: yes"
    assert record().input[1].content[0]["text"] == "John has a rash"  # the original is untouched


def test_export_rows_follow_the_declared_columns_and_skip_what_was_never_asked():
    per_criterion = ExportSpec(
        per="assessment",
        order=("repeat", "index"),
        columns=(Column("i", "index"), Column("c", "a.position"), Column("met", "a.value"), Column("why", "a.reason")),
    )
    later, earlier = record(), record(index=5, repeat=0)
    image = digests(PARTS)  # a set with images: every row also names its record's images, by digest
    assert image == [hashlib.sha256(base64.b64decode("AAAA")).hexdigest()]
    assert per_criterion.rows([later, earlier]) == [
        {"i": 5, "c": 0, "met": True, "why": None, "images": image},
        {"i": 2, "c": 0, "met": True, "why": None, "images": image},
    ]
    text_only = record(input=(Message("user", "John has a rash"),))
    assert per_criterion.rows([text_only]) == [{"i": 2, "c": 0, "met": True, "why": None}]
    per_record = ExportSpec(
        columns=(Column("id", "item_id"), Column("read", "first.answer"), Column("q", "prompt_text"))
    )
    assert per_record.rows([record(assessments=())]) == [
        {"id": "p2", "read": None, "q": "John has a rash\nwhat is it?", "images": image}
    ]


def test_declared_views_pick_records_and_metrics_by_field_not_by_benchmark():
    assert Histogram("scores", "score", unless=("ungraded",)).values([record(), record(flags=frozenset())]) == [0.5]
    assert Samples("Wrong", only="wrong").chosen([record(), record(flags=frozenset({"wrong"}))])[0].flags == {"wrong"}
    metrics = {"axis:a": {"mean": 0.1}, "overall_score": {"mean": 0.5}, "theme:t": {"mean": 0.2}}
    groups = (MetricGroup("theme", "theme:"), MetricGroup("axis", "axis:"))
    assert [name for name, _ in ordered_metrics(metrics, groups)] == ["overall_score", "theme:t", "axis:a"]
    assert groups[0].rows(metrics) == [("t", 0.2, 0.0)]
    assert MetricGroup("all", "").rows(metrics) == [
        ("axis:a", 0.1, 0.0),
        ("overall_score", 0.5, 0.0),
        ("theme:t", 0.2, 0.0),
    ]
