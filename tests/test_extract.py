"""Answer extraction on realistic completions, and the rewards called exactly as TRL and verl call them."""

from __future__ import annotations

import pytest

from medops.grading.extract import extract_choice
from medops.rewards import accuracy_reward, compute_score, make_reward, well_formed

OPTIONS = {"A": "Metformin", "B": "Insulin glargine", "C": "Sitagliptin", "D": "Glipizide", "E": "Acarbose"}

CASES = [
    # (completion, expected letter, expected rule)
    ("C", "C", "bare_letter"),
    ("c", "C", "bare_letter"),
    ("(B)", "B", "bare_letter"),
    ("**D**", "D", "bare_letter"),
    ("D.", "D", "bare_letter"),
    (" A ", "A", "bare_letter"),
    ("Option E", "E", "bare_letter"),
    ("③", "C", "bare_letter"),
    ("The answer is C.", "C", "answer_is"),
    ("The answer is (B) because it lowers glucose.", "B", "answer_is"),
    ("The correct answer is **A**", "A", "answer_is"),
    ("Final answer is D", "D", "answer_is"),
    ("The best answer would be E.", "E", "answer_is"),
    ("the answer is (c)", "C", "answer_is"),
    ("The answer is c.", "C", "answer_is"),
    ("Answer: B", "B", "answer_colon"),
    ("Answer: (D)", "D", "answer_colon"),
    ("Final Answer: A", "A", "answer_colon"),
    ("answer: e", "E", "answer_colon"),
    ("Answer：C", "C", "answer_colon"),
    ("Answer: option B", "B", "answer_colon"),
    ("Let's think step by step. Metformin is first line...\nTherefore, \\boxed{A}", "A", "boxed"),
    ("\\boxed{C}", "C", "boxed"),
    ("The final answer is $\\boxed{B}$.", "B", "boxed"),
    ("\\boxed{\\text{D}}", "D", "boxed"),
    ("\\boxed{(E)}", "E", "boxed"),
    ("\\boxed{C. Sitagliptin}", "C", "boxed"),
    ("First I thought \\boxed{A}, but on reflection \\boxed{D}", "D", "boxed"),
    ("Answer: A. Wait, no. The answer is \\boxed{B}", "B", "boxed"),
    ("<think>Sulfonylureas cause hypoglycemia.</think><answer>D</answer>", "D", "answer_tag"),
    ("<think>...</think>\n<answer> (B) </answer>", "B", "answer_tag"),
    ("<think>long reasoning</think><answer>c</answer>", "C", "answer_tag"),
    ("The answer is A. Actually, reconsidering, the answer is C.", "C", "answer_is"),
    ("Answer: A\nAnswer: E", "E", "answer_colon"),
    ("I'd say the answer is B, the answer is D.", "D", "answer_is"),
    ("정답: C", "C", "korean_answer"),
    ("정답은 3번", "C", "korean_answer"),
    ("정답은 ②번입니다.", "B", "korean_answer"),
    ("풀이: 메트포르민이 1차 약제이다.\n정답: A", "A", "korean_answer"),
    ("정답은 E입니다.", "E", "korean_answer"),
    ("따라서 정답은 4", "D", "korean_answer"),
    ("정답: ⑤", "E", "korean_answer"),
    ("정답은 (B)", "B", "korean_answer"),
    ("We are asked about glycogen synthase... So the answer is E. UDP-glucose.\n정답: E", "E", "answer_is"),
    ("Option C is correct because DPP-4 inhibitors are weight neutral.", "C", "option_is_correct"),
    ("The answer is 2", "B", "answer_is"),
    ("Answer: ④", "D", "answer_colon"),
    ("Sitagliptin", "C", "option_text"),
    ("The answer is Insulin glargine.", "B", "option_text"),
    ("After weighing the options: Glipizide", "D", "option_text"),
    ("B) Insulin glargine is preferred here.", "B", "leading_letter"),
    ("A. Metformin. It is the first-line agent.", "A", "leading_letter"),
    ("(D) Glipizide", "D", "leading_letter"),
    ("The answer is a bit complicated; it depends on renal function.", None, None),
    ("I am not sure.", None, None),
    ("", None, None),
    ("Both metformin and insulin are reasonable.", None, None),
    ("The answer is F", None, None),  # not an option of this question
    ("Answer: 7", None, None),
    ("\\boxed{}", None, None),
    ("<answer></answer>", None, None),
    ("As a language model I cannot give medical advice.", None, None),
    ("A patient with diabetes should see a doctor.", None, None),  # 'A' as an article is not an answer
    ("정답을 모르겠습니다.", None, None),
    ("Answer:", None, None),
]


@pytest.mark.parametrize(("completion", "letter", "rule"), CASES)
def test_extraction_table(completion, letter, rule):
    result = extract_choice(completion, "ABCDE", OPTIONS)
    assert (result.choice, result.rule) == (letter, rule)


def test_table_is_large_enough():
    assert len(CASES) >= 60


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
