"""``medops eval healthbench``."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from medops import api
from medops.cli.console import close_run, err, print_notice, trackers
from medops.cli.options import (
    BATCH_SIZE_OPTION,
    BUDGET_OPTION,
    CONCURRENCY_OPTION,
    COUNTERFACTUAL_INSERT_OPTION,
    COUNTERFACTUAL_OPTION,
    DB_OPTION,
    JSON_OPTION,
    MAX_TRIES_OPTION,
    MLFLOW_OPTION,
    NAME_OPTION,
    NO_CACHE_OPTION,
    PHI_POLICY_OPTION,
    REPEATS_OPTION,
    RESUME_OPTION,
    RETRY_DELAY_OPTION,
    SEED_OPTION,
    TIMEOUT_OPTION,
)
from medops.cli.show import show_outcome
from medops.evaluation.config import HealthBenchConfig
from medops.evaluation.engine import Counters
from medops.evaluation.settings import HEALTHBENCH_DEFAULTS

app = typer.Typer(help="Run an evaluation and record it in the store.", no_args_is_help=True)


DEFAULT_LOCAL_MODEL = "local:smollm2"


class VerdictMode(str, Enum):
    auto = "auto"
    text = "text"
    logprob = "logprob"


class CompletionsSource(str, Enum):
    model = "model"
    ideal = "ideal"


class Preset(str, Enum):
    simple_evals = "simple-evals"


class Jury(str, Enum):
    majority = "majority"
    all = "all"
    any = "any"
    mean = "mean"


JURY_HELP = (
    "How several --grader verdicts become one: majority (a tie is not met), all, any, or mean "
    "(of P(met), logprob jurors). Every juror must answer, else the criterion is ungraded."
)


PRESET_HELP = (
    "simple-evals: model and grader as OpenAI's reference script (system message 'You are a helpful "
    "assistant.', temperature 0.5, max tokens 2048, text verdicts). Options given explicitly override it."
)


@app.command("healthbench")
def healthbench(
    ctx: typer.Context,
    data: str = typer.Option(
        "demo",
        "--data",
        help="Built-in name (healthbench, healthbench-hard, healthbench-consensus) or a HealthBench-format JSONL file.",
    ),
    model: str = typer.Option(
        DEFAULT_LOCAL_MODEL, "--model", help="Model under test: openai:NAME, local:smollm2 or hf:DIR_OR_HUB_ID."
    ),
    grader: list[str] = typer.Option(
        [DEFAULT_LOCAL_MODEL], "--grader", help="Grader model, same forms as --model; several times: a jury."
    ),
    jury: Jury = typer.Option(Jury.majority, "--jury", help=JURY_HELP),
    model_base_url: str = typer.Option(None, "--model-base-url", help="OpenAI-compatible base URL for --model."),
    grader_base_url: list[str] = typer.Option(
        None, "--grader-base-url", help="OpenAI-compatible base URL for --grader (once, or once per --grader)."
    ),
    model_api_key_env: str = typer.Option(None, "--model-api-key-env", help="Env var holding the model's key."),
    grader_api_key_env: list[str] = typer.Option(
        None, "--grader-api-key-env", help="Env var holding the grader's key (once, or once per --grader)."
    ),
    responses: Path = typer.Option(
        None,
        "--responses",
        help="Grade these responses (JSONL: index or prompt_id, response) instead of calling a model.",
    ),
    completions: CompletionsSource = typer.Option(
        CompletionsSource.model, "--completions", help="'ideal' grades the physicians' ideal completions."
    ),
    limit: int = typer.Option(
        None,
        "--limit",
        min=1,
        help="Evaluate N examples, picked reproducibly with --seed (with --completions ideal: N per "
        "ideal-completion group, as the reference picks them).",
    ),
    repeats: int = REPEATS_OPTION,
    seed: int = SEED_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    max_tries: int = MAX_TRIES_OPTION,
    retry_base_delay: float = RETRY_DELAY_OPTION,
    timeout: float = TIMEOUT_OPTION,
    model_temperature: float = typer.Option(None, "--model-temperature"),
    model_max_tokens: int = typer.Option(None, "--model-max-tokens", min=1),
    model_system_message: str = typer.Option(None, "--model-system-message"),
    grader_temperature: float = typer.Option(0.0, "--grader-temperature"),
    grader_max_tokens: int = typer.Option(2048, "--grader-max-tokens", min=1),
    grader_system_message: str = typer.Option(None, "--grader-system-message"),
    grader_template: Path = typer.Option(
        None,
        "--grader-template",
        help="Template with <<conversation>> and <<rubric_item>> (the official HealthBench one works).",
    ),
    grader_parse_retries: int = typer.Option(
        3, "--grader-parse-retries", min=0, help="Retries of an unreadable grader reply before 'ungraded'."
    ),
    grader_verdict: VerdictMode = typer.Option(
        VerdictMode.auto,
        "--grader-verdict",
        help="text: parse the JSON reply; logprob: P(true) at the decision point; auto: logprob for "
        "in-process graders (local:, hf:), text otherwise.",
    ),
    grader_json_schema: bool = typer.Option(
        False, "--grader-json-schema", help="Ask OpenAI-compatible graders for schema-constrained JSON."
    ),
    criteria_per_call: int = typer.Option(
        1, "--criteria-per-call", min=1, help="Grade K criteria per grader call (cheaper; measure it with meta-eval)."
    ),
    grader_group_template: Path = typer.Option(
        None,
        "--grader-group-template",
        help="Template for --criteria-per-call > 1 (<<conversation>>, <<rubric_items>>).",
    ),
    batch_size: int = BATCH_SIZE_OPTION,
    model_top_p: float = typer.Option(None, "--model-top-p"),
    model_seed: int = typer.Option(None, "--model-seed"),
    length_penalty: float = typer.Option(None, "--length-penalty", help="Adds overall_score_length_adjusted."),
    length_center: float = typer.Option(None, "--length-center"),
    counterfactual: str = COUNTERFACTUAL_OPTION,
    counterfactual_insert: bool = COUNTERFACTUAL_INSERT_OPTION,
    no_cache: bool = NO_CACHE_OPTION,
    budget_usd: float = BUDGET_OPTION,
    mlflow_uri: str = MLFLOW_OPTION,
    phi_policy: str = PHI_POLICY_OPTION,
    name: str = NAME_OPTION,
    resume: str = RESUME_OPTION,
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
    preset: Preset = typer.Option(None, "--preset", help=PRESET_HELP),
) -> None:
    """Score a model on a HealthBench-format rubric set (one grader call per criterion)."""
    config = None if resume is not None else api.healthbench_config(explicit=_explicit(ctx), **_options(locals()))
    _execute(
        config,
        db,
        name=name,
        resume=resume,
        as_json=as_json,
        budget_usd=budget_usd,
        mlflow_uri=mlflow_uri,
        phi_policy=phi_policy,
    )


def _execute(
    config: HealthBenchConfig | None,
    db: str | None,
    *,
    name: str | None,
    resume: str | None,
    as_json: bool,
    budget_usd: float | None = None,
    mlflow_uri: str | None = None,
    phi_policy: str | None = None,
) -> None:
    """Run (or resume) through ``medops.api``, print its notes and the summary, and exit 0 / 130
    (interrupted) / 2 (failed)."""
    store = api.open_store(db)
    subscribers = trackers(store, mlflow_uri, phi_policy)
    with _progress(enabled=not as_json) as update:
        if config is not None:
            outcome = api.evaluate(
                config, db=store, name=name, subscribers=subscribers, on_progress=update, on_notice=print_notice
            )
        else:
            outcome = api.resume(
                str(resume),
                db=store,
                budget_usd=budget_usd,
                subscribers=subscribers,
                on_progress=update,
                on_notice=print_notice,
                benchmarks=("healthbench", "meta-eval"),
            )
    show_outcome(store, outcome, as_json)
    close_run(outcome, subscribers)


def meta_eval(
    ctx: typer.Context,
    data: str = typer.Option(
        "healthbench-meta",
        "--data",
        help="healthbench-meta (after `medops data pull healthbench-meta`) or a JSONL file in its format.",
    ),
    grader: list[str] = typer.Option(
        ...,
        "--grader",
        help="The grader to check, e.g. openai:gpt-4.1 or local:smollm2; several times: each juror and the jury.",
    ),
    jury: Jury = typer.Option(Jury.majority, "--jury", help=JURY_HELP),
    grader_base_url: list[str] = typer.Option(
        None, "--grader-base-url", help="OpenAI-compatible base URL for --grader (once, or once per --grader)."
    ),
    grader_api_key_env: list[str] = typer.Option(
        None, "--grader-api-key-env", help="Env var holding the grader's key (once, or once per --grader)."
    ),
    limit: int = typer.Option(None, "--limit", min=1, help="Grade N completions (all their rows), picked with --seed."),
    seed: int = SEED_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    max_tries: int = MAX_TRIES_OPTION,
    retry_base_delay: float = RETRY_DELAY_OPTION,
    timeout: float = TIMEOUT_OPTION,
    grader_temperature: float = typer.Option(0.0, "--grader-temperature"),
    grader_max_tokens: int = typer.Option(2048, "--grader-max-tokens", min=1),
    grader_system_message: str = typer.Option(None, "--grader-system-message"),
    grader_template: Path = typer.Option(None, "--grader-template"),
    grader_parse_retries: int = typer.Option(3, "--grader-parse-retries", min=0),
    grader_verdict: VerdictMode = typer.Option(VerdictMode.auto, "--grader-verdict"),
    grader_json_schema: bool = typer.Option(False, "--grader-json-schema"),
    criteria_per_call: int = typer.Option(
        1, "--criteria-per-call", min=1, help="Grade K rows of one completion per call, to measure what grouping costs."
    ),
    grader_group_template: Path = typer.Option(None, "--grader-group-template"),
    batch_size: int = BATCH_SIZE_OPTION,
    no_cache: bool = NO_CACHE_OPTION,
    budget_usd: float = BUDGET_OPTION,
    mlflow_uri: str = MLFLOW_OPTION,
    phi_policy: str = PHI_POLICY_OPTION,
    name: str = NAME_OPTION,
    resume: str = RESUME_OPTION,
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
    preset: Preset = typer.Option(None, "--preset", help=PRESET_HELP),
) -> None:
    """Measure how well a grader agrees with physicians (HealthBench meta-evaluation)."""
    config = None if resume is not None else api.meta_eval_config(explicit=_explicit(ctx), **_options(locals()))
    _execute(
        config,
        db,
        name=name,
        resume=resume,
        as_json=as_json,
        budget_usd=budget_usd,
        mlflow_uri=mlflow_uri,
        phi_policy=phi_policy,
    )


def _explicit(ctx: typer.Context) -> set[str]:
    """The options given on the command line (a preset never overrides them)."""
    return {
        name
        for name in ctx.params
        # by name: Typer ships its own copy of Click's enum
        if (source := ctx.get_parameter_source(name)) is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")
    }


def _options(args: dict) -> dict:
    """The command's values as the library's options (enums as their values, CLI-only flags left out)."""
    return {
        key: (value.value if isinstance(value, Enum) else value)
        for key, value in args.items()
        if key in HEALTHBENCH_DEFAULTS
    }


class _progress:
    """Rich progress on stderr when it is a terminal; silent otherwise (CI logs, pipes)."""

    def __init__(self, enabled: bool):
        self._bar = Progress(
            TextColumn("[bold]examples"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            refresh_per_second=4,
            disable=not (enabled and err.is_terminal),
        )
        self._task = None

    def __enter__(self):
        self._bar.__enter__()
        self._task = self._bar.add_task("run", total=None, stats="")
        return self.update

    def update(self, c: Counters) -> None:
        elapsed = max(1e-6, time.monotonic() - c.started)
        calls = c.model_calls + c.grader_calls
        stats = (
            f"{calls / elapsed:,.0f} calls/s  {c.tokens:,} tok  {c.errors} err  "
            f"{c.ungraded} ungraded  {c.cached} cached"
        )
        self._bar.update(self._task, total=c.jobs_total, completed=c.jobs_done, stats=stats)

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)
