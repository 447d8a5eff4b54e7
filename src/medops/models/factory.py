"""Build a ChatModel from a spec; the single place new backends are registered."""

from __future__ import annotations

from medops.errors import UserError
from medops.models.base import ChatModel
from medops.models.openai_chat import OpenAIChatModel, RetryPolicy
from medops.models.spec import ModelSpec


def create_model(spec: ModelSpec, *, role: str, concurrency: int, retry: RetryPolicy) -> ChatModel:
    if spec.backend == "openai":
        return OpenAIChatModel(spec, role=role, concurrency=concurrency, retry=retry)
    raise UserError(f"{spec}: the '{spec.backend}' backend is not available in this version of medops")
