"""Consoles: results on stdout, everything for humans (progress, warnings, errors) on stderr."""

from __future__ import annotations

import warnings

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err.print(f"[yellow]warning:[/] {message}", markup=True, highlight=False)


def install_warning_printer() -> None:
    warnings.showwarning = _show_warning


def close_run(outcome, store, mlflow_uri: str | None) -> None:
    """After a run's summary is printed: why it stopped, MLflow, and the exit status
    (0 completed, 3 calls failed for good, 130 interrupted, 2 a fatal endpoint error)."""
    import typer

    if outcome.message:
        err.print(f"[yellow]{outcome.message}[/]", soft_wrap=True)
    if mlflow_uri:
        # The run functions do not take an event bus yet: the subscriber gets the run's end here,
        # after the summary is printed. Once they do, subscribe it to the run's bus instead.
        from medops.events import RunEnded
        from medops.tracking.mlflow import MlflowSubscriber

        tracker = MlflowSubscriber(store, mlflow_uri)
        benchmark = store.find_run(str(outcome.run_id)).benchmark
        tracker.on_run_ended(RunEnded(outcome.run_id, benchmark, outcome.status, outcome.summary, outcome.message))
        err.print(f"logged to MLflow at {mlflow_uri} (run {tracker.logged[outcome.run_id]})")
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)
