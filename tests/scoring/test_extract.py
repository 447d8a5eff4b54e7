"""The answer-extraction table: realistic completions, each with what a careful reader takes from it.

Every case runs through the reading ``medops eval mcqa`` does here, and through both reward paths
(TRL columns, verl ``extra_info``) in tests/test_rewards.py. benchmarks/extraction_quality.py
reports the cascade's precision and recall on the whole table.
"""

from __future__ import annotations

import re
import time

import pytest

from medops.rewards import accuracy_reward, compute_score, make_reward, well_formed
from medops.scoring.extract import extract_choice

# The questions the completions answer; option texts are answers too.
QUESTIONS = {
    "dm": {"A": "Metformin", "B": "Insulin glargine", "C": "Sitagliptin", "D": "Glipizide", "E": "Acarbose"},
    "pqa": {"A": "yes", "B": "no", "C": "maybe"},  # PubMedQA
    "dose": {"A": "1 mg", "B": "2 mg", "C": "5 mg", "D": "10 mg"},
    "ko": {"A": "메트포르민", "B": "인슐린", "C": "시타글립틴", "D": "글리피지드", "E": "아카보스"},
    "hep": {"A": "A형 간염", "B": "B형 간염", "C": "C형 간염", "D": "D형 간염", "E": "E형 간염"},
    "hep_en": {letter: f"Hepatitis {letter}" for letter in "ABCDE"},
}
OPTIONS = QUESTIONS["dm"]
UNPARSED = None  # what a reply that names no single option reads as (hedges included)

