"""Events of a run, and the bus that delivers them: the one place every call and stored row passes.

Cross-cutting features (MLflow logging, the PHI guard, the audit trail, monitoring) subscribe
here instead of editing the pipelines. A subscriber is any object with some of these methods::

    on_run_started(RunStarted)    on_run_ended(RunEnded)       on_job_done(JobDone)
    before_call(BeforeCall)       after_call(AfterCall)       on_row_written(RowWritten)

``before_call`` may rewrite ``event.messages`` (what is sent, cached and stored as sent) or
``event.refuse(reason)``: the call is then not made and is recorded as a failed call (counted,
resumable). Subscribers run in the order they were added; an exception in one propagates
(a guard that cannot decide must not let the call through). ``on_row_written`` runs in the
store writer's thread, after the row is committed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from medops.models.base import Completion, Messages, SamplingParams


@dataclass(frozen=True)
class RunStarted:
    run_id: int
    benchmark: str
    config: dict[str, Any]
    resumed: bool
    jobs: int = 0  # the jobs the run will go through (a resumed run's include those already done)


@dataclass(frozen=True)
class JobDone:
    """One job of the run (an item and repeat, with all its calls) finished; progress counts these."""

    run_id: int | None


@dataclass(frozen=True)
class RunEnded:
    run_id: int
    benchmark: str
    status: str
    summary: dict[str, Any]
    message: str | None


@dataclass
class BeforeCall:
    """A request about to be sent. Subscribers may replace ``messages`` or refuse the call."""

    run_id: int | None
    role: str  # "model" | "grader"
    model: str  # the model's label, e.g. "openai:gpt-4.1"
    endpoint: dict[str, Any]  # the model's identity: where the request goes
    messages: Messages
    params: SamplingParams
    in_process: bool = False  # the model runs inside this process (nothing leaves the machine)
    refused: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)  # what subscribers did, stored with the call

    def refuse(self, reason: str) -> None:
        self.refused = reason


@dataclass(frozen=True)
class AfterCall:
    run_id: int | None
    role: str
    model: str
    messages: Messages  # as sent
    params: SamplingParams
    completion: Completion


@dataclass(frozen=True)
class RowWritten:
    table: str
    row: dict[str, Any]


_HOOKS = {
    RunStarted: "on_run_started",
    RunEnded: "on_run_ended",
    JobDone: "on_job_done",
    BeforeCall: "before_call",
    AfterCall: "after_call",
    RowWritten: "on_row_written",
}


class EventBus:
    """Delivers events to subscribers. With no subscriber for an event type, publishing it costs
    one attribute check: the call path stays as fast as without the bus."""

    def __init__(self, subscribers: list[object] | None = None):
        self._handlers: dict[type, list[Callable[[Any], None]]] = {kind: [] for kind in _HOOKS}
        for subscriber in subscribers or []:
            self.subscribe(subscriber)

    def subscribe(self, subscriber: object) -> None:
        found = False
        for kind, method in _HOOKS.items():
            handler = getattr(subscriber, method, None)
            if callable(handler):
                self._handlers[kind].append(handler)
                found = True
        if not found:
            raise TypeError(f"{subscriber!r} has none of {', '.join(_HOOKS.values())}")

    def wants(self, kind: type) -> bool:
        return bool(self._handlers[kind])

    def publish(self, event: object) -> None:
        for handler in self._handlers[type(event)]:
            handler(event)
