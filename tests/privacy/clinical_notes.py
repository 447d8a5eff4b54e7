"""Clinical notes for detector precision (issue 24): mostly PHI-free Korean and English clinical prose,
with patient names among them, some of which begin with a clinical word (정상우, 이상민, 조영숙).

Two parts with their own phrases and names: ``dev`` (the phrases the name rules were tuned on) and
``heldout`` (written apart and never used to tune them). ``notes(part, n)`` is deterministic; each
note is (text, [(start, end) of each name]).
"""

from __future__ import annotations

import random

DEV_PHRASES = (
    "67세 여자 환자로 내원하였습니다.",
    "흉부 CT상 폐렴 소견입니다.",
    "우측 하엽에 경화 소견이 관찰됩니다.",
    "남자 환자 분 혈압 130/80입니다.",
    "복부 초음파상 지방간 소견입니다.",
    "고령 환자 낙상 위험 있음.",
    "노인 환자입니다.",
    "여자 환자분께서 두통 호소.",
    "이전 검사와 비교하여 호전 소견입니다.",
    "신장 기능 저하 소견입니다.",
    "백혈구 증가 소견입니다.",
    "간 수치 상승 소견입니다.",
    "수술 후 경과 양호입니다.",
    "주소는 서울입니다.",
    "주치의 소견 참조.",
    "권고는 금연입니다.",
    "진단은 급성 충수염입니다.",
    "Chest X-ray shows no acute cardiopulmonary process.",
    "The patient was started on IV ceftriaxone 1 g daily.",
    "No known drug allergies.",
)
DEV_NAMES = (
    "환자 {name}(남/45세) 내원.",
    "저는 {name}입니다.",
    "보호자 {name} 씨와 면담함.",
    "{name} 님 외래 추적 관찰 예정.",
)
DEV_PEOPLE = ("정상우", "이상민", "조영숙", "김민수", "박지영", "최은비")

HELDOUT_PHRASES = (
    "50대 남자 환자로 3일 전부터 발열이 있었습니다.",
    "뇌 MRI상 급성 경색 소견입니다.",
    "좌측 유방에 석회화 소견이 보입니다.",
    "여자 환자 우측 옆구리 통증 호소.",
    "갑상선 초음파상 결절 소견입니다.",
    "위내시경상 위염 소견입니다.",
    "골밀도 검사상 골감소증 소견입니다.",
    "혈액 배양 음성입니다.",
    "치료 반응 양호입니다.",
    "식사는 연식입니다.",
    "퇴원 계획은 다음 주입니다.",
    "소아 환자 탈수 소견 있음.",
    "남성 환자 야간뇨 호소.",
    "전원 사유는 중환자실 부족입니다.",
    "신경학적 검사상 이상 소견 없습니다.",
    "담당의 소견상 수술이 필요합니다.",
    "Blood cultures remain negative at 48 hours.",
    "Plan: continue metformin and recheck HbA1c in three months.",
    "Lungs clear to auscultation bilaterally.",
    "Follow up in the heart failure clinic.",
)
HELDOUT_NAMES = (
    "환자 {name}(여/58세) 검사 결과 설명함.",
    "안녕하세요, 저는 {name}입니다.",
    "보호자 {name} 님께 설명함.",
    "{name} 씨 내일 퇴원 예정.",
)
HELDOUT_PEOPLE = ("정상훈", "이상희", "조영민", "고은영", "한지민", "윤서연")

PARTS = {
    "dev": (DEV_PHRASES, DEV_NAMES, DEV_PEOPLE, 24),
    "heldout": (HELDOUT_PHRASES, HELDOUT_NAMES, HELDOUT_PEOPLE, 25),
}


def notes(part: str, n: int = 200) -> list[tuple[str, list[tuple[int, int]]]]:
    phrases, name_templates, people, seed = PARTS[part]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text, spans = "", []
        for _ in range(rng.randint(4, 8)):
            if rng.random() < 0.2:
                template = rng.choice(name_templates)
                name = rng.choice(people)
                at = len(text) + template.index("{name}")
                spans.append((at, at + len(name)))
                text += template.format(name=name) + " "
            else:
                text += rng.choice(phrases) + " "
        out.append((text.strip(), spans))
    return out


def precision_recall(detect, part: str, n: int = 200) -> dict:
    """Person findings against the names: precision over every finding, recall over the names."""
    found = true = gold = hit = 0
    false_positives: list[str] = []
    for text, spans in notes(part, n):
        entities = detect(text)
        gold += len(spans)
        hit += sum(any(e.type == "PERSON" and e.start <= s and e.end >= t for e in entities) for s, t in spans)
        for e in entities:
            found += 1
            if e.type == "PERSON" and any(e.start < t and s < e.end for s, t in spans):
                true += 1
            else:
                false_positives.append(text[e.start : e.end])
    return {
        "kb": round(sum(len(t.encode()) for t, _ in notes(part, n)) / 1024, 1),
        "findings": found,
        "precision": round(true / found, 4) if found else 1.0,
        "names": gold,
        "recall": round(hit / gold, 4) if gold else 1.0,
        "false_positives": false_positives,
    }