# (completion, expected letter or UNPARSED, the rule that decides, question)
CASES = [
    # \boxed{}
    ("Let's think step by step. Metformin is first line...\nTherefore, \\boxed{A}", "A", "boxed", "dm"),
    ("\\boxed{C}", "C", "boxed", "dm"),
    ("The final answer is $\\boxed{B}$.", "B", "boxed", "dm"),
    ("\\boxed{\\text{D}}", "D", "boxed", "dm"),
    ("\\boxed{(E)}", "E", "boxed", "dm"),
    ("\\boxed{C. Sitagliptin}", "C", "boxed", "dm"),
    ("First I thought \\boxed{A}, but on reflection \\boxed{D}", "D", "boxed", "dm"),
    ("Answer: A. Wait, no. The answer is \\boxed{B}", "B", "boxed", "dm"),
    ("\\boxed{\\mathrm{C}}", "C", "boxed", "dm"),
    ("So the final answer is $\\boxed{\\mathbf{E}}$", "E", "boxed", "dm"),
    ("\\boxed{\\text{(B) Insulin glargine}}", "B", "boxed", "dm"),
    ("The answer is \\boxed{Metformin}.", "A", "boxed", "dm"),
    ("$$\\boxed{\\text{Sitagliptin}}$$", "C", "boxed", "dm"),
    ("**Final Answer**\n\n\\[\n\\boxed{D}\n\\]", "D", "boxed", "dm"),
    ("The answer is \\boxed{\\textbf{(C)}}.", "C", "boxed", "dm"),
    ("\\boxed{b}", "B", "boxed", "dm"),
    ("\\boxed{2}", "B", "boxed", "dm"),
    ("\\boxed{ABCD}", UNPARSED, "hedge", "dm"),
    ("\\boxed{A, B}", UNPARSED, "hedge", "dm"),
    ("\\boxed{A \\text{ or } C}", UNPARSED, "hedge", "dm"),
    ("Both have merit, so \\boxed{B and D}", UNPARSED, "hedge", "dm"),
    ("It could be \\boxed{A} or \\boxed{B}.", UNPARSED, "hedge", "dm"),
    ("\\boxed{}", UNPARSED, None, "dm"),
    ("\\boxed{F}", UNPARSED, None, "dm"),  # not an option of this question
    ("\\boxed{2 mg}", UNPARSED, None, "dm"),  # a dose, not option 2
    ("\\boxed{yes}", "A", "boxed", "pqa"),
    ("Based on the results, the intervention reduced mortality.\n\n\\boxed{\\text{Yes}}", "A", "boxed", "pqa"),
    ("\\boxed{no}", "B", "boxed", "pqa"),
    ("The evidence is mixed. \\boxed{maybe}", "C", "boxed", "pqa"),
    ("\\boxed{5 mg}", "C", "boxed", "dose"),
    ("\\boxed{10 \\text{ mg}}", "D", "boxed", "dose"),
    ("\\boxed{C}", "C", "boxed", "dose"),
    # <answer> tags
    ("<think>Sulfonylureas cause hypoglycemia.</think><answer>D</answer>", "D", "answer_tag", "dm"),
    ("<think>...</think>\n<answer> (B) </answer>", "B", "answer_tag", "dm"),
    ("<think>long reasoning</think><answer>c</answer>", "C", "answer_tag", "dm"),
    ("<think>reasoning</think>\n<answer> b </answer>", "B", "answer_tag", "dm"),
    ("<think>x</think><answer>\n  E\n</answer>", "E", "answer_tag", "dm"),
    ("<think>x</think><answer>d.</answer>", "D", "answer_tag", "dm"),
    ("<think>x</think><answer>Option A</answer>", "A", "answer_tag", "dm"),
    ("<think>x</think><answer>C) Sitagliptin</answer>", "C", "answer_tag", "dm"),
    ("<think>I need to compare the options.</think>\n<answer>The answer is D</answer>", "D", "answer_tag", "dm"),
    ("<think>x</think><answer>Insulin glargine</answer>", "B", "answer_tag", "dm"),
    ("<think>x</think><answer>A or B</answer>", UNPARSED, "hedge", "dm"),
    ("<answer></answer>", UNPARSED, None, "dm"),
    ("<think>The trial showed no difference.</think><answer>no</answer>", "B", "answer_tag", "pqa"),
    ("<think>...</think><answer>Maybe</answer>", "C", "answer_tag", "pqa"),
    ("<think>The effect was significant.</think>\n<answer>yes</answer>", "A", "answer_tag", "pqa"),
    # "The answer is ..."
    ("The answer is C.", "C", "answer_is", "dm"),
    ("The answer is (B) because it lowers glucose.", "B", "answer_is", "dm"),
    ("The correct answer is **A**", "A", "answer_is", "dm"),
    ("Final answer is D", "D", "answer_is", "dm"),
    ("The best answer would be E.", "E", "answer_is", "dm"),
    ("the answer is (c)", "C", "answer_is", "dm"),
    ("The answer is c.", "C", "answer_is", "dm"),
    ("The answer is A. Actually, reconsidering, the answer is C.", "C", "answer_is", "dm"),
    ("I'd say the answer is B, the answer is D.", "D", "answer_is", "dm"),
    ("The correct option is B.", "B", "answer_is", "dm"),
    ("The best answer is B.", "B", "answer_is", "dm"),
    ("The answer to this question is E.", "E", "answer_is", "dm"),
    ("Therefore, the answer is clearly D.", "D", "answer_is", "dm"),
    ("Given the low eGFR, the most appropriate choice is C.", "C", "answer_is", "dm"),
    ("So the answer must be E.", "E", "answer_is", "dm"),
    ("The answer is 2", "B", "answer_is", "dm"),
    ("answer is 4", "D", "answer_is", "dm"),
    ("The answer would be D (Glipizide).", "D", "answer_is", "dm"),
    ("THE ANSWER IS E", "E", "answer_is", "dm"),
    ("The answer is B, not C.", "B", "answer_is", "dm"),
    ("The answer is: E", "E", "answer_is", "dm"),
    (
        (
            "Let's analyze each option:\nA. Metformin - contraindicated with eGFR <"
            " 30.\nB. Insulin glargine - safe in renal failure.\nC. Sitagliptin -"
            " modest effect.\nD. Glipizide - hypoglycemia.\nE. Acarbose - GI"
            " effects.\n\nThe answer is B."
        ),
        "B",
        "answer_is",
        "dm",
    ),
    (
        ("The answer is B.\n\nExplanation: Option A (metformin) is contraindicated because of the eGFR."),
        "B",
        "answer_is",
        "dm",
    ),
    ("The answer is B. Option A is also correct in some guidelines.", "B", "answer_is", "dm"),
    ("The answer is A or B", UNPARSED, "hedge", "dm"),
    ("The answer is either B or C.", UNPARSED, "hedge", "dm"),
    ("The answer is C and D.", UNPARSED, "hedge", "dm"),
    ("The answer is (A), (B)", UNPARSED, "hedge", "dm"),
    ("The answer is A/B", UNPARSED, "hedge", "dm"),
    ("The answer is 2 mg", UNPARSED, None, "dm"),
    ("The answer is 2.5", UNPARSED, None, "dm"),
    ("The answer is 4 weeks.", UNPARSED, None, "dm"),
    ("The answer is 1:2.", UNPARSED, None, "dm"),
    ("The answer is 2-3 days.", UNPARSED, None, "dm"),
    ("The answer is 2%", UNPARSED, None, "dm"),
    ("The answer is 10", UNPARSED, None, "dm"),  # there is no tenth option
    ("The answer is F", UNPARSED, None, "dm"),
    ("The answer is a bit complicated; it depends on renal function.", UNPARSED, None, "dm"),
    ("The answer is Metformin", "A", "option_text", "dm"),
    ("The answer is Insulin glargine.", "B", "option_text", "dm"),
    ("The answer is metformin, since it is first-line therapy for type 2 diabetes.", "A", "option_text", "dm"),
    (
        ("Looking at the options, metformin is contraindicated here (eGFR 25). The best choice is insulin glargine."),
        "B",
        "option_text",
        "dm",
    ),
    ("The answer is 2 mg", "B", "option_text", "dose"),
    ("The answer is 5 mg.", "C", "option_text", "dose"),
    ("The answer is yes.", "A", "option_text", "pqa"),
    ("Based on the data, the answer is no.", "B", "option_text", "pqa"),
    ("The answer is maybe, because the evidence is mixed.", "C", "option_text", "pqa"),
    ("Based on the findings, the answer is: No.", "B", "option_text", "pqa"),
    ("The answer is not clear from the abstract.", UNPARSED, None, "pqa"),
    ("The answer is yes or no depending on the subgroup.", UNPARSED, "hedge", "pqa"),
    # "Answer: ..."
    ("Answer: B", "B", "answer_colon", "dm"),
    ("Answer: (D)", "D", "answer_colon", "dm"),
    ("Final Answer: A", "A", "answer_colon", "dm"),
    ("answer: e", "E", "answer_colon", "dm"),
    ("Answer：C", "C", "answer_colon", "dm"),
    ("Answer: option B", "B", "answer_colon", "dm"),
    ("Answer \u2014 C", "C", "answer_colon", "dm"),
    ("Answer - C", "C", "answer_colon", "dm"),
    ("Answer (B)", "B", "answer_colon", "dm"),
    ("Answer: Choice B", "B", "answer_colon", "dm"),
    ("Answer: ④", "D", "answer_colon", "dm"),
    ("**Answer:** D", "D", "answer_colon", "dm"),
    ("Correct answer: A. Metformin", "A", "answer_colon", "dm"),
    ("Correct Answer - D", "D", "answer_colon", "dm"),
    ("The answer: C", "C", "answer_colon", "dm"),
    ("ANSWER: c", "C", "answer_colon", "dm"),
    ("Answer -> E", "E", "answer_colon", "dm"),
    ("Answer: A\nAnswer: E", "E", "answer_colon", "dm"),
    ("Answer: B. Insulin glargine is preferred when HbA1c is very high.", "B", "answer_colon", "dm"),
    ("Hmm, A could work, but B is better. Final answer: B", "B", "answer_colon", "dm"),
    ("Answer: A or C", UNPARSED, "hedge", "dm"),
    ("Answer: A and C", UNPARSED, "hedge", "dm"),
    ("Answer: 7", UNPARSED, None, "dm"),
    ("Answer: 3 days", UNPARSED, None, "dm"),
    ("Answer:", UNPARSED, None, "dm"),
    ("Answer: Sitagliptin", "C", "option_text", "dm"),
    ("Answer: yes", "A", "option_text", "pqa"),
    ("Answer: No", "B", "option_text", "pqa"),
    ("Final answer: maybe", "C", "option_text", "pqa"),
    ("Answer: Yes, because the trial showed a significant reduction.", "A", "option_text", "pqa"),
    ("Answer: 10 mg", "D", "option_text", "dose"),
    ("Answer: 1 mg or 2 mg", UNPARSED, "hedge", "dose"),
    # "C is correct", "I would choose C"
    ("Option C is correct because DPP-4 inhibitors are weight neutral.", "C", "option_is_correct", "dm"),
    ("B is correct.", "B", "option_is_correct", "dm"),
    ("After reviewing each option, B is the correct answer.", "B", "option_is_correct", "dm"),
    ("A is incorrect. B is incorrect. D is correct.", "D", "option_is_correct", "dm"),
    ("(B) is the correct answer.", "B", "option_is_correct", "dm"),
    ("Choice D is correct.", "D", "option_is_correct", "dm"),
    ("Option 3 is correct.", "C", "option_is_correct", "dm"),
    ("I am not sure whether B or C is correct.", UNPARSED, "hedge", "dm"),
    ("Hepatitis B is the correct answer.", "B", "option_text", "hep_en"),
    ("Insulin glargine would be the best.", "B", "option_text", "dm"),
    ("B would be correct.", "B", "option_is_correct", "dm"),
    ("I would choose B.", "B", "choose", "dm"),
    ("I'd go with D.", "D", "choose", "dm"),
    ("I choose E because it delays carbohydrate absorption.", "E", "choose", "dm"),
    ("My choice is C.", "C", "choose", "dm"),
    ("I would pick option D.", "D", "choose", "dm"),
    ("I'm going with C.", "C", "choose", "dm"),
    ("I would choose A or B.", UNPARSED, "hedge", "dm"),
    # the whole reply
    ("C", "C", "bare_letter", "dm"),
    ("c", "C", "bare_letter", "dm"),
    ("(B)", "B", "bare_letter", "dm"),
    ("**D**", "D", "bare_letter", "dm"),
    ("D.", "D", "bare_letter", "dm"),
    (" A ", "A", "bare_letter", "dm"),
    ("Option E", "E", "bare_letter", "dm"),
    ("③", "C", "bare_letter", "dm"),
    (
        (
            "Let me reason step by step.\n\nMetformin lowers hepatic glucose"
            " output.\nSulfonylureas cause hypoglycemia.\n\nC"
        ),
        "C",
        "bare_letter",
        "dm",
    ),
    ("A", "A", "bare_letter", "pqa"),
    ("Sitagliptin", "C", "option_text", "dm"),
    ("Metformin", "A", "option_text", "dm"),
    ("After weighing the options: Glipizide", "D", "option_text", "dm"),
    ("Yes.", "A", "option_text", "pqa"),
    ("No", "B", "option_text", "pqa"),
    ("maybe", "C", "option_text", "pqa"),
    ("Yes, the results support the hypothesis.", "A", "option_text", "pqa"),
    ("B) Insulin glargine is preferred here.", "B", "leading_letter", "dm"),
    ("A. Metformin. It is the first-line agent.", "A", "leading_letter", "dm"),
    ("(D) Glipizide", "D", "leading_letter", "dm"),
    ("(A) yes", "A", "leading_letter", "pqa"),
    ("A or B", UNPARSED, "hedge", "dm"),
    ("A and C", UNPARSED, "hedge", "dm"),
    ("AC", UNPARSED, "hedge", "dm"),
    ("Both A and C are correct.", UNPARSED, "hedge", "dm"),
    ("Yes and no.", UNPARSED, None, "pqa"),
    ("I'm torn between B and C.", UNPARSED, None, "dm"),
    ("It's either A or D.", UNPARSED, None, "dm"),
    ("I am not sure.", UNPARSED, None, "dm"),
    ("", UNPARSED, None, "dm"),
    ("Both metformin and insulin are reasonable.", UNPARSED, None, "dm"),
    ("As a language model I cannot give medical advice.", UNPARSED, None, "dm"),
    ("A patient with diabetes should see a doctor.", UNPARSED, None, "dm"),  # 'A' as an article is not an answer
    # Korean and mixed
    ("정답: C", "C", "korean_answer", "ko"),
    ("정답은 3번", "C", "korean_answer", "ko"),
    ("정답은 ②번입니다.", "B", "korean_answer", "ko"),
    ("풀이: 메트포르민이 1차 약제이다.\n정답: A", "A", "korean_answer", "ko"),
    ("정답은 E입니다.", "E", "korean_answer", "ko"),
    ("따라서 정답은 4", "D", "korean_answer", "ko"),
    ("정답: ⑤", "E", "korean_answer", "ko"),
    ("정답은 (B)", "B", "korean_answer", "ko"),
    ("답: ②", "B", "korean_answer", "ko"),
    ("정답: 3번", "C", "korean_answer", "ko"),
    ("최종 답: B", "B", "korean_answer", "ko"),
    ("최종 정답: D", "D", "korean_answer", "ko"),
    ("정답은 3번입니다.", "C", "korean_answer", "ko"),
    ("답은 C입니다.", "C", "korean_answer", "ko"),
    ("정답 ④", "D", "korean_answer", "ko"),
    ("정답 : D", "D", "korean_answer", "ko"),
    ("정답=E", "E", "korean_answer", "ko"),
    ("정답은 2", "B", "korean_answer", "ko"),
    ("정답은 보기 3번입니다.", "C", "korean_answer", "ko"),
    ("정답은 1번, 메트포르민입니다.", "A", "korean_answer", "ko"),
    ("정답: ②번 (인슐린)", "B", "korean_answer", "ko"),
    ("정답은 C (시타글립틴)입니다.", "C", "korean_answer", "ko"),
    ("정답은 (C) 시타글립틴", "C", "korean_answer", "ko"),
    ("정답: ②\n\n해설: 인슐린은 신기능 저하 환자에서도 사용할 수 있다.", "B", "korean_answer", "ko"),
    ("해설: 설포닐우레아는 저혈당을 유발한다.\n\n**정답: ④**", "D", "korean_answer", "ko"),
    (
        (
            "문제에서 제2형 당뇨병 환자의 1차 약제를 묻고 있습니다. 메트포르민은"
            " 간의 포도당 생성을 줄입니다. 따라서 정답은 A입니다."
        ),
        "A",
        "korean_answer",
        "ko",
    ),
    ("답변: 정답은 C입니다.", "C", "korean_answer", "ko"),
    ("A는 정답이 아닙니다. 정답은 D입니다.", "D", "korean_answer", "ko"),
    ("B는 옳지 않다. 따라서 답은 E", "E", "korean_answer", "ko"),
    ("정답은 B가 아니라 C입니다.", "C", "korean_answer", "ko"),
    ("정답은 ②번이 아니라 ④번입니다.", "D", "korean_answer", "ko"),
    ("B가 정답입니다.", "B", "korean_answer", "ko"),
    ("3번이 정답입니다.", "C", "korean_answer", "ko"),
    ("②번이 정답", "B", "korean_answer", "ko"),
    ("이 환자에게 가장 적절한 것은 ③번입니다.", "C", "korean_answer", "ko"),
    ("정답: B", "B", "korean_answer", "hep"),
    ("정답은 메트포르민입니다.", "A", "option_text", "ko"),
    ("정답: 인슐린", "B", "option_text", "ko"),
    ("정답: 메트포르민 (A)", "A", "option_text", "ko"),
    ("이 환자에게 가장 적절한 약물은 메트포르민입니다.", "A", "option_text", "ko"),
    ("정답: A형 간염", "A", "option_text", "hep"),
    ("정답은 B형 간염입니다.", "B", "option_text", "hep"),
    ("시타글립틴", "C", "option_text", "ko"),
    ("A형 간염", "A", "option_text", "hep"),
    ("B를 선택하겠습니다.", "B", "choose", "ko"),
    ("3번을 고르겠습니다.", "C", "choose", "ko"),
    ("저는 B를 고르겠습니다.", "B", "choose", "ko"),
    ("B를 선택하지 않겠습니다. D를 선택합니다.", "D", "choose", "ko"),
    ("제 선택은 C입니다.", "C", "choose", "ko"),
    ("B가 가장 적절합니다.", "B", "option_is_correct", "ko"),
    ("C가 옳다.", "C", "option_is_correct", "ko"),
    ("②번", "B", "bare_letter", "ko"),
    ("3번", "C", "bare_letter", "ko"),
    ("③", "C", "bare_letter", "ko"),
    ("① 메트포르민", "A", "leading_letter", "ko"),
    ("<think>환자는 신부전이 있다.</think><answer>B</answer>", "B", "answer_tag", "ko"),
    ("<think>\u2026</think><answer>3번</answer>", "C", "answer_tag", "ko"),
    ("<think>사구체여과율이 낮다.</think>\n<answer>정답: ④</answer>", "D", "answer_tag", "ko"),
    ("\\boxed{③}", "C", "boxed", "ko"),
    ("정답은 \\boxed{B}입니다.", "B", "boxed", "ko"),
    ("풀이 과정을 거쳐 최종 답은 \\boxed{2}", "B", "boxed", "ko"),
    ("\\boxed{인슐린}", "B", "boxed", "ko"),
    ("정답은 A 또는 B입니다.", UNPARSED, "hedge", "ko"),
    ("정답은 2번과 4번입니다.", UNPARSED, "hedge", "ko"),
    ("정답은 ③, ④ 중 하나입니다.", UNPARSED, "hedge", "ko"),
    ("정답은 B, C입니다", UNPARSED, "hedge", "ko"),
    ("정답은 인슐린 또는 메트포르민입니다.", UNPARSED, "hedge", "ko"),
    ("A나 B", UNPARSED, "hedge", "ko"),
    ("B 아니면 C", UNPARSED, "hedge", "ko"),
    ("\\boxed{②, ③}", UNPARSED, "hedge", "ko"),
    ("정답: ③ 시타글립틴", "C", "korean_answer", "ko"),
    ("보기 중 가장 적절한 것은 ④번 글리피지드이다.", "D", "korean_answer", "ko"),
    ("정답은 ① 메트포르민입니다. 신기능이 정상이기 때문입니다.", "A", "korean_answer", "ko"),
    (
        ("<think>저혈당 위험을 고려하면 설포닐우레아는 피해야 한다.</think>\n<answer>③</answer>"),
        "C",
        "answer_tag",
        "ko",
    ),
    ("최종 정답은 ⑤번입니다.", "E", "korean_answer", "ko"),
    ("정답은 4번(글리피지드)이며, 설포닐우레아는 저혈당을 일으킨다.", "D", "korean_answer", "ko"),
    ("메트포르민이 정답입니다.", "A", "option_text", "ko"),
    ("인슐린을 선택합니다.", "B", "option_text", "ko"),
    ("정답은 인슐린입니다. 메트포르민은 정답이 아닙니다.", "B", "option_text", "ko"),
    ("정답을 모르겠습니다.", UNPARSED, None, "ko"),
    ("잘 모르겠지만 B 또는 C일 것 같습니다.", UNPARSED, None, "ko"),
    ("정답은 2개입니다.", UNPARSED, None, "ko"),
    ("정답은 3일입니다.", UNPARSED, None, "ko"),
    ("정답은 2 mg입니다.", UNPARSED, None, "ko"),
    ("이 문제는 추가 정보가 필요합니다.", UNPARSED, None, "ko"),
    # mixed English and Korean
    ("The answer is 3번", "C", "answer_is", "ko"),
    ("Answer: 2번", "B", "answer_colon", "ko"),
    ("Answer: ③번", "C", "answer_colon", "ko"),
    ("The correct answer is ③.", "C", "answer_is", "ko"),
    ("The answer is ② (인슐린).", "B", "answer_is", "ko"),
    ("최종 답: B (Insulin glargine)", "B", "korean_answer", "dm"),
    ("정답은 C. Sitagliptin", "C", "korean_answer", "dm"),
    ("Step 1: 환자의 HbA1c는 9%이다.\nStep 2: 신기능이 저하되어 있다.\nFinal answer: C", "C", "answer_colon", "ko"),
    ("이 문제의 answer는 B입니다.", "B", "answer_colon", "ko"),
    ("We are asked about glycogen synthase... So the answer is E. UDP-glucose.\n정답: E", "E", "korean_answer", "dm"),
    ("I would choose ②번.", "B", "choose", "ko"),
    ("Option 4 is correct. 정답: ④", "D", "korean_answer", "ko"),
    ("정답은 yes입니다.", "A", "option_text", "pqa"),
    ("Answer: 인슐린", "B", "option_text", "ko"),
    ("정답: Metformin", "A", "option_text", "dm"),
    ("정답은 A or B", UNPARSED, "hedge", "ko"),
    ("The answer is 2번 or 3번", UNPARSED, "hedge", "ko"),
]

