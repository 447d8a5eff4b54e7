"""Consoles: results on stdout, everything for humans (progress, warnings, errors) on stderr."""

from __future__ import annotations

import warnings

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err.print(f"[yellow]warning:[/] {message}", markup=True, highlight=False)


def install_warning_printer() -> None:
    warnings.showwarning = _show_warning


def print_notice(message: str) -> None:
    """A note or notice ``medops.api`` emits about a run (its settings, why it is stopping)."""
    err.print(f"[yellow]{escape(message)}[/]", soft_wrap=True)


def trackers(store, mlflow_uri: str | None, phi_policy: str | None = None) -> list:
    """Subscribers for a CLI run's events: every run's (the PHI guard, the audit trail), then what
    the command's flags ask for (``--mlflow``)."""
    from medops.api import run_subscribers

    extra = []
    if mlflow_uri:
        from medops.tracking.mlflow import MlflowSubscriber

        extra.append(MlflowSubscriber(store, mlflow_uri))
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
