"""Which upstream answers a request: A/B split to a candidate, and shadow copies.

* **Split** (``--candidate URL --split 0.1 --seed 0``): a conversation goes to the candidate when
  ``sha256(seed, conversation key)`` read as a number in [0, 1) is below the split. The key is the
  ``X-Medops-Conversation`` header, else a hash of the request's first user message, so every
  turn of a conversation goes to the same arm (sticky) and the same seed gives the same
  assignment on every gateway replica, with no shared state.
* **Shadow** (``--shadow URL``): every request is also sent to the candidate, after the primary
  request started and without delaying it; the candidate's answer is recorded (arm ``shadow``,
  the same ``pair_id`` as the primary exchange) and never returned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medops.content import digests, text_of
from medops.models.targets import Target

CONVERSATION_HEADER = "x-medops-conversation"


def first_user_text(payload: dict[str, Any]) -> str:
    """The first user message's text (and its images' digests), or ``""``."""
    for message in payload.get("messages") or ():
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")  # images by digest, so two pictures are two conversations
            return "\n".join([text_of(content), *digests(content)])
    return ""


def conversation_key(header: str | None, payload: dict[str, Any]) -> str:
    """The header's value, else ``h:`` and 16 hex digits of the first user message's hash (stored
    as the exchange's conversation id: it links turns, never holds text)."""
    if header:
        return header
    return "h:" + hashlib.sha256(first_user_text(payload).encode()).hexdigest()[:16]


def share(seed: int, key: str) -> float:
    """A number in [0, 1), uniform over keys, fixed for (seed, key)."""
    digest = hashlib.sha256(f"{seed}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Routing:
    candidate: str | None = None  # base URL of the candidate arm
    split: float = 0.0  # share of conversations it answers
    seed: int = 0
    shadow: str | None = None  # base URL that gets a copy of every request

    @classmethod
    def for_targets(cls, targets: Mapping[str, Target], *, split: float = 0.0, seed: int = 0) -> Routing:
        """The routing of a deployment's targets by role (``models.targets.gateway_targets``)."""
        candidate, shadow = targets.get("candidate"), targets.get("shadow")
        return cls(
            candidate=candidate.endpoint if candidate else None,
            split=split if candidate else 0.0,
            seed=seed,
            shadow=shadow.endpoint if shadow else None,
        )

    def arm(self, key: str) -> str:
        """``candidate`` or ``primary`` for a conversation key."""
        if self.candidate and self.split > 0 and share(self.seed, key) < self.split:
            return "candidate"
        return "primary"