# Written after the rules above were settled and run once before any change: 28 of 30 parsed
# answers right, 28 of 35 answers read (docs/PERFORMANCE.md). Those misses have been fixed since.
HELDOUT = [
    (
        ("Based on the clinical presentation, the most likely answer is **B. Insulin glargine**."),
        "B",
        "answer_is",
        "dm",
    ),
    ("Final Answer: The final answer is $\\boxed{A}$. I hope it is correct.", "A", "boxed", "dm"),
    ("The correct answer is B) Insulin glargine.", "B", "answer_is", "dm"),
    (
        ("**Answer: (C) Sitagliptin**\n\nRationale: DPP-4 inhibitors do not cause weight gain."),
        "C",
        "answer_colon",
        "dm",
    ),
    ("Therefore, option D is the best choice.", "D", "option_is_correct", "dm"),
    ("The answer is **(E)**.", "E", "answer_is", "dm"),
    ("So I'll pick A.", "A", "choose", "dm"),
    ("Correct option: B", "B", "answer_colon", "dm"),
    ("My answer: D", "D", "answer_colon", "dm"),
    ("Among the choices, Glipizide is the most appropriate.", "D", "option_text", "dm"),
    ("The answer is not A; it is C.", "C", "answer_is", "dm"),
    ("Answer: B or possibly E.", UNPARSED, "hedge", "dm"),
    ("I cannot determine the answer without more information.", UNPARSED, None, "dm"),
    ("The correct answers are A and D.", UNPARSED, None, "dm"),
    ("Answer: None of the above.", UNPARSED, None, "dm"),
    ("The answer is D. Glipizide (a sulfonylurea) stimulates insulin release.", "D", "answer_is", "dm"),
    ("Answer: [C]", "C", "answer_colon", "dm"),
    ("The answer is 3.", "C", "answer_is", "dm"),
    ("The answer is 3 mg.", UNPARSED, None, "dm"),
    ("Conclusion: yes", "A", "option_text", "pqa"),
    ("Final decision: no", "B", "option_text", "pqa"),
    ("Yes \u2014 the study supports it.", "A", "option_text", "pqa"),
    ("The data are inconclusive, so the answer is maybe.", "C", "option_text", "pqa"),
    ("The answer is yes, but only in the subgroup with diabetes.", "A", "option_text", "pqa"),
    ("Answer: 2 mg once daily", "B", "option_text", "dose"),
    ("정답은 ④번 글리피지드입니다.", "D", "korean_answer", "ko"),
    ("따라서 정답은 ③이다.", "C", "korean_answer", "ko"),
    ("정답: (5)", "E", "korean_answer", "ko"),
    ("답은 2번이에요.", "B", "korean_answer", "ko"),
    ("가장 적절한 답은 ①번이다.", "A", "korean_answer", "ko"),
    ("정답은 인슐린(②)입니다.", "B", "option_text", "ko"),
    ("[정답] 3", "C", "korean_answer", "ko"),
    ("정답: 2, 4", UNPARSED, "hedge", "ko"),
    ("정답이 없습니다.", UNPARSED, None, "ko"),
    ("①번과 ③번이 모두 정답입니다.", UNPARSED, None, "ko"),
    ("저는 ⑤번이 맞다고 생각합니다.", "E", "option_is_correct", "ko"),
    ("해설을 보면 B가 정답인 것 같습니다.", "B", "korean_answer", "ko"),
    ("정답은 B입니다. 왜냐하면 인슐린은 신기능과 무관하게 쓸 수 있기 때문입니다.", "B", "korean_answer", "ko"),
    ("정답 : ② 인슐린", "B", "korean_answer", "ko"),
    ("The answer is 인슐린.", "B", "option_text", "ko"),
    ("최종 답변: C", "C", "korean_answer", "ko"),
    ("정답은 5번 아카보스", "E", "korean_answer", "ko"),
    ("정답은 A형 간염이 아니라 B형 간염입니다.", "B", "option_text", "hep"),
]

