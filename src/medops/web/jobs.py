"""Canary rounds an operator starts from the dashboard: each runs ``api.canary`` in a background
thread of this server; the job knows its run's id as soon as the run exists, so the page links to it."""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from medops import api
from medops.errors import UserError


@dataclass
class Job:
    id: int
    actor: str
    params: dict[str, Any]
    started_at: str
    state: str = "starting"  # starting | running | done | failed
    run_id: int | None = None
    outcome: dict[str, Any] | None = None
    error: str | None = None
    finished_at: str | None = None
    started: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("started")
        return data


class Jobs:
    """The canary jobs of this server process (newest first when listed)."""

    FIELDS = ("data", "model", "grader", "task", "baseline", "model_base_url", "grader_base_url", "limit")

    def __init__(self, store: Any):
        self.store = store
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, params: dict[str, Any], *, actor: str) -> Job:
        chosen = {k: params.get(k) for k in self.FIELDS if params.get(k) not in (None, "")}
        if not chosen.get("data") or not chosen.get("model"):
            raise UserError("a canary needs data and a model")
        if "limit" in chosen:
            try:
                chosen["limit"] = int(chosen["limit"])
            except (TypeError, ValueError):
                raise UserError("limit: expected a whole number") from None
            if chosen["limit"] < 1:
                raise UserError("limit: expected a whole number of at least 1")
        with self._lock:
            job = Job(next(self._ids), actor, chosen, datetime.now(timezone.utc).isoformat())
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), name=f"canary-{job.id}", daemon=True).start()
        return job

    def _run(self, job: Job) -> None:
        def started(run_id: int) -> None:
            job.run_id, job.state = run_id, "running"
            job.started.set()

        try:
            job.outcome = api.canary(**job.params, db=self.store, actor=job.actor, on_started=started)
            job.run_id = job.outcome["run_id"]
            job.state = "done"
        except Exception as exc:  # shown on the page; the thread must not die silently
            job.error = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            job.state = "failed"
        finally:
            job.finished_at = datetime.now(timezone.utc).isoformat()
            job.started.set()

    def get(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.id, reverse=True)
