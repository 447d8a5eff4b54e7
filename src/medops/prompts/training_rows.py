"""Exam items as RL training rows: the one row shape ``medops data export`` and ``medops rl prepare`` write.

A row carries what ``medops.rewards`` needs to read an answer exactly as ``medops eval mcqa``
reads it: the gold letter, the letters and the option texts (``{letter: text}``), so "The
answer is Metformin" or PubMedQA's "yes" scores the same in training as in evaluation. TRL
passes the columns to the reward function; verl passes ``extra_info``.
"""

from __future__ import annotations

from typing import Literal

from medops.datasets.mcqa import MCQItem
from medops.errors import UserError
from medops.prompts.mcqa import build_messages


def training_row(
    item: MCQItem,
    task: str,
    style: str,
    language: str,
    *,
    fmt: Literal["trl", "verl"] = "trl",
    index: int | None = None,
) -> dict:
    """One item as a TRL row (flat columns) or a verl row (``extra_info``; ``index`` is its position)."""
    if item.images:
        raise UserError(f"item {item.id} has images, which --format {fmt} rows do not carry yet (text items only)")
    prompt = build_messages(item, style=style, language=language)
    if fmt == "trl":
        # TRL reads prompt/answer; question/options/answer_idx let `medops eval mcqa --task generic` read it too.
        row = {
            "prompt": prompt,
            "answer": item.answer,
            "letters": item.letters,
            "id": item.id,
            "task": task,
            "question": item.question,
            "options": dict(item.options),
            "answer_idx": item.answer,
        }
        return {**row, **{k: v for k, v in item.tags.items() if k not in row}}
    if fmt != "verl":
        raise ValueError(f"unknown training-row format {fmt!r}")
    info = {"index": index, "id": item.id, "letters": item.letters, "options": dict(item.options), "style": style}
    return {
        "data_source": f"medops/{task}",
        "prompt": prompt,
        "ability": "medical_mcqa",
        "reward_model": {"style": "rule", "ground_truth": item.answer},
        "extra_info": {**info, **{k: v for k, v in item.tags.items() if k not in info}},
    }
