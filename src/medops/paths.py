"""Where medops keeps what it downloads or converts: one place for every cache directory.

``MEDOPS_CACHE_DIR`` (default ``~/.cache/medops``) holds pulled data sets (``exams/`` for hub
exam sets); ``MEDOPS_MODEL_CACHE`` (default ``models/`` in it) holds converted checkpoints,
which are large. Read at each call, so a changed environment takes effect at once. Nothing here
imports the rest of medops.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``MEDOPS_CACHE_DIR``, or ``~/.cache/medops``."""
    return Path(os.environ.get("MEDOPS_CACHE_DIR") or Path.home() / ".cache" / "medops")


def exam_cache_dir() -> Path:
    """Exam sets pulled from the Hugging Face hub, converted to JSONL."""
    return cache_dir() / "exams"


def model_cache_dir() -> Path:
    """``MEDOPS_MODEL_CACHE``, or ``models/`` in the medops cache."""
    return Path(os.environ.get("MEDOPS_MODEL_CACHE") or cache_dir() / "models")
