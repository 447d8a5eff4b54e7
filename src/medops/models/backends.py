"""The backend registry: what each ``backend:`` can do, and how to build its model.

Callers ask a spec or a model what it can do (``spec.capabilities.in_process``) instead of
testing backend names. A new backend is its own module, with a ``create`` function of the
signature below, plus one ``register(...)`` line at the end of this file. The module is imported
only when a model is built, so asking what a backend can do never loads torch or an SDK.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from medops.errors import UserError

if TYPE_CHECKING:
    from medops.models.base import ChatModel
    from medops.models.openai_chat import RetryPolicy
    from medops.models.spec import ModelSpec


@dataclass(frozen=True)
class Capabilities:
    """What a backend's models can do; every question about a backend is one of these."""

    in_process: bool = False  # weights live in this process: one copy can serve the model and grader roles
    logprobs: bool = False  # an API returns token logprobs (``top_logprobs``)
    choice_scoring: bool = False  # scores given continuations in process (``SamplingParams.score_choices``)
    priced: bool = False  # calls cost money by the price table; otherwise free unless a price is given
    images: bool = False  # takes image parts in messages (``medops.content``)


@dataclass(frozen=True)
class Backend:
    name: str
    capabilities: Capabilities
    create: str  # "module:function", called as function(spec, role=, concurrency=, retry=, batch_size=)


BACKENDS: dict[str, Backend] = {}


def register(name: str, capabilities: Capabilities, create: str) -> None:
    BACKENDS[name] = Backend(name, capabilities, create)


def backend_for(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise UserError(f"unknown backend '{name}'; known: {', '.join(BACKENDS)}") from None


def backends_with(capability: str) -> list[str]:
    """Names of the backends that have ``capability`` (for messages such as "local:, hf:")."""
    if capability not in {f.name for f in fields(Capabilities)}:
        raise ValueError(f"no capability '{capability}'")
    return [name for name, b in BACKENDS.items() if getattr(b.capabilities, capability)]


def create_model(spec: ModelSpec, *, role: str, concurrency: int, retry: RetryPolicy, batch_size: int = 8) -> ChatModel:
    """Build the model a spec names; its backend's module is imported only now."""
    module, _, function = backend_for(spec.backend).create.partition(":")
    create = getattr(importlib.import_module(module), function)
    return create(spec, role=role, concurrency=concurrency, retry=retry, batch_size=batch_size)


register("openai", Capabilities(logprobs=True, priced=True, images=True), "medops.models.openai_chat:create")
register("local", Capabilities(in_process=True, choice_scoring=True), "medops.models.local_hf:create")
register("hf", Capabilities(in_process=True, choice_scoring=True), "medops.models.local_hf:create")
