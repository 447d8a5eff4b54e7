"""The one interface the evaluation pipeline uses to talk to any model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class SamplingParams:
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def to_request(self) -> dict[str, Any]:
        """Only the parameters that were set, so endpoint defaults apply to the rest."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Completion:
    """One chat completion, or the error that ended its tries."""

    text: str | None
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    calls: int = 0  # network calls made, retries included; 0 when answered from the cache
    cached: bool = False
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


class StopRequested(Exception):
    """The run is stopping (Ctrl-C, budget): this call was not started and will not be."""


class FatalModelError(Exception):
    """The endpoint refuses every request (bad key, unknown model): stop the run, keep the work."""


class ChatModel(Protocol):
    """What every backend provides."""

    label: str  # e.g. "openai:gpt-4.1"

    def identity(self) -> dict[str, Any]:
        """What makes two requests to this model interchangeable (endpoint, model name)."""
        ...

    async def complete(self, messages: Messages, params: SamplingParams) -> Completion: ...

    def stop(self) -> None:
        """Start no new call; calls already in flight finish normally."""
        ...

    async def aclose(self) -> None: ...
