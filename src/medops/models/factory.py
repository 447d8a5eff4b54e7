"""Build a ChatModel from a spec; the single place backends are registered."""

from __future__ import annotations

from medops.models.base import ChatModel
from medops.models.openai_chat import OpenAIChatModel, RetryPolicy
from medops.models.spec import ModelSpec


def create_model(spec: ModelSpec, *, role: str, concurrency: int, retry: RetryPolicy, batch_size: int = 8) -> ChatModel:
    if spec.backend in ("local", "hf"):
        from medops.models.local_hf import LocalChatModel  # imports torch lazily: only when asked for

        return LocalChatModel(spec, role=role, batch_size=batch_size)
    return OpenAIChatModel(spec, role=role, concurrency=concurrency, retry=retry)
