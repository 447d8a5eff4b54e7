"""Options shared by several commands."""

from __future__ import annotations

import typer

DB_OPTION = typer.Option(
    None, "--db", envvar="MEDOPS_DB", help="Store: SQLite file or database URL [default: ./medops.db]."
)
JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON on stdout, nothing else.")

# Run options shared by `eval healthbench`, `eval mcqa` and `meta-eval` (one definition, one help text).
SEED_OPTION = typer.Option(
    0, "--seed", help="Seed for --limit and the bootstrap (0 matches the HealthBench reference)."
)
REPEATS_OPTION = typer.Option(1, "--repeats", min=1, help="Run each item K times.")
CONCURRENCY_OPTION = typer.Option(32, "--concurrency", min=1, help="Requests in flight per endpoint.")
MAX_TRIES_OPTION = typer.Option(6, "--max-tries", min=1, help="Tries per call on 429/5xx/timeouts/connection errors.")
RETRY_DELAY_OPTION = typer.Option(1.0, "--retry-base-delay", min=0, help="First backoff in seconds (then doubles).")
TIMEOUT_OPTION = typer.Option(120.0, "--timeout", min=0.001, help="Seconds before a call times out.")
BATCH_SIZE_OPTION = typer.Option(8, "--batch-size", min=1, help="Micro-batch size for in-process models.")
NO_CACHE_OPTION = typer.Option(False, "--no-cache", help="Do not answer identical requests from the store.")
BUDGET_OPTION = typer.Option(
    None,
    "--budget-usd",
    min=0,
    help="Stop starting paid calls before spend (by the price table) would pass this; the run ends resumable.",
)
MLFLOW_OPTION = typer.Option(
    None, "--mlflow", help="Log the run (params, every metric, the HTML report) to this MLflow tracking URI."
)
NAME_OPTION = typer.Option(None, "--name", help="A unique name for the run.")
RESUME_OPTION = typer.Option(None, "--resume", help="Continue an interrupted run (id or name).")
PHI_POLICY_OPTION = typer.Option(
    None,
    "--phi-policy",
    help="redact | block | allow, for every endpoint (default: MEDOPS_PHI_POLICY, else redact for external "
    "endpoints and allow for internal ones: in process, loopback, private networks, MEDOPS_INTERNAL_HOSTS).",
)
COUNTERFACTUAL_OPTION = typer.Option(
    None,
    "--counterfactual",
    metavar="ATTRS",
    help="Also evaluate each item's counterfactual variants: sex, age, race, insurance, nationality, language "
    "(comma-separated) or all; rule-based rewriting (docs/EQUITY.md).",
)
COUNTERFACTUAL_INSERT_OPTION = typer.Option(
    False,
    "--counterfactual-insert",
    help="An item that does not mention an attribute gets one neutral sentence per value (default: left out, counted).",
)
