"""``medops eval healthbench``."""

from __future__ import annotations

import json
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

from medops.cli.console import close_run, err, out
from medops.cli.options import (
    BATCH_SIZE_OPTION,
    BUDGET_OPTION,
    CONCURRENCY_OPTION,
    DB_OPTION,
    JSON_OPTION,
    MAX_TRIES_OPTION,
    MLFLOW_OPTION,
    NAME_OPTION,
    NO_CACHE_OPTION,
    REPEATS_OPTION,
    RESUME_OPTION,
    RETRY_DELAY_OPTION,
    SEED_OPTION,
    TIMEOUT_OPTION,
)
from medops.errors import UserError
from medops.evaluation.config import HealthBenchConfig, SpecConfig
from medops.evaluation.engine import Counters
from medops.evaluation.run import run_healthbench
from medops.grading.templates import default_template, load_template
from medops.models.spec import parse_model_spec
from medops.reports.summary import healthbench_json, meta_eval_json, print_healthbench_summary, print_meta_eval_summary
from medops.store.repository import Store

app = typer.Typer(help="Run an evaluation and record it in the store.", no_args_is_help=True)


DEFAULT_LOCAL_MODEL = DEMO_GRADER = "local:smollm2"


class VerdictMode(str, Enum):
    auto = "auto"
    text = "text"
    logprob = "logprob"


class CompletionsSource(str, Enum):
    model = "model"
    ideal = "ideal"


class Preset(str, Enum):
    simple_evals = "simple-evals"


# OpenAI simple-evals (healthbench_eval.py, simple_evals.py, sampler/chat_completion_sampler.py):
# the model under test and the grader are both ChatCompletionSampler(system_message=
# OPENAI_SYSTEM_MESSAGE_API, max_tokens=2048) at its default temperature 0.5, and the grader's
# reply is read as text. The sampler prepends its system message to what it sends, and that
# system turn is part of the conversation the grader is shown (medops does the same with
# --model-system-message); graded ideal completions are shown without one, as there.
REFERENCE_SYSTEM_MESSAGE = "You are a helpful assistant."
PRESETS: dict[str, dict[str, dict[str, object]]] = {
    Preset.simple_evals.value: {
        "model": {
            "model_system_message": REFERENCE_SYSTEM_MESSAGE,
            "model_temperature": 0.5,
            "model_max_tokens": 2048,
        },
        "grader": {
            "grader_system_message": REFERENCE_SYSTEM_MESSAGE,
            "grader_temperature": 0.5,
            "grader_max_tokens": 2048,
            "grader_verdict": VerdictMode.text,
        },
    }
}
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
    grader: str = typer.Option(DEFAULT_LOCAL_MODEL, "--grader", help="Grader model, same forms as --model."),
    model_base_url: str = typer.Option(None, "--model-base-url", help="OpenAI-compatible base URL for --model."),
    grader_base_url: str = typer.Option(None, "--grader-base-url", help="OpenAI-compatible base URL for --grader."),
    model_api_key_env: str = typer.Option(None, "--model-api-key-env", help="Env var holding the model's key."),
    grader_api_key_env: str = typer.Option(None, "--grader-api-key-env", help="Env var holding the grader's key."),
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
    no_cache: bool = NO_CACHE_OPTION,
    budget_usd: float = BUDGET_OPTION,
    mlflow_uri: str = MLFLOW_OPTION,
    name: str = NAME_OPTION,
    resume: str = RESUME_OPTION,
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
    preset: Preset = typer.Option(None, "--preset", help=PRESET_HELP),
) -> None:
    """Score a model on a HealthBench-format rubric set (one grader call per criterion)."""
    store = Store.open(db)
    config = None if resume is not None else _build_config(_with_preset(ctx, locals()))
    _preset_note(config)
    if config is not None and str(config.grader) == DEMO_GRADER:
        err.print(
            f"[bold yellow]note:[/] {DEMO_GRADER} is a 135M-parameter demo grader, not a valid judge: its "
            "scores check the plumbing and say nothing about the model. Use a strong grader (or one you have "
            "validated with `medops meta-eval`) for real evaluations.",
            soft_wrap=True,
        )
    _execute(config, store, name=name, resume=resume, as_json=as_json, budget_usd=budget_usd, mlflow_uri=mlflow_uri)


def _execute(
    config: HealthBenchConfig | None,
    store: Store,
    *,
    name: str | None,
    resume: str | None,
    as_json: bool,
    budget_usd: float | None = None,
    mlflow_uri: str | None = None,
) -> None:
    """Run (or resume), print the summary, and exit 0 / 130 (interrupted) / 2 (failed)."""
    with _progress(enabled=not as_json) as update:
        outcome = run_healthbench(
            config,
            store,
            name=name,
            resume=resume,
            on_progress=update,  # type: ignore[arg-type]
            on_notice=lambda m: err.print(f"[yellow]{m}[/]"),
            budget_usd=budget_usd if resume is not None else None,
        )
    run = store.find_run(str(outcome.run_id))
    stored_config = HealthBenchConfig.model_validate(run.config)
    dataset = store.dataset(run.dataset_id)
    if stored_config.task == "meta-eval":
        document = meta_eval_json(run, dataset, outcome.summary)
    else:
        document = healthbench_json(run, dataset, stored_config, outcome.summary)
    if as_json:
        print(json.dumps(document, ensure_ascii=False))
    elif stored_config.task == "meta-eval":
        print_meta_eval_summary(out, run, dataset, outcome.summary)
    else:
        print_healthbench_summary(out, run, dataset, outcome.summary)
    close_run(outcome, store, mlflow_uri)