# Replies a careful reader understands but the cascade misses or misreads, kept so that precision
# and recall stay honest: (completion, what the reader takes, question, (letter, rule) the cascade gives).
KNOWN_MISSES = [
    ("The patient should start metformin.", "A", "dm", (None, None)),
    ("Answer: The patient most likely needs insulin glargine.", "B", "dm", (None, None)),
    ("The recommended dose is 10 mg.", "D", "dose", (None, None)),
    ("The study suggests that yes, it does.", "A", "pqa", (None, None)),
    ("정답은 C일 가능성이 높지만 D일 수도 있습니다.", UNPARSED, "ko", ("C", "korean_answer")),
    ("The answer is I think B", "B", "dm", (None, None)),
    ("정답은 ②번 인슐린 또는 ③번 시타글립틴입니다.", UNPARSED, "ko", ("B", "korean_answer")),
]

TABLE = [(text, expected, question) for text, expected, _, question in CASES + HELDOUT] + [
    (text, expected, question) for text, expected, question, _ in KNOWN_MISSES
]


def read(text: str, question: str):
    """The answer as `medops eval mcqa` reads it: ``extract_choice(text, item.letters, item.options)``."""
    options = QUESTIONS[question]
    return extract_choice(text, "".join(options), options)


@pytest.mark.parametrize(("completion", "letter", "rule", "question"), CASES + HELDOUT)
def test_extraction_table(completion, letter, rule, question):
    result = read(completion, question)
    assert (result.choice, result.rule) == (letter, rule)


