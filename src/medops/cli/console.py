"""Consoles: results on stdout, everything for humans (progress, warnings, errors) on stderr."""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from medops.errors import UserError
from medops.events import AfterCall, BeforeCall, JobDone, RunEnded, RunStarted

# Through a pipe or into a file, tables take the width they need: Rich would otherwise cut metric
# names and intervals at 80 columns (or COLUMNS) with an ellipsis.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 100_000)
err = Console(stderr=True, highlight=False)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err.print(f"[yellow]warning:[/] {message}", markup=True, highlight=False)


def install_warning_printer() -> None:
    warnings.showwarning = _show_warning


def print_notice(message: str) -> None:
    """A note or notice ``medops.api`` emits about a run (its settings, why it is stopping)."""
    err.print(f"[yellow]{escape(message)}[/]", soft_wrap=True)


PROGRESS_INTERVAL_ENV = "MEDOPS_PROGRESS_INTERVAL"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class ProgressLog:
    """A run's progress as one line on ``stream`` every ``interval`` seconds: jobs done of the
    total, calls made (cached, failed) and an ETA. For logs that are not a terminal (CI, ``>file``),
    where the progress bar is not drawn. A subscriber: it sees refusals of the subscribers before it."""

    def __init__(self, interval: float, stream: TextIO | None = None):
        self.interval, self.stream = interval, stream or sys.stderr
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.run_id: int | None = None
        self.total = self.done = self.calls = self.cached = self.failed = 0
        self.started = time.monotonic()

    def on_run_started(self, event: RunStarted) -> None:
        self._halt()
        self.run_id, self.total, self.started = event.run_id, event.jobs, time.monotonic()
        self.done = self.calls = self.cached = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="medops-progress", daemon=True)
        self._thread.start()

    def before_call(self, event: BeforeCall) -> None:
        if event.refused is not None:  # not sent, so no AfterCall: counted here
            self.calls += 1
            self.failed += 1

    def after_call(self, event: AfterCall) -> None:
        self.calls += 1
        self.cached += event.completion.cached
        self.failed += not event.completion.ok

    def on_job_done(self, event: JobDone) -> None:
        self.done += 1

    def on_run_ended(self, event: RunEnded) -> None:
        self._halt()

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        left = max(self.total - self.done, 0)
        eta = _duration(elapsed / self.done * left) if self.done else "unknown"
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        return (
            f"progress: run {self.run_id}: {self.done}/{self.total} jobs{share}, {self.calls} calls "
            f"({self.cached} cached, {self.failed} failed), {_duration(elapsed)} elapsed, ETA {eta}"
        )

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            print(self.line(), file=self.stream, flush=True)

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def progress_log() -> ProgressLog | None:
    """The periodic progress lines when stderr is not a terminal (a terminal gets the progress bar):
    every 30 s, or every ``MEDOPS_PROGRESS_INTERVAL`` seconds (0: never)."""
    raw = os.environ.get(PROGRESS_INTERVAL_ENV, "30")
    try:
        interval = float(raw)
    except ValueError:
        raise UserError(f"{PROGRESS_INTERVAL_ENV}={raw!r}: expected seconds between progress lines (0: none)") from None
    if interval < 0 or interval != interval:
        raise UserError(f"{PROGRESS_INTERVAL_ENV}={raw!r}: expected seconds between progress lines (0: none)")
    if interval == 0 or sys.stderr.isatty():
        return None
    return ProgressLog(interval)


def trackers(store, mlflow_uri: str | None, phi_policy: str | None = None) -> list:
    """Subscribers for a CLI run's events: every run's (the PHI guard, the audit trail), then what
    the command's flags ask for (``--mlflow``), then progress lines when stderr is not a terminal."""
    from medops.api import run_subscribers

    extra: list = []
    if mlflow_uri:
        from medops.tracking.mlflow import MlflowSubscriber

        extra.append(MlflowSubscriber(store, mlflow_uri))
    progress = progress_log()
    if progress is not None:
        extra.append(progress)  # last: it counts the calls the others refused
    return run_subscribers(store, extra, phi_policy=phi_policy)


def close_run(outcome, subscribers: list) -> None:
    """After a run's summary is printed: why it stopped, where it was logged, and the exit status
    (0 completed, 3 calls failed for good, 130 interrupted, 2 a fatal endpoint error)."""
    import typer

    if outcome.message:
        err.print(f"[yellow]{outcome.message}[/]", soft_wrap=True)
    for subscriber in subscribers:
        logged = getattr(subscriber, "logged", {}).get(outcome.run_id)
        if logged is not None:
            err.print(f"logged to MLflow at {subscriber.tracking_uri} (run {logged})")
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)
