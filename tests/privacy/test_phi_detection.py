"""PHI detection and redaction: quality floors on the synthetic corpus, and the Redactor's contract."""

from __future__ import annotations

import itertools

import pytest
from phi_corpus import CLEAN, clinical_terms_kept, documents, score

from medops.errors import UserError
from medops.privacy import ENTITY_TYPES, Entity, Redactor, detect, missing_components
from medops.privacy.engine import load_config


@pytest.fixture(scope="module")
def quality() -> dict:
    return score(detect)


def test_detection_works_offline_with_nothing_missing():
    assert missing_components() is None
    assert detect("") == []
    assert all(isinstance(e, Entity) for e in detect("MRN: 12345678"))


def test_corpus_is_large_enough():
    docs = documents()
    assert sum(len(d.spans) for d in docs) >= 300
    assert {d.kind for d in docs} == {"note", "chat", "letter"}
    assert any("환자" in d.text for d in docs) and any("Patient" in d.text for d in docs)


def test_recall_floors(quality):
    groups = quality["groups"]
    assert groups["structured"]["recall"] >= 0.98, quality["misses"]
    assert groups["names"]["recall"] >= 0.90, quality["misses"]
    assert groups["dates_ages"]["recall"] >= 0.90, quality["misses"]
    assert groups["addresses"]["recall"] >= 0.90, quality["misses"]


def test_precision_floors(quality):
    for name, group in quality["groups"].items():
        assert group["precision"] >= 0.9, (name, quality["false_positives"])


def test_every_documented_type_is_in_the_corpus(quality):
    assert set(quality["per_type"]) <= set(ENTITY_TYPES)
    assert set(ENTITY_TYPES) - set(quality["per_type"]) == set()


def test_clinical_terms_survive():
    assert clinical_terms_kept(lambda text: Redactor().redact(text)) >= 0.98


def test_phi_free_clinical_texts_are_left_alone():
    flagged = [(text, detect(text)) for text in CLEAN]
    assert sum(1 for _, found in flagged if found) <= len(CLEAN) * 0.02, [f for f in flagged if f[1]]


@pytest.mark.parametrize(
    "text, kind",
    [
        ("주민등록번호 850101-1234568", "KR_RRN"),  # valid date, valid check digit
        ("주민번호 2107053987650", "KR_RRN"),  # no hyphen, issued after 2020: no check digit, context
        ("RRN 210705-3987650", "KR_RRN"),
        ("외국인등록번호 900101-5234567", "KR_FRN"),
        ("여권번호 M123A4567", "KR_PASSPORT"),
        ("면허번호 서울 12-345678-90", "KR_DRIVER_LICENSE"),
        ("call +82 2-3410-2114 now", "PHONE_NUMBER"),
        ("UK mobile 07700 900123", "PHONE_NUMBER"),
        ("1938년생 남자", "DATE_OF_BIRTH"),
        ("a 96 y/o woman", "AGE_OVER_89"),
        ("서울시 마포구 월드컵북로 396에 거주", "ADDRESS"),
        ("환자 성명: 제갈민호", "PERSON"),
        ("Sincerely,\nAnna Novak", "PERSON"),
    ],
)
def test_single_entities(text, kind):
    assert kind in {e.type for e in detect(text)}


@pytest.mark.parametrize(
    "text",
    [
        "850132-1234567",  # day 32: not a date, not an RRN
        "BP 120/80, HR 72, glucose 5.6 mmol/L, 3/4 tablets",
        "Parkinson's disease and Alzheimer's disease; Dr. visits weekly",
        "고혈압 환자 보호자 교육",
        "an 89-year-old man",  # 89 is not over 89
        "Order 4111 1111 1111 1112 units",  # fails the Luhn check
    ],
)
def test_not_phi(text):
    assert [(e.type, text[e.start : e.end]) for e in detect(text)] == []


def test_placeholders_are_consistent_within_a_redactor_and_distinct_across_values():
    r = Redactor()
    first = r.redact("환자 김민수 님, 연락처 010-1234-5678. Seen by Dr. John Smith.")
    second = r.redact("김민수 님 보호자 이영희 씨가 010-1234-5678 로 전화. Mr. Smith agreed.")
    assert first == "환자 [PERSON_1] 님, 연락처 [PHONE_NUMBER_1]. Seen by Dr. [PERSON_2]."
    assert second == "[PERSON_1] 님 보호자 [PERSON_3] 씨가 [PHONE_NUMBER_1] 로 전화. Mr. [PERSON_2] agreed."
    assert r.counts == {"PERSON": 5, "PHONE_NUMBER": 2}
    assert Redactor().redact("보호자 이영희 씨") == "보호자 [PERSON_1] 씨"  # a new conversation starts again


def test_a_name_seen_earlier_is_redacted_without_context():
    r = Redactor()
    r.redact("환자 성명: 박지훈")
    assert r.redact("박지훈, 오늘 혈압은 어때요?") == "[PERSON_1], 오늘 혈압은 어때요?"
    assert "박지훈" not in repr(r.counts)


def test_entities_are_sorted_and_disjoint():
    text = documents()[0].text
    found = detect(text)
    assert found == sorted(found, key=lambda e: e.start)
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))


def test_site_mrn_patterns_from_config(tmp_path, monkeypatch):
    config = tmp_path / "phi.yaml"
    config.write_text('mrn_patterns:\n  - "SNUH-(?P<value>\\\\d{7})"\n', encoding="utf-8")
    monkeypatch.setenv("MEDOPS_PHI_CONFIG", str(config))
    text = "chart SNUH-1234567 reviewed"
    assert [(e.type, text[e.start : e.end]) for e in detect(text)] == [("MRN", "1234567")]
    assert "MRN" in {e.type for e in detect("MRN: 99887766")}  # the defaults still apply


@pytest.mark.parametrize(
    "content, field",
    [
        ('mrn_patterns: ["(unclosed"]\n', "mrn_patterns[0]"),
        ('mrn_patterns: "MRN\\\\d+"\n', "mrn_patterns"),
        ("mrn_pattern: []\n", "mrn_pattern"),
        ("ner: bert\n", "ner"),
    ],
)
def test_bad_config_is_one_line_user_error(tmp_path, content, field):
    config = tmp_path / "phi.yaml"
    config.write_text(content, encoding="utf-8")
    with pytest.raises(UserError) as info:
        load_config(config)
    message = str(info.value)
    assert str(config) in message and field in message and "\n" not in message


def test_fails_closed_when_presidio_is_missing():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['presidio_analyzer'] = None\n"
        "from medops.privacy import PhiUnavailable, Redactor, detect, missing_components\n"
        "print(missing_components())\n"
        "for call in (lambda: detect('x'), lambda: Redactor().redact('x')):\n"
        "    try:\n        call()\n    except PhiUnavailable as exc:\n        print('refused:', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.splitlines()
    assert len(out) == 3 and "presidio-analyzer" in out[0] and "pip install" in out[0]
    assert out[1] == f"refused: {out[0]}" and out[2] == out[1]