@pytest.mark.parametrize(("completion", "expected", "question", "given"), KNOWN_MISSES)
def test_known_misses_stay_known(completion, expected, question, given):
    """A miss that gets fixed (or changes) must move into CASES, so the reported numbers stay true."""
    result = read(completion, question)
    assert (result.choice, result.rule) == given
    assert result.choice != expected


def test_table_is_large_and_at_least_a_third_korean():
    assert len(TABLE) >= 200
    korean = sum(bool(re.search("[가-힣]", text)) for text, _, _ in TABLE)
    assert korean * 3 >= len(TABLE)
    assert all(expected is None or expected in QUESTIONS[question] for _, expected, question in TABLE)


def test_hedges_are_never_credited():
    hedges = ("A or B", "A and C", "\\boxed{ABCD}", "\\boxed{A, B}", "The answer is A or B", "정답은 2번과 4번입니다.")
    for text in hedges:
        assert (extract_choice(text, "ABCDE", OPTIONS).choice, extract_choice(text, "ABCDE").rule) == (None, "hedge")
    assert extract_choice("The answer is 2 mg", "ABCDE").choice is None  # a dose, not option 2
    assert extract_choice("The answer is 2", "ABCDE").choice == "B"


def test_letters_limit_the_choices():
    assert extract_choice("The answer is D", "ABC").choice is None
    assert extract_choice("정답은 3번", "ABC").choice == "C"
    assert extract_choice("yes", "ABC", {"A": "yes", "B": "no", "C": "maybe"}).choice == "A"
    assert extract_choice("The answer is maybe.", "ABC", {"A": "yes", "B": "no", "C": "maybe"}).choice == "C"


