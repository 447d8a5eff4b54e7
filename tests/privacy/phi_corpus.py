# ruff: noqa: E501  (one document a line)
"""A synthetic PHI corpus (English and Korean) and the scoring shared by the tests and benchmarks.

Every name, number and address below is invented. A document marks its PHI inline as
``[[TYPE:value]]``; ``parse`` turns it into the plain text and the gold spans. ``documents()``
returns the hand-written notes, chat messages and referral letters plus documents generated from
templates with seeded random values (valid and check-digit-free resident numbers, every phone
format, ...). ``CLEAN`` holds PHI-free clinical texts and ``CLINICAL_TERMS`` the words that must
survive redaction.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass

MARK = re.compile(r"\[\[([A-Z_0-9]+):(.+?)\]\]", re.DOTALL)

# Types scored as one: a date of birth found as a date still gets redacted, and vice versa.
SAME = {"DATE_OF_BIRTH": "DATE", "PASSPORT": "KR_PASSPORT"}
GROUPS = {
    "structured": {
        "KR_RRN", "KR_FRN", "KR_DRIVER_LICENSE", "KR_PASSPORT", "PASSPORT", "US_SSN", "HEALTH_INSURANCE_ID", "MRN",
        "PHONE_NUMBER", "EMAIL_ADDRESS", "URL", "IP_ADDRESS", "CREDIT_CARD", "BANK_ACCOUNT",
    },
    "names": {"PERSON"},
    "dates_ages": {"DATE", "DATE_OF_BIRTH", "AGE_OVER_89"},
    "addresses": {"ADDRESS"},
}  # fmt: skip


@dataclass(frozen=True)
class Doc:
    text: str
    spans: tuple[tuple[str, int, int], ...]  # (type, start, end)
    kind: str


def parse(marked: str, kind: str = "note") -> Doc:
    out, spans, pos = [], [], 0
    length = 0
    for m in MARK.finditer(marked):
        out.append(marked[pos : m.start()])
        length += m.start() - pos
        value = m.group(2)
        spans.append((m.group(1), length, length + len(value)))
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(marked[pos:])
    return Doc("".join(out), tuple(spans), kind)


HAND_WRITTEN: list[tuple[str, str]] = [
    # --- English clinical notes
    (
        "note",
        "Patient [[PERSON:John Smith]], DOB [[DATE_OF_BIRTH:03/12/1938]], MRN: [[MRN:12345678]]. Admitted [[DATE:March 3, 2024]] with community-acquired pneumonia. Started ceftriaxone 1 g IV q24h and azithromycin 500 mg PO daily. Discharged [[DATE:2024-03-10]].",
    ),
    (
        "note",
        "HPI: [[PERSON:Margaret O'Brien]] is a [[AGE_OVER_89:92-year-old]] woman with atrial fibrillation on apixaban 2.5 mg bid, CHA2DS2-VASc 5. INR not required. Daughter [[PERSON:Susan]] can be reached at [[PHONE_NUMBER:(617) 555-0134]].",
    ),
    (
        "note",
        "Seen by [[PERSON:Dr. Emily Chen]] in Endocrinology. HbA1c 8.1%, fasting glucose 162 mg/dL. Plan: increase metformin to 1000 mg bid; add semaglutide 0.25 mg weekly. Patient ID [[MRN:A-0045821]].",
    ),
    (
        "note",
        "Emergency contact: [[PERSON:Robert Miller]] (son), [[PHONE_NUMBER:+1 415 555 0198]], [[EMAIL_ADDRESS:rob.miller@mailbox.example]]. Home address: [[ADDRESS:1428 Elm Street, Springfield, IL 62704]].",
    ),
    (
        "note",
        "Mr. [[PERSON:Harold Jenkins]] was admitted on [[DATE:12 January 2024]] for NSTEMI. Troponin I 2.4 ng/mL. Underwent PCI to LAD. Discharged on aspirin 81 mg, ticagrelor 90 mg bid, atorvastatin 80 mg.",
    ),
    (
        "note",
        "Insurance ID: [[HEALTH_INSURANCE_ID:XQH482913377]]. SSN [[US_SSN:123-45-6789]]. The patient is [[AGE_OVER_89:94 years old]] and lives alone at [[ADDRESS:77 Maple Avenue, Apt 4B, Boston, MA 02118]].",
    ),
    (
        "note",
        "Parkinson's disease diagnosed 2015, on carbidopa-levodopa 25/100 tid. MoCA 24/30. Referred by [[PERSON:Dr. Alan Whitaker]] for gait assessment. Contact [[EMAIL_ADDRESS:a.whitaker@clinic-north.example.org]].",
    ),
    (
        "note",
        "Patient name: [[PERSON:Maria Gonzalez]]\nDate of birth: [[DATE_OF_BIRTH:July 4, 1951]]\nMedical record number: [[MRN:88120034]]\nAllergies: penicillin (rash).",
    ),
    (
        "note",
        "Creatinine 2.1 mg/dL, potassium 5.6 mmol/L. Nephrology consulted. Mrs. [[PERSON:Linda Park]] agreed to start dialysis. Her husband [[PERSON:David Park]] signed consent on [[DATE:04/18/2024]].",
    ),
    (
        "note",
        "Telehealth session logged from IP [[IP_ADDRESS:203.0.113.45]]; patient portal [[URL:https://portal.example-health.org/records/8812]]. Card on file [[CREDIT_CARD:4111 1111 1111 1111]].",
    ),
    (
        "note",
        "UK referral: Ms [[PERSON:Olivia Hughes]], NHS number [[HEALTH_INSURANCE_ID:943 476 5919]], phone [[PHONE_NUMBER:+44 20 7946 0958]], mobile [[PHONE_NUMBER:07700 900123]], address [[ADDRESS:12 Kingsway Road, Leeds LS6 2QB]].",
    ),
    (
        "note",
        "Passport number: [[PASSPORT:C03005988]]. International patient [[PERSON:Ahmed Karimi]] arrived [[DATE:May 2, 2024]] for liver transplant evaluation. MELD 24.",
    ),
    (
        "note",
        "The patient, a [[AGE_OVER_89:101-year-old]] man, presented with delirium. Na 128 mmol/L. Haloperidol avoided; melatonin 3 mg nightly. Alzheimer's disease, moderate.",
    ),
    (
        "note",
        "Wire the refund to account no. [[BANK_ACCOUNT:004-123-456789]] or IBAN [[BANK_ACCOUNT:GB82 WEST 1234 5698 7654 32]].",
    ),
    # --- English chat messages
    (
        "chat",
        "Hi, I'm [[PERSON:Jessica Taylor]]. My mom [[PERSON:Patricia Taylor]] ([[AGE_OVER_89:91 yo]]) has had chest pain since yesterday. Her cardiologist is [[PERSON:Dr. Kevin Brooks]]. Can you call me at [[PHONE_NUMBER:212-555-0147]]?",
    ),
    (
        "chat",
        "My name is [[PERSON:Daniel Lee]], born [[DATE_OF_BIRTH:1987-09-23]]. I take lisinopril 10 mg and my BP is still 150/95. Should I double the dose?",
    ),
    (
        "chat",
        "Hello [[PERSON:Sarah]], thanks for yesterday. Email me the lab results at [[EMAIL_ADDRESS:sarah.k@webmail.example.com]]. My potassium was 3.2.",
    ),
    (
        "chat",
        "This is [[PERSON:Tom Becker]] again. I was discharged on [[DATE:Feb 14, 2024]] and the wound is red. My insurance member ID is [[HEALTH_INSURANCE_ID:W2918847301]].",
    ),
    (
        "chat",
        "Can you check my results? Patient ID [[MRN:PT-774120]], I'm in room 12. I've had a fever of 38.5 since Tuesday.",
    ),
    # --- English referral letters
    (
        "letter",
        "Dear [[PERSON:Dr. Rachel Adams]],\n\nThank you for seeing Mr. [[PERSON:Peter Wallace]] (DOB [[DATE_OF_BIRTH:11/02/1946]], MRN [[MRN:55102238]]), who has resistant hypertension despite amlodipine 10 mg, losartan 100 mg and chlorthalidone 25 mg. Renal artery Doppler is pending.\n\nKind regards,\n[[PERSON:James Whitfield]], MD\nCardiology, Riverside Hospital\nTel: [[PHONE_NUMBER:617-555-0190]]",
    ),
    (
        "letter",
        "Re: [[PERSON:Ms. Hannah Cole]], [[ADDRESS:350 Fifth Avenue, New York, NY 10118]]\n\nI am referring this patient with Crohn's disease on infliximab 5 mg/kg for surgical opinion. CRP 42 mg/L.\n\nSincerely,\n[[PERSON:Laura Kim]]\nGastroenterology",
    ),
    # --- Korean clinical notes
    (
        "note",
        "환자 [[PERSON:김민수]](남, 67세) 주민등록번호 [[KR_RRN:550312-1234563]], 연락처 [[PHONE_NUMBER:010-1234-5678]]. [[DATE:2024년 3월 5일]] 폐렴으로 입원하여 세프트리악손 2 g 정맥주사 시작.",
    ),
    (
        "note",
        "[[PERSON:이영희]] 님은 [[DATE_OF_BIRTH:1938년생]]으로 현재 [[AGE_OVER_89:만 91세]]이며 고혈압, 당뇨병으로 암로디핀 5 mg, 메트포르민 500 mg 복용 중. 보호자 [[PERSON:박지훈]] 씨 ([[PHONE_NUMBER:010-9876-5432]]).",
    ),
    (
        "note",
        "등록번호 [[MRN:20240517]] / 성명: [[PERSON:최서연]] / 생년월일 [[DATE_OF_BIRTH:1990.04.17]] / 주소: [[ADDRESS:서울특별시 강남구 테헤란로 152, 101동 1203호]]",
    ),
    (
        "note",
        "[[PERSON:정우성]] 환자 [[DATE:2024.05.02]] 퇴원. 퇴원약: 아토르바스타틴 20 mg, 아스피린 100 mg. 심장내과 외래 4주 후. 혈압 128/76 mmHg.",
    ),
    (
        "note",
        "외국인등록번호 [[KR_FRN:900101-5234567]]인 환자 [[PERSON:왕리]] 씨는 건강보험증번호 [[HEALTH_INSURANCE_ID:12345678901]]로 접수. 여권번호 [[KR_PASSPORT:M12345678]].",
    ),
    (
        "note",
        "운전면허번호 [[KR_DRIVER_LICENSE:11-20-123456-78]], 주소 [[ADDRESS:경기도 성남시 분당구 정자일로 95]]. 담당의 [[PERSON:한지민]] 교수.",
    ),
    (
        "note",
        "[[PERSON:윤서준]] 님 ([[DATE_OF_BIRTH:1992년 8월 15일]]생) 내시경 결과 위염. 헬리코박터 양성으로 제균치료 시작: 아목시실린 1 g, 클래리스로마이신 500 mg, 란소프라졸 30 mg 하루 2회.",
    ),
    (
        "note",
        "환자번호 [[MRN:A2024-0091]] [[PERSON:강하늘]] 님, 혈색소 9.8 g/dL, 페리틴 12 ng/mL로 철결핍성 빈혈. 철분제 경구 투여 후 [[DATE:6월 20일]] 재검.",
    ),
    (
        "note",
        "주민번호 [[KR_RRN:0103154123456]] 소아 환자, 보호자 [[PERSON:조은비]]님 연락처 [[PHONE_NUMBER:02-3410-2114]]. 체중 12 kg, 아세트아미노펜 160 mg 4시간마다.",
    ),
    (
        "note",
        "[[PERSON:남궁민]] 씨 [[AGE_OVER_89:93세]], 치매로 도네페질 5 mg 복용. 주소: [[ADDRESS:부산광역시 해운대구 우동 1408-3번지]].",
    ),
    (
        "note",
        "2021년 이후 발급된 주민등록번호 [[KR_RRN:210705-3987650]] (검증번호 없음). 신생아 황달로 광선치료, 총빌리루빈 15.2 mg/dL.",
    ),
    (
        "note",
        "계좌번호 [[BANK_ACCOUNT:110-234-567890]] (신한) 로 환불 처리. 카드 [[CREDIT_CARD:5500-0000-0000-0004]] 결제 취소.",
    ),
    # --- Korean chat messages
    (
        "chat",
        "안녕하세요, 저는 [[PERSON:김지영]]입니다. 어머니([[AGE_OVER_89:92세]])가 어제부터 숨이 차다고 하세요. 제 번호는 [[PHONE_NUMBER:010-5555-1234]]이에요.",
    ),
    (
        "chat",
        "[[PERSON:박서진]] 선생님, 지난번 처방해주신 레보티록신 50 mcg 먹고 있는데 TSH 결과 나왔나요? 이메일 [[EMAIL_ADDRESS:seojin.park@example.co.kr]]로 보내주세요.",
    ),
    (
        "chat",
        "아버지 [[PERSON:이철호]] 씨가 [[DATE:2024년 4월 2일]]에 퇴원하셨는데 와파린 용량을 어떻게 해야 하나요? INR 3.5 나왔어요.",
    ),
    (
        "chat",
        "+82 번호로 연락주세요: [[PHONE_NUMBER:+82 10-2345-6789]]. 저희 집은 [[ADDRESS:대구광역시 수성구 달구벌대로 2450]]이에요.",
    ),
    ("chat", "[[PERSON:송민호]] 님 오늘 혈당 250 나왔어요. 인슐린 글라진 20단위 맞고 있습니다."),
    # --- Korean referral letters
    (
        "letter",
        "진료의뢰서\n수신: [[PERSON:정민재]] 교수님 (신경과)\n환자명: [[PERSON:홍길동]]\n생년월일: [[DATE_OF_BIRTH:1945-02-11]]\n등록번호: [[MRN:10293847]]\n상기 환자는 파킨슨병 의심 소견으로 의뢰드립니다. 레보도파 반응 평가 부탁드립니다.\n의뢰의: [[PERSON:서지수]] (가정의학과)\n연락처: [[PHONE_NUMBER:031-787-7114]]",
    ),
    (
        "letter",
        "회송서\n[[PERSON:임수정]] 님은 [[DATE:2024년 2월 26일]] 관상동맥 스텐트 삽입술 시행 후 안정적입니다. 클로피도그렐 75 mg, 아스피린 100 mg 유지 바랍니다.\n작성자: [[PERSON:오세훈]]\n팩스 [[PHONE_NUMBER:02-2072-1234]]",
    ),
]

CLEAN: list[str] = [
    "Assessment: type 2 diabetes mellitus (E11.9) with HbA1c 7.8%. Continue metformin 500 mg PO bid; add empagliflozin 10 mg daily. eGFR 52 mL/min/1.73m2.",
    "Vitals: BP 138/86 mmHg, HR 78 bpm, RR 16, T 37.2 C, SpO2 97% on room air. Weight 72.5 kg.",
    "Parkinson's disease, Hoehn and Yahr stage 2, on carbidopa-levodopa 25/100 three times daily. Alzheimer's disease excluded by MoCA 27/30.",
    "Labs: WBC 11.2 x10^9/L, Hb 10.4 g/dL, platelets 245, Na 136, K 4.1, Cl 101, HCO3 24, BUN 18, Cr 1.1, glucose 142.",
    "Cushing's syndrome work-up: 24-hour urinary free cortisol 310 ug/day; dexamethasone suppression test positive.",
    "Plan: Cardiology follow-up in 3 months; repeat echocardiogram. EF 45%. Continue bisoprolol 2.5 mg daily and sacubitril/valsartan 49/51 mg bid.",
    "Crohn's disease on infliximab 5 mg/kg every 8 weeks. CRP 4 mg/L. Calprotectin 80 ug/g.",
    "Glasgow Coma Scale 15. Babinski sign negative. Romberg negative. Cranial nerves II-XII intact.",
    "ICD-10 I10, E78.5, N18.3. CPT 99214. Hashimoto's thyroiditis, TSH 6.2 mIU/L, levothyroxine 50 mcg.",
    "Dose: vancomycin 15 mg/kg IV q12h, trough goal 10-15 mg/L. Piperacillin-tazobactam 4.5 g IV q6h.",
    "The patient denies chest pain, dyspnea or palpitations. Reports mild fatigue. Follow up in Nephrology clinic.",
    "Insulin glargine 20 units at bedtime, insulin aspart 4-6 units with meals. Hypoglycemia below 70 mg/dL treated with 15 g glucose.",
    "Down syndrome with congenital heart disease; Graves' disease treated with methimazole 10 mg.",
    "Ventilator: PEEP 8, FiO2 0.4, tidal volume 450 mL. ABG pH 7.38, PaCO2 42, PaO2 88.",
    "Follow-up: INR 2.4 on warfarin 5 mg; target 2.0-3.0. Next check in 1 week.",
    "Whipple procedure for pancreatic adenocarcinoma; Foley catheter removed on POD 3. Swan-Ganz catheter not required.",
    "주호소: 3일 전부터 발열과 기침. 과거력: 고혈압, 당뇨병으로 메트포르민 500 mg 하루 2회 복용 중.",
    "활력징후 혈압 130/80 mmHg, 맥박 88회/분, 호흡수 20회/분, 체온 38.2도, 산소포화도 95%.",
    "흉부 X선상 우하엽 폐렴 소견. 세프트리악손 2 g 정맥주사 시작. 호흡기내과 협진 예정.",
    "당뇨 환자에서 SGLT2 억제제 사용 시 케톤산증 주의. 고혈압 환자는 저염식 교육.",
    "신부전 환자 보호자에게 투석 일정 설명함. 심부전 환자 체중 매일 측정.",
    "파킨슨병 환자, 레보도파 100 mg 하루 3회. 알츠하이머 치매 환자 도네페질 10 mg.",
    "혈색소 9.8 g/dL, 백혈구 12,300/uL, 혈소판 18만, CRP 5.2 mg/dL, 크레아티닌 1.3 mg/dL.",
    "신경과 외래에서 MRI 촬영 예정. 재활의학과 협진, 물리치료 주 3회.",
    "고령 환자에서 낙상 위험 평가 시행. 노인 환자 다약제 복용 검토.",
    "선생님, 제가 아스피린 100 mg 먹고 있는데 이부프로펜 같이 먹어도 되나요? 위염이 있어요.",
    "간호사님 혈압약은 아침에 먹는 게 좋나요? 어제 혈압이 150/95였어요.",
    "요로감염 의심, 소변배양 검사 후 시프로플록사신 500 mg 하루 2회 7일간.",
    "갑상선기능저하증, TSH 8.4, 레보티록신 75 mcg으로 증량. 6주 후 재검.",
    "인슐린 글라진 18단위 취침 전, 공복혈당 목표 80-130 mg/dL.",
    "성인 환자 표준 용량: 아목시실린 500 mg 8시간마다. 소아 환자는 체중당 용량 계산.",
    "우울증 환자 에스시탈로프람 10 mg 시작, 2주 후 반응 평가. 공황장애 동반.",
    "정상 환자군과 비교하여 유의한 차이 없음 (p=0.32). 95% CI 0.8-1.4.",
    "Sepsis bundle: lactate 3.1 mmol/L, blood cultures x2, 30 mL/kg crystalloid within 3 hours.",
    "Asthma: FEV1 68% predicted, salbutamol 100 mcg 2 puffs prn, budesonide/formoterol 160/4.5 bid.",
    "Hodgkin lymphoma, ABVD cycle 3 of 6. Neutrophils 1.2 x10^9/L; filgrastim given.",
    "Apgar 8 and 9 at 1 and 5 minutes. Birth weight 3.2 kg. Kawasaki disease ruled out.",
    "Meniere's disease: betahistine 16 mg tid. Epley manoeuvre for BPPV.",
    "Tylenol 650 mg q6h prn, max 3 g/day. Zofran 4 mg IV prn nausea. Lasix 40 mg IV bid.",
    "Department of Internal Medicine, Seoul. Ward 7B, bed 12. Room 305.",
    "I am referring to the Parkinson clinic regarding Metformin dosing. Follow-up of CKD in 2 weeks.",
    "고혈압 환자 보호자에게 설명함. 이 환자는 상태 호전되어 퇴원 예정. 소변배양 양성, 신환 접수 후 안내.",
    "Insulin glargine titration: increase by 2 units every 3 days until fasting glucose < 130 mg/dL.",
]

CLINICAL_TERMS: list[str] = [
    "metformin", "500 mg", "HbA1c 7.8%", "E11.9", "empagliflozin", "138/86", "SpO2 97%", "Parkinson's disease",
    "Alzheimer's disease", "carbidopa-levodopa 25/100", "Hb 10.4 g/dL", "Cushing's syndrome", "Cardiology",
    "bisoprolol 2.5 mg", "sacubitril/valsartan 49/51 mg", "Crohn's disease", "infliximab 5 mg/kg", "Glasgow Coma Scale 15",
    "Babinski", "I10", "E78.5", "N18.3", "Hashimoto's thyroiditis", "vancomycin 15 mg/kg", "Nephrology",
    "insulin glargine", "Graves' disease", "PEEP 8", "INR 2.4", "warfarin 5 mg", "Whipple procedure", "Foley catheter",
    "Swan-Ganz", "고혈압", "당뇨병", "메트포르민 500 mg", "130/80 mmHg", "38.2도", "세프트리악손 2 g", "호흡기내과",
    "당뇨 환자", "고혈압 환자", "신부전 환자", "심부전 환자", "파킨슨병", "레보도파 100 mg", "알츠하이머 치매",
    "도네페질 10 mg", "혈색소 9.8 g/dL", "크레아티닌 1.3 mg/dL", "신경과", "재활의학과", "고령 환자", "노인 환자",
    "아스피린 100 mg", "이부프로펜", "시프로플록사신 500 mg", "레보티록신 75 mcg", "인슐린 글라진 18단위",
    "에스시탈로프람 10 mg", "lactate 3.1 mmol/L", "FEV1 68%", "budesonide/formoterol 160/4.5", "Hodgkin lymphoma",
    "Apgar 8", "Kawasaki disease", "Meniere's disease", "betahistine 16 mg", "Tylenol 650 mg", "Zofran 4 mg",
    "Lasix 40 mg", "Internal Medicine", "우울증 환자", "성인 환자", "소아 환자", "정상 환자군",
]  # fmt: skip

# ---------------------------------------------------------------- generated documents

KR_SURNAMES = [
    "김",
    "이",
    "박",
    "최",
    "정",
    "강",
    "조",
    "윤",
    "장",
    "임",
    "한",
    "오",
    "서",
    "신",
    "권",
    "황",
    "안",
    "송",
    "류",
    "홍",
]
KR_GIVEN = [
    "민준",
    "서연",
    "지호",
    "하은",
    "도윤",
    "수빈",
    "예준",
    "지우",
    "시우",
    "서현",
    "주원",
    "민서",
    "건우",
    "지민",
    "현우",
    "유진",
    "영숙",
    "순자",
    "정호",
    "경희",
]
EN_FIRST = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "Michael",
    "Jennifer",
    "William",
    "Elizabeth",
    "Richard",
    "Barbara",
    "Thomas",
    "Susan",
    "Charles",
    "Nancy",
    "Steven",
    "Karen",
]
EN_LAST = [
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Wilson",
    "Anderson",
    "Thompson",
    "Moore",
    "Jackson",
    "Harris",
    "Clark",
    "Lewis",
]
KR_STREETS = [
    "서울특별시 서초구 반포대로 222",
    "서울시 종로구 대학로 101",
    "경기도 수원시 영통구 광교로 147",
    "인천광역시 남동구 남동대로 774번길 21",
    "대전광역시 서구 둔산로 100",
    "광주광역시 동구 필문대로 365",
]
EN_STREETS = [
    "4 Privet Drive, Little Whinging",
    "742 Evergreen Terrace, Springfield",
    "1600 Amphitheatre Parkway, Mountain View, CA 94043",
    "10 Downing Street, London SW1A 2AA",
    "55 Water Street, Apt 12, Brooklyn, NY 11201",
    "233 South Wacker Drive, Chicago, IL 60606",
]


def _rrn(rng: random.Random, *, foreign: bool = False, checked: bool = True) -> str:
    year = rng.randint(1930, 2019)
    gender = (5 if year < 2000 else 7) if foreign else (1 if year < 2000 else 3)
    gender += rng.randint(0, 1)
    body = f"{year % 100:02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{gender}{rng.randint(0, 99999):05d}"
    total = sum(int(d) * w for d, w in zip(body, (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5), strict=True))
    check = ((13 if foreign else 11) - total % 11) % 10
    if not checked:
        check = (check + 1 + rng.randint(0, 8)) % 10
    return f"{body[:6]}-{body[6:]}{check}"


def _luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randint(0, 9) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        total += (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d
    digits.append((10 - total % 10) % 10)
    s = "".join(map(str, digits))
    return " ".join(s[i : i + 4] for i in range(0, 16, 4))


def _kr_phone(rng: random.Random) -> str:
    return rng.choice(
        [
            f"010-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
            f"010{rng.randint(1000, 9999)}{rng.randint(1000, 9999)}",
            f"02-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
            f"031-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
            f"+82-10-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}",
            f"010 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
        ]
    )


def _en_phone(rng: random.Random) -> str:
    return rng.choice(
        [
            f"({rng.randint(201, 989)}) 555-{rng.randint(1000, 9999)}",
            f"{rng.randint(201, 989)}-555-{rng.randint(1000, 9999)}",
            f"+1 {rng.randint(201, 989)} 555 {rng.randint(1000, 9999)}",
            f"+44 7700 {rng.randint(100000, 999999)}",
            f"020 7946 {rng.randint(1000, 9999)}",
        ]
    )


KR_TEMPLATES = [
    "환자 [[PERSON:{kname}]]({sex}, {age}세) 주민등록번호 [[KR_RRN:{rrn}]]. [[DATE:{kdate}]] 입원, 세파졸린 1 g 정맥주사. 연락처 [[PHONE_NUMBER:{kphone}]].",
    "[[PERSON:{kname}]] 님 등록번호 [[MRN:{mrn}]], 혈압 {bp} mmHg, 당화혈색소 {a1c}%. 메트포르민 {dose} mg 유지.",
    "보호자 [[PERSON:{kname2}]] 씨({rel}) 연락처 [[PHONE_NUMBER:{kphone}]], 주소 [[ADDRESS:{kaddr}]].",
    "성명: [[PERSON:{kname}]]\n생년월일: [[DATE_OF_BIRTH:{dob_iso}]]\n주민번호: [[KR_RRN:{rrn_new}]]\n진단: 폐렴 (J18.9)",
    "[[PERSON:{kname}]] 환자, [[AGE_OVER_89:{old}세]], 이메일 [[EMAIL_ADDRESS:{email}]]. 골다공증으로 알렌드로네이트 70 mg 주 1회.",
    "외국인 환자 외국인등록번호 [[KR_FRN:{frn}]], 여권번호 [[KR_PASSPORT:{passport}]]. 결핵 치료: 이소니아지드 300 mg.",
]
EN_TEMPLATES = [
    "Patient [[PERSON:{ename}]], MRN: [[MRN:{mrn}]], admitted [[DATE:{edate}]] with cellulitis; cefazolin 2 g IV q8h. Phone [[PHONE_NUMBER:{ephone}]].",
    "Mr. [[PERSON:{elast}]] ([[AGE_OVER_89:{old}-year-old]]) reports dizziness. BP {bp}, HR 64. Meclizine 25 mg prn. DOB [[DATE_OF_BIRTH:{dob_us}]].",
    "Name: [[PERSON:{ename}]]\nAddress: [[ADDRESS:{eaddr}]]\nEmail: [[EMAIL_ADDRESS:{email}]]\nDx: COPD exacerbation (J44.1), prednisone 40 mg x5 days.",
    "Hi, this is [[PERSON:{efirst}]]. My card [[CREDIT_CARD:{card}]] was charged twice for the clinic visit. Account [[BANK_ACCOUNT:{account}]].",
    "Dear [[PERSON:Dr. {elast2}]],\nI am referring [[PERSON:{ename}]], DOB [[DATE_OF_BIRTH:{dob_long}]], with HbA1c {a1c}% on metformin {dose} mg.\nBest regards,\n[[PERSON:{ename2}]]",
    "Remote session from [[IP_ADDRESS:{ip}]] opened [[URL:{url}]]; SSN on file [[US_SSN:{ssn}]].",
]


def generated(seed: int = 7, rounds: int = 6) -> list[Doc]:
    rng = random.Random(seed)
    months = ["January", "February", "March", "April", "June", "July", "August", "September", "October", "November"]
    docs = []
    for _ in range(rounds):
        for template in KR_TEMPLATES + EN_TEMPLATES:
            y, m, d = rng.randint(1925, 2005), rng.randint(1, 12), rng.randint(1, 28)
            efirst, elast = rng.choice(EN_FIRST), rng.choice(EN_LAST)
            values = {
                "kname": rng.choice(KR_SURNAMES) + rng.choice(KR_GIVEN),
                "kname2": rng.choice(KR_SURNAMES) + rng.choice(KR_GIVEN),
                "sex": rng.choice(["남", "여"]),
                "age": rng.randint(20, 85),
                "old": rng.randint(90, 104),
                "rrn": _rrn(rng),
                "rrn_new": _rrn(rng, checked=False),
                "frn": _rrn(rng, foreign=True),
                "kdate": f"2024년 {rng.randint(1, 12)}월 {rng.randint(1, 28)}일",
                "kphone": _kr_phone(rng),
                "ephone": _en_phone(rng),
                "mrn": rng.choice([f"{rng.randint(10**7, 10**8 - 1)}", f"H{rng.randint(10**6, 10**7 - 1)}"]),
                "bp": f"{rng.randint(100, 170)}/{rng.randint(60, 100)}",
                "a1c": f"{rng.randint(55, 110) / 10:.1f}",
                "dose": rng.choice([250, 500, 850, 1000]),
                "rel": rng.choice(["아들", "딸", "배우자"]),
                "kaddr": rng.choice(KR_STREETS),
                "eaddr": rng.choice(EN_STREETS),
                "dob_iso": f"{y}-{m:02d}-{d:02d}",
                "dob_us": f"{m:02d}/{d:02d}/{y}",
                "dob_long": f"{months[m % 10]} {d}, {y}",
                "edate": f"{months[(m + 3) % 10]} {d}, 2024",
                "email": f"{rng.choice(['jdoe', 'mkim', 'p.lee', 'hong.gd', 'sara_j'])}{rng.randint(1, 99)}@example.{rng.choice(['com', 'org', 'co.kr'])}",
                "passport": rng.choice(
                    [f"M{rng.randint(10**7, 10**8 - 1)}", f"M{rng.randint(100, 999)}A{rng.randint(1000, 9999)}"]
                ),
                "ename": f"{efirst} {elast}",
                "ename2": f"{rng.choice(EN_FIRST)} {rng.choice(EN_LAST)}",
                "efirst": efirst,
                "elast": elast,
                "elast2": rng.choice(EN_LAST),
                "card": _luhn_card(rng),
                "account": f"{rng.randint(100, 999)}-{rng.randint(100000, 999999)}-{rng.randint(10, 99)}",
                "ip": f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                "url": f"https://records.example.org/p/{rng.randint(1000, 9999)}",
                "ssn": f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
            }
            kind = "chat" if "Hi," in template or "Dear" in template else "note"
            docs.append(parse(template.format(**values), kind))
    return docs


def documents() -> list[Doc]:
    return [parse(text, kind) for kind, text in HAND_WRITTEN] + generated()


# ---------------------------------------------------------------- scoring


def _norm(kind: str) -> str:
    return SAME.get(kind, kind)


def score(detect) -> dict:
    """Per-type recall and precision of ``detect`` (text -> [Entity]) on the corpus and CLEAN texts."""
    gold_n, gold_hit = defaultdict(int), defaultdict(int)
    pred_n, pred_ok = defaultdict(int), defaultdict(int)
    misses, false_positives = [], []
    for doc in documents():
        found = detect(doc.text)
        for kind, start, end in doc.spans:
            gold_n[kind] += 1
            if any(_norm(e.type) == _norm(kind) and e.start < end and start < e.end for e in found):
                gold_hit[kind] += 1
            else:
                misses.append((kind, doc.text[start:end], doc.text[max(0, start - 30) : end + 10]))
        for e in found:
            pred_n[e.type] += 1
            if any(_norm(e.type) == _norm(k) and e.start < en and s < e.end for k, s, en in doc.spans):
                pred_ok[e.type] += 1
            else:
                false_positives.append((e.type, doc.text[e.start : e.end]))
    for text in CLEAN:
        for e in detect(text):
            pred_n[e.type] += 1
            false_positives.append((e.type, text[e.start : e.end]))
    types = sorted(set(gold_n) | set(pred_n))
    per_type = {
        t: {
            "gold": gold_n[t],
            "recall": round(gold_hit[t] / gold_n[t], 3) if gold_n[t] else None,
            "predicted": pred_n[t],
            "precision": round(pred_ok[t] / pred_n[t], 3) if pred_n[t] else None,
        }
        for t in types
    }
    groups = {}
    for name, members in GROUPS.items():
        g = sum(gold_n[t] for t in members)
        p = sum(pred_n[t] for t in members)
        groups[name] = {
            "gold": g,
            "recall": round(sum(gold_hit[t] for t in members) / g, 3) if g else None,
            "predicted": p,
            "precision": round(sum(pred_ok[t] for t in members) / p, 3) if p else None,
        }
    return {
        "spans": sum(gold_n.values()),
        "per_type": per_type,
        "groups": groups,
        "misses": misses,
        "false_positives": false_positives,
    }


def clinical_terms_kept(redact) -> float:
    """Share of CLINICAL_TERMS still present after ``redact`` (text -> text) over the CLEAN texts."""
    present = [(term, text) for term in CLINICAL_TERMS for text in CLEAN if term in text]
    kept = sum(term in redact(text) for term, text in present)
    return kept / len(present)
