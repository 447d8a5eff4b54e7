"""Run started / run ended, recorded from the run's event bus (``medops.events``)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from medops.audit.trail import record
from medops.events import RunEnded, RunStarted
from medops.store.repository import Store


def _model_label(spec: Any) -> str | None:
    """``backend:name`` of a recorded ModelSpec: never its URL, key variable or options."""
    if isinstance(spec, dict) and spec.get("backend") and spec.get("name"):
        return f"{spec['backend']}:{spec['name']}"
    return None


class AuditSubscriber:
    """Records ``run.started`` and ``run.ended`` for every run it is subscribed to. Only names,
    ids, statuses and counts: never the run's config (templates, system messages, URLs) or text."""

    def __init__(self, store: Store, actor: str | None = None):
        self.store = store
        self.actor = actor

    def on_run_started(self, event: RunStarted) -> None:
        config = event.config or {}
        data = config.get("data")
        details = {
            "run_id": event.run_id,
            "benchmark": event.benchmark,
            "resumed": event.resumed,
            "model": _model_label(config.get("model")),
            "grader": _model_label(config.get("grader")),
            "data_file": PurePath(data).name if isinstance(data, str) and data else None,
        }
        record(self.store, "run.started", f"run:{event.run_id}", details, actor=self.actor)

    def on_run_ended(self, event: RunEnded) -> None:
        summary = event.summary or {}
        details = {
            "run_id": event.run_id,
            "benchmark": event.benchmark,
            "status": event.status,
            "score": summary.get("score"),
            "n_failed_calls": summary.get("n_failed_calls"),
            "n_examples": summary.get("n_examples"),
        }
        record(self.store, "run.ended", f"run:{event.run_id}", details, actor=self.actor)
        if summary.get("phi"):  # the PHI policy applied over the run: counts by policy and type, never values
            record(self.store, "phi.summary", f"run:{event.run_id}", summary["phi"], actor=self.actor)
