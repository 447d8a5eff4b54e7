"""Exam items as RL training rows: the one row shape ``medops data export`` and ``medops rl prepare`` write.

A row carries what ``medops.rewards`` needs to read an answer exactly as ``medops eval mcqa``
reads it: the gold letter, the letters and the option texts (``{letter: text}``), so "The
answer is Metformin" or PubMedQA's "yes" scores the same in training as in evaluation. TRL
passes the columns to the reward function; verl passes ``extra_info``.

Items with images get the layouts the two trainers' vision GRPO reads, when the caller says where
each image goes (``image_ref``: (media type, bytes) -> what the row's ``images`` holds for it):

- TRL (``GRPOTrainer`` with a vision-language model): ``prompt`` is conversational with every
  content as parts, an ``{"type": "image"}`` placeholder where each image stood, and ``images``
  lists the images in placeholder order (TRL's ``prepare_multimodal_messages`` fills them in).
- verl (its multimodal ``RLHFDataset``): ``prompt`` content is text with an ``<image>`` marker
  where each image stood, and ``images`` lists them in marker order.

Without ``image_ref`` an item with images is refused in one line naming the format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from medops.content import decode_data_uri
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
    image_ref: ImageRef | None = None,
) -> dict:
    """One item as a TRL row (flat columns) or a verl row (``extra_info``; ``index`` is its position).

    With ``image_ref`` the row takes the vision layout (``images`` column; empty for a text item,
    so every row of a set has the same columns and types)."""
    if item.images and image_ref is None:
        raise UserError(f"item {item.id} has images, which --format {fmt} rows do not carry yet (text items only)")
    prompt = build_messages(item, style=style, language=language)
    vision: dict[str, Any] = {}
    if image_ref is not None:
        prompt, images = _vision_prompt(item, prompt, fmt, image_ref)
        vision = {"images": images}
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
            **vision,
        }
        return {**row, **{k: v for k, v in item.tags.items() if k not in row}}
    if fmt != "verl":
        raise ValueError(f"unknown training-row format {fmt!r}")
    info = {"index": index, "id": item.id, "letters": item.letters, "options": dict(item.options), "style": style}
    return {
        "data_source": f"medops/{task}",
        "prompt": prompt,
        **vision,
        "ability": "medical_mcqa",
        "reward_model": {"style": "rule", "ground_truth": item.answer},
        "extra_info": {**info, **{k: v for k, v in item.tags.items() if k not in info}},
    }


ImageRef = Callable[[str, bytes], Any]
VERL_IMAGE = "<image>"  # where verl's RLHFDataset puts each image of a prompt


def _vision_prompt(item: MCQItem, prompt: list[dict], fmt: str, image_ref: ImageRef) -> tuple[list[dict], list]:
    """The prompt with each image replaced by its format's placeholder, and the images in order."""
    images: list = []
    out = []
    for message in prompt:
        content = message["content"]
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        pieces: list[dict] = []
        for part in parts:
            if part["type"] == "text":
                if fmt == "verl" and VERL_IMAGE in part["text"]:
                    raise UserError(
                        f"item {item.id}: its text holds {VERL_IMAGE}, which verl reads as an image marker; "
                        "--format verl cannot carry it"
                    )
                pieces.append({"type": "text", "text": part["text"]})
                continue
            decoded = decode_data_uri(part["image_url"]["url"])
            if decoded is None:
                raise UserError(f"item {item.id}: an image is not a data: URI")
            images.append(image_ref(*decoded))
            pieces.append({"type": "image"})
        if fmt == "verl":
            text = "\n".join(VERL_IMAGE if p["type"] == "image" else p["text"] for p in pieces)
            out.append({**message, "content": text})
        else:
            out.append({**message, "content": pieces})
    return out, images
