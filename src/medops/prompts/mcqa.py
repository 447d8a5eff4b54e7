"""Exam prompts in three styles, English or Korean, zero- or few-shot, overridable by template.

* ``direct``: answer with the option letter;
* ``cot``: reason step by step, final answer in ``\\boxed{X}`` (AlphaMed's evaluation style);
* ``r1``: ``<think>...</think><answer>X</answer>``;
* ``confidence``: ``Answer: X`` then ``Confidence: N%`` (the confidence the model states, read by
  ``scoring.confidence.stated_confidence`` when the model gives no logprobs).

``abstain=True`` (``--allow-abstain``) adds one sentence allowing "I don't know" to any style.

A template file replaces the user turn; it may use ``<<instruction>>``, ``<<question>>`` and
``<<options>>`` (options are rendered one per line as ``A. text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from medops.content import Content
from medops.datasets.mcqa import KOREAN_TASKS, MCQItem
from medops.errors import UserError
from medops.models.base import Messages

STYLES = ("direct", "cot", "r1", "confidence")
LANGUAGES = ("en", "ko")
DEFAULT_TEMPLATE = "<<instruction>>\n\n<<question>>\n\n<<options>>"

INSTRUCTIONS = {
    (
        "direct",
        "en",
    ): "Answer the following multiple-choice question. Reply with the letter of the correct option only.",
    ("cot", "en"): "Answer the following multiple-choice question. Think step by step, then give the final answer "
    "as \\boxed{X}, where X is the letter of the correct option.",
    ("r1", "en"): "Answer the following multiple-choice question. Reason inside <think> </think>, then give only the "
    "letter of the correct option inside <answer> </answer>.",
    ("confidence", "en"): "Answer the following multiple-choice question. Reply with 'Answer: X', where X is the "
    "letter of the correct option, then on a new line 'Confidence: N%', your probability (0-100) that the answer "
    "is correct.",
    ("direct", "ko"): "다음 객관식 문제의 정답을 고르세요. 정답 보기의 알파벳 하나만 답하세요.",
    ("cot", "ko"): "다음 객관식 문제를 단계적으로 풀이한 뒤, 최종 답을 \\boxed{X} 형식으로 제시하세요. "
    "X는 정답 보기의 알파벳입니다.",
    (
        "r1",
        "ko",
    ): "다음 객관식 문제를 <think> </think> 안에서 추론한 뒤, 정답 보기의 알파벳만 <answer> </answer> 안에 쓰세요.",
    ("confidence", "ko"): "다음 객관식 문제의 정답을 고르세요. '정답: X' (X는 정답 보기의 알파벳) 형식으로 답한 뒤, "
    "다음 줄에 '확신도: N%' 형식으로 그 답이 맞을 확률(0-100)을 쓰세요.",
}
# With --allow-abstain: the model may decline instead of guessing.
ABSTAIN_SENTENCE = {
    "en": "If you do not know the answer, reply \"I don't know\" instead of guessing.",
    "ko": "정답을 모르면 추측하지 말고 \"모르겠습니다\"라고 답하세요.",
}
# What a worked example's answer looks like in each style (no rationale is invented).
_SHOT_ANSWER = {
    "direct": "{letter}",
    "cot": "The answer is \\boxed{{{letter}}}.",
    "r1": "<think>\n</think>\n<answer>{letter}</answer>",
    "confidence": "Answer: {letter}\nConfidence: 100%",
}
# Where the answer letter starts, for log-likelihood scoring.
ANSWER_PREFIX = {"en": "Answer:", "ko": "정답:"}


def default_language(task: str) -> str:
    return "ko" if task in KOREAN_TASKS else "en"


def load_prompt_template(path: str | Path) -> str:
    try:
        text = Path(path).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read prompt template ({exc})") from None
    if "<<question>>" not in text:
        raise UserError(f"{path}: prompt template lacks the placeholder <<question>>")
    return text


def render_options(item: MCQItem) -> str:
    return "\n".join(f"{letter}. {text}" for letter, text in item.options.items())


def instruction(style: str, language: str, abstain: bool = False) -> str:
    text = INSTRUCTIONS[(style, language)]
    return f"{text} {ABSTAIN_SENTENCE[language]}" if abstain else text


def user_turn(item: MCQItem, style: str, language: str, template: str | None = None, abstain: bool = False) -> str:
    return (
        (template or DEFAULT_TEMPLATE)
        .replace("<<instruction>>", instruction(style, language, abstain))
        .replace("<<question>>", item.question)
        .replace("<<options>>", render_options(item))
    )


def user_content(
    item: MCQItem, style: str, language: str, template: str | None = None, abstain: bool = False
) -> Content:
    """The user turn: its text, followed by the item's images as content parts when it has any."""
    text = user_turn(item, style, language, template, abstain)
    return [{"type": "text", "text": text}, *item.images] if item.images else text


def build_messages(
    item: MCQItem,
    *,
    style: str,
    language: str,
    template: str | None = None,
    shots: Sequence[MCQItem] = (),
    system_message: str | None = None,
    abstain: bool = False,
) -> Messages:
    """The chat for one item: optional system message, worked examples, then the question."""
    messages: Messages = [{"role": "system", "content": system_message}] if system_message else []
    for shot in shots:
        messages.append({"role": "user", "content": user_content(shot, style, language, template, abstain)})
        messages.append({"role": "assistant", "content": _SHOT_ANSWER[style].format(letter=shot.answer)})
    messages.append({"role": "user", "content": user_content(item, style, language, template, abstain)})
    return messages
