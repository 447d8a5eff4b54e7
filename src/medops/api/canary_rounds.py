"""Canary rounds from the dashboard: what an operator may start (``check_canary``, the server's
policy on data and endpoints) and the round itself."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from medops.api.runs import StoreRef, open_store
from medops.audit import AuditSubscriber
from medops.datasets.hub import HUB_EXAMS
from medops.datasets.registry import BUILTIN_DATASETS, PACKAGED_DATASETS
from medops.errors import UserError
from medops.models.targets import canary_target
from medops.monitor.canary import canary_config, run_canary

BASE_URLS_ENV = "MEDOPS_CANARY_BASE_URLS"  # comma-separated
DATA_DIRS_ENV = "MEDOPS_CANARY_DATA_DIRS"  # os.pathsep-separated, like PATH


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
    """The parameters of a canary round an operator asks for from the dashboard, when this server
    allows them (data resolved); a UserError otherwise. Narrower than ``medops monitor canary``:
    the server decides where data comes from and where it goes. Data is a built-in set name or a
    file under ``MEDOPS_CANARY_DATA_DIRS``; base URLs are ones the server was configured with
    (``MEDOPS_CANARY_BASE_URLS``, ``MEDOPS_MODEL_BASE_URL``, ``MEDOPS_GRADER_BASE_URL``), since the
    server's API key goes wherever the base URL points; models are HTTP endpoints, never in
    process. See docs/DASHBOARD.md."""
    # the model is the canary target the round evaluates; the grader is an endpoint of the same kind
    for role in ("model", "grader"):
        spec = chosen.get(role)
        if not spec:
            continue
        target = canary_target(spec, chosen.get(f"{role}_base_url"), source=f"{role} base URL")
        if target.spec(what=role).capabilities.in_process:
            raise UserError(
                f"{role} '{spec}': canary rounds from the dashboard call HTTP endpoints only "
                "(in-process models: medops monitor canary)"
            )
        if target.endpoint_key and target.endpoint_key not in _allowed_base_urls():
            raise UserError(
                f"{role} base URL: not one this server is configured for "
                f"({BASE_URLS_ENV}, MEDOPS_MODEL_BASE_URL, MEDOPS_GRADER_BASE_URL)"
            )
    return {**chosen, "data": _allowed_data(chosen["data"])}


def canary(
    *,
    data: str,
    model: str,
    grader: str | None = None,
    task: str | None = None,
    baseline: str | None = None,
    model_base_url: str | None = None,
    grader_base_url: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    db: StoreRef = None,
    actor: str | None = None,
    on_started: Callable[[int], None] | None = None,
    run_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One canary round (``medops monitor canary``): run the fixed evaluation against the live
    endpoint, compare it with ``baseline`` (default: the previous canary run), store the scores.
    Endpoints default to ``MEDOPS_MODEL_BASE_URL`` / ``MEDOPS_GRADER_BASE_URL``; the run is audited
    as ``actor``'s; ``on_started`` gets the new run's id as soon as it exists."""
    store = open_store(db)
    config = canary_config(
        data=data,
        model=model,
        task=task or None,
        grader=grader or None,
        model_base_url=model_base_url or os.environ.get("MEDOPS_MODEL_BASE_URL"),
        grader_base_url=grader_base_url or os.environ.get("MEDOPS_GRADER_BASE_URL"),
        seed=seed,
        run_options={"limit": limit, "no_cache": True, **(run_options or {})},
    )
    subscribers: list[object] = [AuditSubscriber(store, actor=actor)]
    if on_started is not None:
        subscribers.append(_StartedHook(on_started))
    outcome = run_canary(store, config, baseline=baseline or None, seed=seed, subscribers=subscribers)
    return outcome.to_dict()


class _StartedHook:
    def __init__(self, callback: Callable[[int], None]):
        self.callback = callback

    def on_run_started(self, event: Any) -> None:
        self.callback(event.run_id)
