"""What an ``hf:`` checkpoint is, read from its ``config.json`` without loading it.

A checkpoint whose config names a vision-to-text architecture (transformers' image-text-to-text
models: Idefics3 / SmolVLM, Qwen2-VL, LLaVA, Gemma 3, ...) takes images; any other is a text
model. Asked whenever a spec's capabilities are (``ModelSpec.capabilities``), so it reads one
small file and imports transformers only when there is a config to read.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medops.models.base import Capabilities
    from medops.models.spec import ModelSpec

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def capabilities(spec: ModelSpec, base: Capabilities) -> Capabilities:
    """The backend's capabilities, with ``images`` when the checkpoint is a vision-language model."""
    return replace(base, images=True) if is_vision_checkpoint(spec.name, spec.options.get("revision")) else base


@functools.cache
def is_vision_checkpoint(source: str, revision: str | None = None) -> bool:
    config = _config_file(source, revision)
    if config is None:
        return False  # unreadable here: loading the model reports why, in one line
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return False
    if not isinstance(model_type, str):
        return False
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    return model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES


def _config_file(source: str, revision: str | None) -> Path | None:
    path = Path(source)
    if path.is_dir():
        return path / "config.json" if (path / "config.json").is_file() else None
    if not _HUB_ID.fullmatch(source):
        return None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(source, "config.json", revision=revision))
    except Exception:  # offline, unknown repo, no hub client: the load names the cause
        return None