def test_trl_reward_signature_with_strings_and_messages():
    completions = ["\\boxed{A}", "The answer is B", "no idea", "\\boxed{C} and \\boxed{C}"]
    assert accuracy_reward(prompts=["q"] * 4, completions=completions, answer=["A", "A", "A", "C"]) == [1, 0, 0, 1]
    conversational = [
        [{"role": "assistant", "content": "<think>x</think><answer>D</answer>"}],
        [{"role": "assistant", "content": "Answer: E"}],
    ]
    assert accuracy_reward(
        prompts=[[{"role": "user", "content": "q"}]] * 2,
        completions=conversational,
        answer=["D", "D"],
        completion_ids=[[1], [2]],
    ) == [1.0, 0.0]
    shaped = make_reward(format_weight=0.1)
    scores = shaped(prompts=["q"] * 4, completions=completions, answer=["A", "A", "A", "C"])
    assert scores == pytest.approx([1.0, 0.0, 0.0, 0.9])  # the last is right but has two \boxed{}
    assert shaped.__name__ == "medops_reward_format_0.1"


def test_verl_compute_score_signature():
    assert compute_score("medqa", "Reasoning... \\boxed{B}", "B") == 1.0
    assert compute_score("medqa", "Reasoning... \\boxed{B}", "C", extra_info={"index": 3}) == 0.0
    assert compute_score("kmle", "정답: 2", "B", None) == 1.0
    assert compute_score(
        "x", "<think>a</think><answer>A</answer>", "A", {"format_weight": 0.1, "style": "r1"}
    ) == pytest.approx(1.0)
    assert compute_score("x", "A", "A", {"format_weight": 0.1, "style": "r1"}) == pytest.approx(0.9)


def test_format_check():
    assert well_formed("<think>r</think>\n<answer>C</answer>") == 1.0
    assert well_formed("<think>r</think> C") == 0.0
    assert well_formed("so \\boxed{C}") == 1.0 and well_formed("C") == 0.0


@pytest.mark.parametrize(
    "text",
    [
        "\\boxed{" + "A , " * 25 + "!}",  # exponential for a regex that tries every split of the spaces
        "A or " * 30 + "!",
        "A" + " " * 20000 + "x",
        "답" * 20000,  # quadratic if every statement scans the rest of the text
        "\\boxed{" * 3000,
        "The answer is unclear. " * 2000,
        "answer: " * 5000,
    ],
    ids=["boxed-spaces", "or-chain", "space-run", "korean-keys", "open-boxes", "answer-marks", "colon-marks"],
)
def test_adversarial_replies_stay_fast(text):
    """RL rewards read whatever a policy writes: no reply may stall the cascade."""
    started = time.perf_counter()
    extract_choice(text, "ABCDE", OPTIONS)
    assert time.perf_counter() - started < 2.0
