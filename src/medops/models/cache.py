"""Keys for answering identical requests from the store instead of the network."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from medops.content import keyed
from medops.models.base import Messages, SamplingParams


def request_key(identity: dict[str, Any], messages: Messages, params: SamplingParams, sample: int = 0) -> str:
    """Same endpoint, model, parameters, messages and sample number give the same key.

    ``sample`` keeps ``--repeats`` honest: repeat k of an example is a fresh draw, not the
    cached answer of repeat 0. An image keys on the sha256 of its bytes (``content.keyed``), never
    on its base64 text or the path it was read from; text-only messages key as they always did.
    """
    payload = json.dumps(
        [identity, params.identity(), keyed(messages) if _has_parts(messages) else messages, sample],
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _has_parts(messages: Messages) -> bool:
    """Whether any content is a list of parts (the hot path skips the walk for text)."""
    return any(isinstance(m.get("content"), list) for m in messages)
