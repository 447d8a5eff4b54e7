"""Detector precision on clinical notes (issue 24, item 2): common Korean clinical phrases are never
names; names that begin with a clinical word still are; measured on notes the rules were not tuned on."""

from __future__ import annotations

import pytest
from clinical_notes import precision_recall

from medops.privacy import detect


@pytest.mark.parametrize("part", ["dev", "heldout"])
def test_precision_and_recall_on_clinical_notes(part):
    result = precision_recall(detect, part)
    assert result["precision"] >= 0.99, result["false_positives"][:10]
    assert result["recall"] >= 0.99


@pytest.mark.parametrize(
    "text",
    [
        "흉부 CT상 폐렴 소견입니다.",
        "수술 후 경과 양호입니다.",
        "주치의 소견 참조.",
        "담당의 소견상 수술이 필요합니다.",
        "67세 여자 환자로 내원하였습니다.",
        "권고는 금연입니다.",
    ],
)
def test_common_clinical_phrases_are_not_names(text):
    assert [e for e in detect(text) if e.type == "PERSON"] == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("환자 정상우(남/45세) 내원.", "정상우"),
        ("저는 조영숙입니다.", "조영숙"),
        ("환자 이상민(45세) 검사함.", "이상민"),
        ("안녕하세요, 저는 김현입니다.", "김현"),
        ("보호자 이상희 님께 설명함.", "이상희"),
    ],
)
def test_names_that_start_with_a_clinical_word_are_still_names(text, name):
    assert [text[e.start : e.end] for e in detect(text) if e.type == "PERSON"] == [name]
