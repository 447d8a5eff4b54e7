"""Asked as trained: how ``rl difficulty`` and ``rl evaluate`` prompt a model.

A model is scored (or its items profiled) the way it is, or will be, trained: the prompt style
and instruction language its training rows were rendered in, and the completion length (and,
for sampling, temperature) of its training run. Anything else measures a different task. Each
setting comes from, in order: an explicit value (a flag), the recorded training run, the
training config, the manifest beside the data, a default; and records where it came from, so a
report can show it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medops.datasets.registry import resolve
from medops.errors import UserError
from medops.models.spec import ModelSpec
from medops.prompts.mcqa import LANGUAGES, STYLES, default_language
from medops.rl.prepare import PreparedData, read_manifest
from medops.rl.train import (
    Notice,
    Settings,
    load_train_config,
    resolve_settings,
    training_run,
    training_run_for,
)
from medops.store.repository import Store
from medops.store.schema import Run


@dataclass(frozen=True)
class AskedAs:
    """The settings an exam run will use (each ``{"value", "from"}``) and the prepared data's
    manifest, if ``data`` has one (``rl difficulty`` records its output with the same prompts)."""

    settings: Settings
    prepared: PreparedData | None

    def values(self) -> dict[str, Any]:
        """``{setting: value}``, as exam-run config fields."""
        return {key: setting["value"] for key, setting in self.settings.items()}


def find_training_run(store: Store, spec: ModelSpec, ref: str | None = None) -> Run | None:
    """The ``rl train`` run named by ``ref``; without one, the latest run whose output directory
    holds ``spec``'s weights (None when there is none)."""
    return training_run(store, ref) if ref else training_run_for(store, spec)


def check_prompt_settings(settings: Settings) -> None:
    """Refuse a style or language no exam prompt exists for, naming where the value came from
    (a stale manifest or training run is otherwise hard to spot)."""
    for key, allowed in (("style", STYLES), ("language", LANGUAGES)):
        chosen = settings[key]
        if chosen["value"] not in allowed:
            raise UserError(f"{key} {chosen['value']!r} (from {chosen['from']}): expected one of {', '.join(allowed)}")


def difficulty_settings(
    store: Store,
    model: ModelSpec,
    data: str | Path,
    *,
    style: str | None = None,
    language: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    train_config: str | Path | None = None,
    training_run_ref: str | None = None,
    on_notice: Notice | None = None,
) -> AskedAs:
    """How to sample ``model`` on the prepared ``data`` so pass rates match what training will
    see: the arguments, else the training run (``training_run_ref`` or the one that wrote
    ``model``), else ``train_config`` (configs/rl.yaml), else the manifest, else cot, the task's
    language, 512 tokens and temperature 1.0."""
    prepared = read_manifest(data, on_notice)
    plan = (str(train_config), load_train_config(Path(train_config), {}, settings_only=True)) if train_config else None
    settings = resolve_settings(
        {"style": "cot", "language": default_language("generic"), "max_tokens": 512, "temperature": 1.0},
        {"style": style, "language": language, "max_tokens": max_tokens, "temperature": temperature},
        run=find_training_run(store, model, training_run_ref),
        train_config=plan,
        prepared=prepared,
    )
    check_prompt_settings(settings)
    return AskedAs(settings, prepared)


def evaluation_settings(
    store: Store,
    tuned: ModelSpec,
    data: str,
    *,
    task: str = "generic",
    style: str | None = None,
    language: str | None = None,
    max_tokens: int | None = None,
    training_run_ref: str | None = None,
    on_notice: Notice | None = None,
) -> AskedAs:
    """How to ask both base and tuned model on ``data`` (a file or a built-in name): as ``tuned``
    was trained. The arguments, else its training run (``training_run_ref`` or the one that wrote
    ``tuned``), else the manifest, else cot, ``task``'s language and the model's own length."""
    run = find_training_run(store, tuned, training_run_ref)
    prepared = read_manifest(resolve(data)[1], on_notice)
    settings = resolve_settings(
        {"style": "cot", "language": default_language(task), "max_tokens": None},
        {"style": style, "language": language, "max_tokens": max_tokens},
        run=run,
        prepared=prepared,
    )
    check_prompt_settings(settings)
    return AskedAs(settings, prepared)