def meta_eval(
    ctx: typer.Context,
    data: str = typer.Option(
        "healthbench-meta",
        "--data",
        help="healthbench-meta (after `medops data pull healthbench-meta`) or a JSONL file in its format.",
    ),
    grader: str = typer.Option(..., "--grader", help="The grader to check, e.g. openai:gpt-4.1 or local:smollm2."),
    grader_base_url: str = typer.Option(None, "--grader-base-url"),
    grader_api_key_env: str = typer.Option(None, "--grader-api-key-env"),
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
    name: str = NAME_OPTION,
    resume: str = RESUME_OPTION,
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
    preset: Preset = typer.Option(None, "--preset", help=PRESET_HELP),
) -> None:
    """Measure how well a grader agrees with physicians (HealthBench meta-evaluation)."""
    store = Store.open(db)
    args = {
        **locals(),
        "model": None,
        "model_base_url": None,
        "model_api_key_env": None,
        "responses": None,
        "completions": CompletionsSource.model,
        "repeats": 1,
        "model_temperature": None,
        "model_max_tokens": None,
        "model_system_message": None,
        "model_top_p": None,
        "model_seed": None,
        "length_penalty": None,
        "length_center": None,
    }
    config = None if resume is not None else _build_config(_with_preset(ctx, args, task="meta-eval"), task="meta-eval")
    _preset_note(config)
    _execute(config, store, name=name, resume=resume, as_json=as_json, budget_usd=budget_usd, mlflow_uri=mlflow_uri)


def _with_preset(ctx: typer.Context, args: dict, task: str = "healthbench") -> dict:
    """``args`` with the preset's value for every setting not given on the command line.

    Model settings apply only when a model is called (not with --responses, --completions ideal
    or in meta-eval, where the grader is the model being checked).
    """
    preset = args.get("preset")
    if preset is None:
        return args
    settings = PRESETS[preset.value]
    calls_model = task == "healthbench" and args["responses"] is None and args["completions"] == CompletionsSource.model
    chosen = {**settings["grader"], **(settings["model"] if calls_model else {})}
    filled = dict(args)
    for name, value in chosen.items():
        source = ctx.get_parameter_source(name)  # by name: Typer ships its own copy of Click's enum
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            filled[name] = value
    return filled


def _preset_note(config: HealthBenchConfig | None) -> None:
    if config is not None and config.preset and config.grader_template_source == "medops-default":
        err.print(
            f"[bold yellow]note:[/] --preset {config.preset} keeps medops's grader template; give "
            "--grader-template FILE holding simple-evals' GRADER_TEMPLATE for the reference's grader "
            "prompts byte for byte.",
            soft_wrap=True,
        )


def _build_config(args: dict, task: str = "healthbench") -> HealthBenchConfig:
    if not args["data"]:
        raise UserError("--data is required (a built-in name or a JSONL file)")
    if not args["grader"]:
        raise UserError("--grader is required, e.g. --grader openai:gpt-4.1")
    source = "given" if args["responses"] is not None or task == "meta-eval" else args["completions"].value
    if source == "model" and not args["model"]:
        raise UserError("--model is required unless --responses FILE or --completions ideal is given")
    model = (
        SpecConfig.of(
            parse_model_spec(
                args["model"], base_url=args["model_base_url"], api_key_env=args["model_api_key_env"], what="--model"
            )
        )
        if source == "model"
        else None
    )
    grader = SpecConfig.of(
        parse_model_spec(
            args["grader"], base_url=args["grader_base_url"], api_key_env=args["grader_api_key_env"], what="--grader"
        )
    )
    template_path = args["grader_template"]
    group_template = args["grader_group_template"]
    verdict = args["grader_verdict"].value
    if verdict == "auto":
        verdict = "logprob" if grader.backend in ("local", "hf") else "text"
    if verdict == "logprob" and args["criteria_per_call"] > 1:
        raise UserError(
            "--criteria-per-call > 1 needs --grader-verdict text (grouped replies carry no per-criterion logprob)"
        )
    return HealthBenchConfig(
        task=task,
        preset=args["preset"].value if args.get("preset") is not None else None,
        rubric_item_format="text" if task == "meta-eval" else "points",
        data=args["data"],
        model=model,
        grader=grader,
        completions=source,
        responses_path=str(args["responses"]) if args["responses"] else None,
        limit=args["limit"],
        repeats=args["repeats"],
        seed=args["seed"],
        concurrency=args["concurrency"],
        max_tries=args["max_tries"],
        retry_base_delay_s=args["retry_base_delay"],
        timeout_s=args["timeout"],
        model_temperature=args["model_temperature"],
        model_max_tokens=args["model_max_tokens"],
        model_system_message=args["model_system_message"],
        grader_temperature=args["grader_temperature"],
        grader_max_tokens=args["grader_max_tokens"],
        grader_system_message=args["grader_system_message"],
        grader_template=load_template(template_path) if template_path else default_template(),
        grader_template_source=str(template_path) if template_path else "medops-default",
        grader_parse_retries=args["grader_parse_retries"],
        length_penalty=args["length_penalty"],
        length_center=args["length_center"],
        grader_verdict=verdict,
        grader_json_schema=args["grader_json_schema"],
        criteria_per_call=args["criteria_per_call"],
        grader_group_template=load_template(group_template, ("<<conversation>>", "<<rubric_items>>"))
        if group_template
        else None,
        batch_size=args["batch_size"],
        model_top_p=args["model_top_p"],
        model_seed=args["model_seed"],
        budget_usd=args["budget_usd"],
        use_cache=not args["no_cache"],
    )


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
