"""Log a finished run to MLflow (``--mlflow URI``): parameters, every metric, and the HTML report.

``MlflowSubscriber`` is an event subscriber (``medops.events``): subscribe it to a run's bus, or
hand it the ``RunEnded`` event of a finished run, and it logs that run once it has ended.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from medops.errors import UserError
from medops.events import RunEnded
from medops.reports.report import build_report
from medops.store.repository import Store

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")
_NOT_PARAMS = ("grader_template", "grader_group_template", "prompt_template")
_COUNTS = (
    "score",
    "n_examples",
    "n_excluded_examples",
    "n_ungraded_criteria",
    "n_unparsed",
    "n_failed_calls",
    "n_truncated",
    "wall_seconds",
)


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif value is not None:
        out[prefix] = str(value)[:500]


def metric_name(name: str) -> str:
    """MLflow metric names cannot hold ':' (theme:x -> theme.x; '/' would nest directories in a file store)."""
    return _UNSAFE.sub("_", name.replace(":", ".").replace("/", "_"))


def run_params(config: dict[str, Any]) -> dict[str, str]:
    """The run's configuration, flattened (``grader.name``), templates left out (too long)."""
    params: dict[str, str] = {}
    _flatten("", {k: v for k, v in config.items() if k not in _NOT_PARAMS}, params)
    return params


def run_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Every metric's mean (and bootstrap std), the score, and the counts that say how much of it
    to trust: excluded examples, ungraded criteria, unparsed replies, failed calls, truncations."""
    stats = summary.get("metrics", {})
    metrics = {metric_name(name): s["mean"] for name, s in stats.items()}
    metrics.update(
        {f"{metric_name(name)}.bootstrap_std": s["bootstrap_std"] for name, s in stats.items() if "bootstrap_std" in s}
    )
    for key in _COUNTS:
        if isinstance(summary.get(key), int | float):
            metrics[key] = float(summary[key])
    return metrics


def _client():
    try:
        import mlflow
    except ImportError:
        raise UserError("--mlflow needs the mlflow client: pip install 'medops[mlflow]'") from None
    return mlflow


class MlflowSubscriber:
    """Logs each run that ends to ``tracking_uri`` under ``experiment``: tags, params, metrics and
    the HTML report (built from ``store``). ``logged`` maps medops run ids to MLflow run ids."""

    def __init__(self, store: Store, tracking_uri: str, experiment: str = "medops"):
        self.store, self.tracking_uri, self.experiment = store, tracking_uri, experiment
        self.logged: dict[int, str] = {}
        _client()  # without the client, say so before anything runs

    def on_run_ended(self, event: RunEnded) -> None:
        self.logged[event.run_id] = self.log(event)

    def log(self, event: RunEnded) -> str:
        """Log the ended run; returns the MLflow run id."""
        mlflow = _client()
        run = self.store.find_run(str(event.run_id))
        summary = event.summary or run.summary or {}
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_experiment(self.experiment)
        with mlflow.start_run(run_name=run.name or f"medops-{run.id}") as active, tempfile.TemporaryDirectory() as tmp:
            mlflow.set_tags(
                {
                    "medops.run_id": str(run.id),
                    "medops.benchmark": run.benchmark,
                    "medops.model": run.model or "",
                    "medops.grader": run.grader or "",
                    "medops.status": event.status,
                    "medops.version": run.medops_version,
                }
            )
            mlflow.log_params(run_params(run.config))
            mlflow.log_metrics(run_metrics(summary))
            report = Path(tmp) / f"medops-run-{run.id}.html"
            report.write_text(build_report(self.store, str(run.id)), encoding="utf-8")
            mlflow.log_artifact(str(report))
            return active.info.run_id
