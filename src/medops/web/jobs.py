"""Canary rounds an operator starts from the dashboard: each runs ``api.canary`` in a child process
(its own main thread, so a run's signal handling works, and a crash cannot take the server down),
watched by a thread of this server. The job knows its run's id as soon as the run exists, so the
page links to it.

What an operator may start is narrower than ``medops monitor canary`` (``check_canary``): the
server decides where data comes from and where it goes. Data is a built-in set name or a file
under ``MEDOPS_CANARY_DATA_DIRS``; base URLs are ones the server was configured with
(``MEDOPS_CANARY_BASE_URLS``, ``MEDOPS_MODEL_BASE_URL``, ``MEDOPS_GRADER_BASE_URL``), since the
server's API key goes wherever the base URL points; models are HTTP endpoints, never in-process."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medops import api
from medops.datasets.hub import HUB_EXAMS
from medops.datasets.registry import BUILTIN_DATASETS, PACKAGED_DATASETS
from medops.errors import UserError
from medops.models.spec import parse_model_spec

BASE_URLS_ENV = "MEDOPS_CANARY_BASE_URLS"  # comma-separated
DATA_DIRS_ENV = "MEDOPS_CANARY_DATA_DIRS"  # os.pathsep-separated, like PATH
MAX_RUNNING = 2  # canary rounds at once per server process (each is a child process)


def _allowed_base_urls() -> set[str]:
    named = [os.environ.get("MEDOPS_MODEL_BASE_URL"), os.environ.get("MEDOPS_GRADER_BASE_URL")]
    named += os.environ.get(BASE_URLS_ENV, "").split(",")
    return {url.strip().rstrip("/") for url in named if url and url.strip()}


def _allowed_data(data: str) -> str:
    """A built-in set's name as is, or the resolved path of a file under a canary data folder."""
    if data in PACKAGED_DATASETS or data in BUILTIN_DATASETS or data in HUB_EXAMS:
        return data
    folders = [Path(f).resolve() for f in os.environ.get(DATA_DIRS_ENV, "").split(os.pathsep) if f.strip()]
    path = Path(data).resolve()  # symlinks and .. resolved before the check
    if path.is_file() and any(path.is_relative_to(folder) for folder in folders):
        return str(path)
    # the same answer whether the file exists or not: no probing of the server's disk
    raise UserError(
        f"data '{data}': the dashboard runs built-in sets ({', '.join(PACKAGED_DATASETS)}, ...) and files "
        f"under {DATA_DIRS_ENV} only"
    )


def check_canary(chosen: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a canary round an operator asks for, when this server allows them (data
    resolved); a UserError otherwise. See the module's docstring and docs/DASHBOARD.md."""
    for role in ("model", "grader"):
        spec = chosen.get(role)
        if spec and parse_model_spec(spec, what=role).capabilities.in_process:
            raise UserError(
                f"{role} '{spec}': canary rounds from the dashboard call HTTP endpoints only "
                "(in-process models: medops monitor canary)"
            )
        url = chosen.get(f"{role}_base_url")
        if url and url.strip().rstrip("/") not in _allowed_base_urls():
            raise UserError(
                f"{role} base URL: not one this server is configured for "
                f"({BASE_URLS_ENV}, MEDOPS_MODEL_BASE_URL, MEDOPS_GRADER_BASE_URL)"
            )
    return {**chosen, "data": _allowed_data(chosen["data"])}


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
        chosen = check_canary(chosen)
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
