"""Rule-based rewards for RL on exam questions (the AlphaMed recipe), using the very rule that
``medops eval mcqa`` scores with, so a model is trained on exactly what it is measured on.

TRL (``GRPOTrainer(reward_funcs=[...])``)::

    from medops.rewards import accuracy_reward, make_reward
    trainer = GRPOTrainer(..., reward_funcs=[make_reward(format_weight=0.1)])

TRL calls ``reward(prompts=..., completions=..., **dataset_columns)``; completions are strings or
chat messages (``[{"role": "assistant", "content": ...}]``); the gold letter comes from the
dataset column ``answer`` (or ``solution``/``ground_truth``), the letters and option texts from
the columns ``letters`` and ``options`` (``{letter: text}``). One float per completion.

verl (``custom_reward_function.path=medops/rewards/__init__.py``, ``name=compute_score``; the rubric
reward for verl is ``medops/rewards/rubric.py``, same name)::

    compute_score(data_source, solution_str, ground_truth, extra_info=None) -> float

with ``extra_info["letters"]`` and ``extra_info["options"]``. ``medops data export`` and
``medops rl prepare`` write both, so "The answer is Metformin" and PubMedQA's "yes" / "no" /
"maybe" are read here exactly as ``medops eval mcqa`` reads them. Without options only letters,
numbers and circled numbers are read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from medops.scoring.extract import extract_choice

_BOXED = re.compile(r"\\boxed\s*\{")
_R1 = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.DOTALL)


def _text(completion: Any) -> str:
    """A completion as TRL passes it: a string, or a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        last = completion[-1]
        return last.get("content", "") if isinstance(last, dict) else str(last)
    if isinstance(completion, dict):
        return completion.get("content", "")
    return ""


def _choices(letters: Any, options: Any, n: int = 5) -> tuple[str, dict[str, str] | None]:
    """The letters and option texts of one row, as an exam item has them for ``medops eval mcqa``.

    Arrow gives every row of a column the union of the keys (a 4-option item beside 5-option
    ones comes back with ``"E": None``): keys without a text are no options, and the letters
    column, when there is one, decides which letters exist (the reader ignores texts of others)."""
    if isinstance(letters, str) and letters.isalpha():
        return letters, options if isinstance(options, dict) and options else None
    if isinstance(options, dict) and options:
        return "".join(sorted(k for k, v in options.items() if v is not None)), options
    if isinstance(options, str) and options.isalpha():  # letters passed as "options"
        return options, None
    return "ABCDEFGHIJ"[:n], None


def correctness(
    completion: Any, answer: str, letters: str = "ABCDEFGHIJ", options: dict[str, str] | None = None
) -> float:
    """1.0 when the extracted final answer is the gold letter, else 0.0 (unparsed and hedges included)."""
    return 1.0 if extract_choice(_text(completion), letters, options).choice == str(answer).strip().upper() else 0.0


def well_formed(completion: Any, style: str = "auto") -> float:
    """1.0 for a reply in the prompt style the reward expects: exactly one ``\\boxed{}`` (cot)
    or ``<think>...</think><answer>...</answer>`` (r1)."""
    text = _text(completion)
    if style == "auto":
        style = "r1" if "<think>" in text or "<answer>" in text else "cot"
    if style == "r1":
        body = text.strip()
        ordered = body.startswith("<think>") and body.endswith("</answer>")
        return 1.0 if ordered and body.count("<answer>") == 1 and _R1.match(body) else 0.0
    if text.count("\\boxed") != 1:  # a substring count first: the regex only confirms the one candidate
        return 0.0
    return 1.0 if _BOXED.search(text) else 0.0


def _gold(kwargs: dict[str, Any], n: int) -> Sequence[str]:
    for key in ("answer", "solution", "ground_truth", "gold"):
        if key in kwargs:
            value = kwargs[key]
            return [value] * n if isinstance(value, str) else list(value)
    raise KeyError("the dataset needs an 'answer' column (the gold letter) for medops rewards")


def _per_row(value: Any, n: int) -> Sequence[Any]:
    return value if isinstance(value, list) else [value] * n


def accuracy_reward(prompts: Any = None, completions: Sequence[Any] = (), **kwargs: Any) -> list[float]:
    """Binary correctness, TRL's reward-function signature."""
    n = len(completions)
    gold = _gold(kwargs, n)
    letters, options = _per_row(kwargs.get("letters"), n), _per_row(kwargs.get("options"), n)
    return [
        correctness(c, g, *_choices(letters[i], options[i]))
        for i, (c, g) in enumerate(zip(completions, gold, strict=True))
    ]


def format_reward(
    prompts: Any = None, completions: Sequence[Any] = (), style: str = "auto", **kwargs: Any
) -> list[float]:
    """1.0 per well-formed completion, TRL's signature (logged separately as the format rate)."""
    return [well_formed(c, style) for c in completions]


def make_reward(format_weight: float = 0.0, style: str = "auto") -> Callable[..., list[float]]:
    """``(1 - w) x correct + w x well-formed`` (w = 0.1 in public reproductions), TRL's signature."""
    if not 0.0 <= format_weight <= 1.0:
        raise ValueError("format_weight must be between 0 and 1")

    def reward(prompts: Any = None, completions: Sequence[Any] = (), **kwargs: Any) -> list[float]:
        correct = accuracy_reward(prompts, completions, **kwargs)
        if format_weight == 0.0:
            return correct
        return [
            (1 - format_weight) * c + format_weight * well_formed(x, style)
            for c, x in zip(correct, completions, strict=True)
        ]

    reward.__name__ = f"medops_reward_format_{format_weight:g}"
    return reward


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: dict | None = None) -> float:
    """verl's custom reward entry point: binary correctness, plus a format term if
    ``extra_info["format_weight"]`` is set."""
    info = extra_info or {}
    score = correctness(solution_str, ground_truth, *_choices(info.get("letters"), info.get("options")))
    weight = float(info.get("format_weight", 0.0))
    if weight:
        score = (1 - weight) * score + weight * well_formed(solution_str, info.get("style", "auto"))
    return score
