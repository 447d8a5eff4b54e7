"""Printing a finished run, the same way for every benchmark: its JSON document or its table."""

from __future__ import annotations

import json

from medops.cli.console import out
from medops.evaluation.lifecycle import RunOutcome
from medops.evaluation.registry import benchmark
from medops.store.repository import Store


def show_outcome(store: Store, outcome: RunOutcome, as_json: bool) -> None:
    run = store.find_run(str(outcome.run_id))
    kind = benchmark(run.benchmark)
    dataset = store.dataset(run.dataset_id)
    if as_json:
        config = kind.config_type.model_validate(run.config)
        print(json.dumps(kind.document(run, dataset, config, outcome.summary), ensure_ascii=False))
    else:
        kind.print_summary(out, run, dataset, outcome.summary)
