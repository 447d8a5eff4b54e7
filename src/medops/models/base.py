"""The one interface the evaluation pipeline uses to talk to any model."""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from typing_extensions import Required, TypedDict

from medops.content import Content


class Message(TypedDict, total=False):
    """One chat message; ``content`` is text or a list of parts (``medops.content``)."""

    role: Required[str]
    content: Content
    name: str
    tool_calls: list[dict[str, Any]]
    tool_call_id: str


Messages = list[Message]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample, plus the two non-sampling requests some backends support.

    ``score_choices`` asks for the log-probability of each choice continuing the assistant
    turn after ``assistant_prefix`` instead of a generation (in-process backends only).
    """

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    top_logprobs: int | None = None
    response_format: str | None = None  # JSON text, so the params stay hashable
    assistant_prefix: str | None = None
    score_choices: tuple[str, ...] | None = None
    # token logprobs wanted but not needed (an exam answer's confidence): an endpoint that refuses
    # them (HTTP 400 naming logprobs) is asked again without them, and not asked for them again
    logprobs_optional: bool | None = None

    def to_request(self) -> dict[str, Any]:
        """OpenAI chat-completions fields for what was set, so endpoint defaults apply to the rest."""
        body: dict[str, Any] = {
            k: v for k in ("temperature", "max_tokens", "top_p", "seed") if (v := getattr(self, k)) is not None
        }
        if self.top_logprobs is not None:
            body.update(logprobs=True, top_logprobs=self.top_logprobs)
        if self.response_format is not None:
            body["response_format"] = json.loads(self.response_format)
        return body

    def identity(self) -> dict[str, Any]:
        """Everything that changes the answer: part of the cache key."""
        return _identity(self)


@functools.cache
def _identity(params: SamplingParams) -> dict[str, Any]:  # hot path: once per distinct params, not per call
    return {f.name: v for f in fields(params) if (v := getattr(params, f.name)) is not None}


@dataclass
class Completion:
    """One chat completion, or the error that ended its tries."""

    text: str | None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    # Network attempts, retries included, split by how the endpoint answered: ``rejected`` counts
    # 429s (refused before any work, not billed), ``calls`` every other attempt (answers, other
    # errors, timeouts, connection errors). Both 0 when answered from the cache.
    calls: int = 0
    rejected: int = 0
    cached: bool = False
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # what before-call subscribers did to the request (e.g. ``{"phi": {"policy": "redact", ...}}``),
    # stored with the call's row; never the request's content
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


@dataclass(frozen=True)
class Capabilities:
    """What a backend's models can do; every question about a backend is one of these."""

    in_process: bool = False  # weights live in this process: one copy can serve the model and grader roles
    logprobs: bool = False  # an API returns token logprobs (``top_logprobs``)
    choice_scoring: bool = False  # scores given continuations in process (``SamplingParams.score_choices``)
    priced: bool = False  # calls cost money by the price table; otherwise free unless a price is given
    images: bool = False  # takes image parts in messages (``medops.content``)


@dataclass(frozen=True)
class RetryPolicy:
    """How every backend retries a call: tries, backoff, and how long one attempt may take."""

    max_tries: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    timeout_s: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: attempt 1 waits ~base, then doubles, capped."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


class StopRequested(Exception):
    """The run is stopping (Ctrl-C, budget): this call was not started and will not be."""


class FatalModelError(Exception):
    """The endpoint refuses every request (bad key, unknown model): stop the run, keep the work."""


class ChatModel(Protocol):
    """What every backend provides."""

    label: str  # e.g. "openai:gpt-4.1"
    capabilities: Capabilities  # its backend's, as ``ModelSpec.capabilities`` answers them

    def identity(self) -> dict[str, Any]:
        """What makes two requests to this model interchangeable (endpoint, model name)."""
        ...

    async def complete(self, messages: Messages, params: SamplingParams) -> Completion: ...

    def stop(self) -> None:
        """Start no new call; calls already in flight finish normally."""
        ...

    async def aclose(self) -> None: ...
