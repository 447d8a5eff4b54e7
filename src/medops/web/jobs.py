"""Canary rounds an operator starts from the dashboard: each runs ``api.canary`` in a child process
(its own main thread, so a run's signal handling works, and a crash cannot take the server down),
watched by a thread of this server. The job knows its run's id as soon as the run exists, so the
page links to it.

What an operator may start is narrower than ``medops monitor canary``: ``api.check_canary``
decides (see its docstring and docs/DASHBOARD.md)."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from medops import api
from medops.errors import UserError

MAX_RUNNING = 2  # canary rounds at once per server process (each is a child process)


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
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "started"}


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
        chosen = api.check_canary(chosen)
        with self._lock:
            if sum(j.state in ("starting", "running") for j in self._jobs.values()) >= MAX_RUNNING:
                raise UserError(f"{MAX_RUNNING} canary rounds are already running on this server: wait for one to end")
            job = Job(next(self._ids), actor, chosen, datetime.now(timezone.utc).isoformat())
            self._jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), name=f"canary-{job.id}", daemon=True).start()
        return job

    def _run(self, job: Job) -> None:
        context = multiprocessing.get_context("spawn")
        messages = context.Queue()
        db = self.store.engine.url.render_as_string(hide_password=False)
        child = context.Process(target=_round, args=(job.params, db, job.actor, messages), daemon=True)
        child.start()
        try:
            while True:
                try:
                    kind, value = messages.get(timeout=1.0)
                except Exception:  # queue.Empty: is the child still there?
                    if child.is_alive():
                        continue
                    kind, value = "failed", f"the canary process ended unexpectedly (exit {child.exitcode})"
                if kind == "started":
                    job.run_id, job.state = value, "running"
                    job.started.set()
                    continue
                if kind == "done":
                    job.outcome, job.run_id, job.state = value, value["run_id"], "done"
                else:
                    job.error, job.state = value, "failed"
                break
        finally:
            child.join(timeout=5)
            job.finished_at = datetime.now(timezone.utc).isoformat()
            job.started.set()

    def get(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.id, reverse=True)


def _round(params: dict[str, Any], db: str, actor: str, messages: Any) -> None:
    """The child process: one canary round; reports the run id when it exists, then the outcome."""
    try:
        outcome = api.canary(**params, db=db, actor=actor, on_started=lambda run_id: messages.put(("started", run_id)))
        messages.put(("done", outcome))
    except UserError as exc:
        messages.put(("failed", str(exc)))
    except BaseException as exc:  # reported on the page, never lost
        messages.put(("failed", f"{type(exc).__name__}: {exc}"))
