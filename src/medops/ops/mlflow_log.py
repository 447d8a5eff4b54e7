"""Log a finished run to MLflow (``--mlflow URI``): parameters, every metric, and the HTML report."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from medops.errors import UserError
from medops.reports.report import build_report
from medops.store.repository import Store

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif value is not None:
        out[prefix] = str(value)[:500]


def metric_name(name: str) -> str:
    """MLflow metric names cannot hold ':' (theme:x -> theme.x; '/' would nest directories in a file store)."""
    return _UNSAFE.sub("_", name.replace(":", ".").replace("/", "_"))


def log_to_mlflow(store: Store, run_ref: str, tracking_uri: str, experiment: str = "medops") -> str:
    try:
        import mlflow
    except ImportError:
        raise UserError("--mlflow needs the mlflow client: pip install 'medops[mlflow]'") from None
    run = store.find_run(run_ref)
    summary = run.summary or {}
    params: dict[str, str] = {}
    _flatten(
        "",
        {
            k: v
            for k, v in run.config.items()
            if k not in ("grader_template", "grader_group_template", "prompt_template")
        },
        params,
    )
    metrics = {metric_name(name): stats["mean"] for name, stats in summary.get("metrics", {}).items()}
    metrics.update(
        {
            f"{metric_name(name)}.bootstrap_std": stats["bootstrap_std"]
            for name, stats in summary.get("metrics", {}).items()
            if "bootstrap_std" in stats
        }
    )
    keys = ("score", "n_examples", "n_excluded_examples", "n_ungraded_criteria", "n_unparsed", "n_failed_calls")
    for key in (*keys, "n_truncated", "wall_seconds"):
        if isinstance(summary.get(key), int | float):
            metrics[key] = float(summary[key])
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run.name or f"medops-{run.id}") as active, tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags(
            {
                "medops.run_id": str(run.id),
                "medops.benchmark": run.benchmark,
                "medops.model": run.model or "",
                "medops.grader": run.grader or "",
                "medops.status": run.status,
                "medops.version": run.medops_version,
            }
        )
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        report = Path(tmp) / f"medops-run-{run.id}.html"
        report.write_text(build_report(store, str(run.id)), encoding="utf-8")
        mlflow.log_artifact(str(report))
        return active.info.run_id
