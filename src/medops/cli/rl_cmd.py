"""``medops rl prepare``, ``difficulty``, ``train`` and ``evaluate``.

``difficulty`` and ``evaluate`` ask each item the way the model is (or will be) trained: the
prompt style and instruction language of the prepared data's manifest, and the completion
length (and, for sampling, temperature) of the recorded training run or training config;
flags override, and the JSON says where each setting came from.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import typer

from medops.cli.console import err, out
from medops.cli.options import DB_OPTION, MAX_TRIES_OPTION, NAME_OPTION, RETRY_DELAY_OPTION
from medops.datasets.mcqa import TASKS
from medops.datasets.registry import resolve
from medops.errors import UserError
from medops.evaluation.config import HealthBenchConfig, McqaConfig, SpecConfig
from medops.evaluation.mcqa import run_mcqa
from medops.evaluation.run import RunOutcome, run_healthbench
from medops.grading.templates import default_template
from medops.models.spec import ModelSpec, parse_model_spec
from medops.ops.compare import compare_runs
from medops.prompts.mcqa import LANGUAGES, STYLES, default_language
from medops.rl.difficulty import filter_by_difficulty, pass_rates, truncated_counts
from medops.rl.prepare import prepare, read_manifest
from medops.rl.train import (
    load_train_config,
    resolve_settings,
    train,
    training_run,
    training_run_for,
)
from medops.store.repository import COMPLETED, INCOMPLETE, Store
from medops.store.schema import Run

app = typer.Typer(help="Rule-based RL (GRPO with medops.rewards) on TRL.", no_args_is_help=True)


@app.command("prepare")
def prepare_cmd(
    task: str = typer.Option(..., "--task", help=f"One of: {', '.join(TASKS)}."),
    data: list[str] = typer.Option(..., "--data", help="Exam files to train on (repeat for several)."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory for train.jsonl, heldout.jsonl, manifest.json."),
    style: str = typer.Option("cot", "--style", help="cot (\\boxed{}) or r1 (<think>/<answer>)."),
    language: str = typer.Option(None, "--language", help="Instruction language, en or ko [default: the task's]."),
    heldout: float = typer.Option(0.1, "--heldout", min=0, max=0.9, help="Share kept out of training."),
    exclude: list[str] = typer.Option(
        [],
        "--exclude",
        help="TASK=PATH evaluation sets whose questions must not be trained on (exact and normalised matches).",
    ),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Turn exam items into a deduplicated training set with a held-out split."""
    if task not in TASKS:
        raise UserError(f"--task must be one of {', '.join(TASKS)}")
    if style not in ("cot", "r1"):
        raise UserError("--style must be cot or r1 (the styles the reward checks)")
    if language is not None and language not in LANGUAGES:
        raise UserError(f"--language must be one of {', '.join(LANGUAGES)}")
    pairs = []
    for text in exclude:
        exclude_task, eq, path = text.partition("=")
        if not eq or exclude_task not in TASKS:
            raise UserError(f"--exclude '{text}': expected TASK=PATH with a known task")
        pairs.append((exclude_task, path))
    manifest = prepare(task, data, output, style=style, heldout=heldout, seed=seed, exclude=pairs, language=language)
    out.print(
        f"train {manifest['train']['rows']} / held out {manifest['heldout']['rows']} items -> {output} "
        f"(dropped: {manifest['dropped']})"
    )


@app.command("train")
def train_cmd(
    config: Path = typer.Option(None, "--config", help="YAML with any of the options below."),
    model: str = typer.Option(None, "--model", help="local:smollm2 or an HF directory / hub id."),
    train_data: str = typer.Option(None, "--train-data"),
    output_dir: str = typer.Option(None, "--output-dir"),
    num_generations: int = typer.Option(None, "--num-generations"),
    per_device_train_batch_size: int = typer.Option(None, "--per-device-train-batch-size"),
    gradient_accumulation_steps: int = typer.Option(None, "--gradient-accumulation-steps"),
    max_completion_length: int = typer.Option(None, "--max-completion-length"),
    learning_rate: float = typer.Option(None, "--learning-rate"),
    beta: float = typer.Option(None, "--beta", help="KL coefficient (TRL's default 0)."),
    temperature: float = typer.Option(None, "--temperature"),
    num_train_epochs: float = typer.Option(None, "--num-train-epochs"),
    max_steps: int = typer.Option(None, "--max-steps"),
    use_lora: bool = typer.Option(None, "--lora/--no-lora"),
    lora_r: int = typer.Option(None, "--lora-r"),
    lora_alpha: int = typer.Option(None, "--lora-alpha"),
    lora_target_modules: list[str] = typer.Option(
        None, "--lora-target-modules", help="Module names LoRA adapts (repeat for several)."
    ),
    gradient_checkpointing: bool = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing"),
    bf16: bool = typer.Option(None, "--bf16/--no-bf16"),
    seed: int = typer.Option(None, "--seed"),
    save_steps: int = typer.Option(None, "--save-steps"),
    logging_steps: int = typer.Option(None, "--logging-steps"),
    format_weight: float = typer.Option(None, "--format-weight", help="0.1 gives 0.9 x correct + 0.1 x well-formed."),
    style: str = typer.Option(
        None, "--style", help="Format the reward checks: cot or r1 [default: the style train_data was prepared with]."
    ),
    use_vllm: bool = typer.Option(None, "--use-vllm/--no-vllm", help="Generate with vLLM (TRL colocate mode)."),
    report_to: list[str] = typer.Option(None, "--report-to", help="Trainer integrations, e.g. mlflow."),
    name: str = NAME_OPTION,
    db: str = DB_OPTION,
) -> None:
    """GRPO with a binary verifiable reward; the run, its steps and checkpoints go to the store."""
    overrides = {k: v for k, v in locals().items() if k not in ("config", "name", "db")}
    settings = load_train_config(config, overrides)
    store = Store.open(db)
    with contextlib.redirect_stdout(sys.stderr):  # the trainer's own logging stays off stdout
        result = train(settings, store, name=name, on_notice=_notice)
    print(json.dumps({k: v for k, v in result.items() if k != "steps"}, indent=2))
    if result["status"] != COMPLETED:
        raise typer.Exit(130)


def _notice(message: str) -> None:
    err.print(message, style="yellow", markup=False, soft_wrap=True)


def _check_prompt_settings(settings: dict) -> None:
    for key, allowed in (("style", STYLES), ("language", LANGUAGES)):
        chosen = settings[key]
        if chosen["value"] not in allowed:
            raise UserError(f"{key} {chosen['value']!r} (from {chosen['from']}): expected one of {', '.join(allowed)}")


def _show_settings(settings: dict) -> None:
    err.print(
        "asking with " + ", ".join(f"{k} {v['value']} ({v['from']})" for k, v in settings.items()),
        soft_wrap=True,
        markup=False,
    )


def _training_run(store: Store, ref: str | None, spec: ModelSpec) -> Run | None:
    return training_run(store, ref) if ref else training_run_for(store, spec)


def _exam_facts(outcome: RunOutcome, spec: str, max_tokens: int | None) -> dict:
    """One side of a comparison as it ran: truncations and failed calls shown, not hidden."""
    summary = outcome.summary
    facts = {
        "run_id": outcome.run_id,
        "model": spec,
        "status": outcome.status,
        "n_examples": summary.get("n_examples"),
        "accuracy": summary.get("score"),
        "n_truncated": summary["n_truncated"],
        "n_failed_calls": summary.get("n_failed_calls"),
    }
    if facts["n_truncated"]:
        _notice(
            f"{spec}: {facts['n_truncated']} of {facts['n_examples']} answers stopped at the length limit "
            f"({max_tokens or 'model default'} tokens) and are scored as written (n_truncated)"
        )
    return facts


def _usable(outcome: RunOutcome, spec: str) -> None:
    """A run with calls that failed for good still compares on the items it has, and says so."""
    if outcome.status == INCOMPLETE:
        _notice(
            f"run {outcome.run_id} for {spec} is incomplete ({outcome.summary.get('n_failed_calls')} calls failed "
            "for good) and is compared on the items it has; run `rl evaluate` again to retry only those calls"
        )
    elif outcome.status != COMPLETED:
        raise UserError(f"run {outcome.run_id} for {spec} did not complete ({outcome.message})")


@app.command("difficulty")
def difficulty_cmd(
    data: Path = typer.Option(..., "--data", help="train.jsonl from `medops rl prepare`."),
    model: str = typer.Option(..., "--model", help="The base model: local:, hf: or an OpenAI-compatible server."),
    model_base_url: str = typer.Option(None, "--model-base-url"),
    samples: int = typer.Option(4, "-k", "--samples", min=1, help="Answers sampled per item."),
    temperature: float = typer.Option(
        None, "--temperature", help="[default: the training run's or --train-config's, else 1.0]"
    ),
    max_tokens: int = typer.Option(
        None,
        "--max-tokens",
        min=1,
        help="[default: max_completion_length of the training run or --train-config, else 512]",
    ),
    style: str = typer.Option(None, "--style", help="[default: the manifest's style, else cot]"),
    language: str = typer.Option(None, "--language", help="[default: the manifest's language, else the task's]"),
    train_config: Path = typer.Option(
        None, "--train-config", help="The training config (configs/rl.yaml) the items are chosen for."
    ),
    training_run_ref: str = typer.Option(
        None,
        "--training-run",
        help="Ask as this `rl train` run did [default: the run whose output directory holds --model, if any].",
    ),
    band: str = typer.Option("0.01,0.99", "--keep-band", help="LOW,HIGH pass rates to keep (drops always/never)."),
    max_chars: int = typer.Option(None, "--max-chars", help="Drop questions longer than this."),
    output: Path = typer.Option(..., "-o", "--output"),
    concurrency: int = typer.Option(32, "--concurrency", min=1),
    name: str = NAME_OPTION,
    db: str = DB_OPTION,
) -> None:
    """Profile item difficulty with the base model and keep a chosen band."""
    try:
        low, high = (float(x) for x in band.split(","))
    except ValueError:
        raise UserError(f"--keep-band '{band}': expected LOW,HIGH") from None
    store = Store.open(db)
    spec = parse_model_spec(model, base_url=model_base_url)
    prepared = read_manifest(data, _notice)
    plan = (str(train_config), load_train_config(train_config, {}, settings_only=True)) if train_config else None
    settings = resolve_settings(
        {"style": "cot", "language": default_language("generic"), "max_tokens": 512, "temperature": 1.0},
        {"style": style, "language": language, "max_tokens": max_tokens, "temperature": temperature},
        run=_training_run(store, training_run_ref, spec),
        train_config=plan,
        prepared=prepared,
    )
    _check_prompt_settings(settings)
    _show_settings(settings)
    config = McqaConfig(
        task="generic",
        data=str(data),
        style=settings["style"]["value"],
        language=settings["language"]["value"],
        temperature=settings["temperature"]["value"],
        max_tokens=settings["max_tokens"]["value"],
        repeats=samples,
        concurrency=concurrency,
        model=SpecConfig.of(spec),
    )
    with contextlib.redirect_stdout(sys.stderr):
        outcome = run_mcqa(config, store, name=name)
    if outcome.status != COMPLETED:
        raise UserError(f"the sampling run {outcome.run_id} did not complete ({outcome.message})")
    report = filter_by_difficulty(
        data,
        pass_rates(store, outcome.run_id),
        output,
        low=low,
        high=high,
        max_chars=max_chars,
        truncated=truncated_counts(store, outcome.run_id),
        prepared=prepared,
    )
    if report["n_truncated"]:
        _notice(
            f"{report['n_truncated']} of {samples * report['items']} samples stopped at the length limit "
            f"({config.max_tokens} tokens) and count as failures (per item: `truncated` in difficulty.jsonl)"
        )
    print(json.dumps({"sampling_run_id": outcome.run_id, "settings": settings, **report}, indent=2))


@app.command("evaluate")
def evaluate_cmd(
    base: str = typer.Option(..., "--base", help="The base model spec."),
    tuned: str = typer.Option(..., "--tuned", help="The tuned model: hf:CHECKPOINT_DIR (LoRA adapters load too)."),
    task: str = typer.Option("generic", "--task"),
    data: str = typer.Option(..., "--data", help="The held-out split (heldout.jsonl) or any exam file."),
    model_base_url: str = typer.Option(None, "--model-base-url", help="For openai: specs."),
    style: str = typer.Option(None, "--style", help="[default: the training run's, else the manifest's, else cot]"),
    language: str = typer.Option(
        None, "--language", help="[default: the training data's, else the manifest's, else the task's]"
    ),
    limit: int = typer.Option(None, "--limit", min=1),
    max_tokens: int = typer.Option(
        None, "--max-tokens", min=1, help="[default: the training run's max_completion_length, else the model's]"
    ),
    training_run_ref: str = typer.Option(
        None,
        "--training-run",
        help="Ask as this `rl train` run did [default: the run whose output directory holds --tuned].",
    ),
    healthbench_data: str = typer.Option(
        None,
        "--healthbench-data",
        help="Also run this rubric set (e.g. healthbench) for both models: did anything else get worse?",
    ),
    grader: str = typer.Option(None, "--grader", help="Grader for --healthbench-data."),
    grader_base_url: str = typer.Option(None, "--grader-base-url"),
    max_tries: int = MAX_TRIES_OPTION,
    retry_base_delay: float = RETRY_DELAY_OPTION,
    db: str = DB_OPTION,
) -> None:
    """Base vs tuned on the same items, asked as the tuned model was trained, then the paired
    comparison: did it help, did it hurt. Exits 3 when a run has calls that failed for good."""
    if healthbench_data and not grader:
        raise UserError("--healthbench-data needs --grader")
    store = Store.open(db)
    specs = {
        "base": parse_model_spec(base, base_url=model_base_url, what="--base"),
        "tuned": parse_model_spec(tuned, base_url=model_base_url, what="--tuned"),
    }
    settings = resolve_settings(
        {"style": "cot", "language": default_language(task), "max_tokens": None},
        {"style": style, "language": language, "max_tokens": max_tokens},
        run=_training_run(store, training_run_ref, specs["tuned"]),
        prepared=read_manifest(resolve(data)[1], _notice),
    )
    _check_prompt_settings(settings)
    _show_settings(settings)
    chosen = {key: setting["value"] for key, setting in settings.items()}
    retries = {"max_tries": max_tries, "retry_base_delay_s": retry_base_delay}
    outcomes: dict[str, RunOutcome] = {}
    for side, spec in specs.items():
        config = McqaConfig(task=task, data=data, limit=limit, model=SpecConfig.of(spec), **chosen, **retries)
        outcomes[side] = run_mcqa(config, store)
        _usable(outcomes[side], str(spec))
    runs = {"exam": {side: _exam_facts(o, str(specs[side]), chosen["max_tokens"]) for side, o in outcomes.items()}}
    reports = {
        "settings": settings,
        "exam": compare_runs(store, str(outcomes["base"].run_id), str(outcomes["tuned"].run_id)),
    }
    if healthbench_data:
        grader_spec = SpecConfig.of(parse_model_spec(grader, base_url=grader_base_url, what="--grader"))
        rubric: dict[str, RunOutcome] = {}
        for side, spec in specs.items():
            config = HealthBenchConfig(
                data=healthbench_data,
                model=SpecConfig.of(spec),
                grader=grader_spec,
                grader_template=default_template(),
                model_max_tokens=chosen["max_tokens"],
                grader_verdict="logprob" if grader_spec.backend in ("local", "hf") else "text",
                **retries,
            )
            rubric[side] = run_healthbench(config, store)
            _usable(rubric[side], str(spec))
        runs["healthbench"] = {
            side: {
                "run_id": o.run_id,
                "model": str(specs[side]),
                "status": o.status,
                "score": o.summary.get("score"),
                "n_failed_calls": o.summary.get("n_failed_calls"),
            }
            for side, o in rubric.items()
        }
        reports["healthbench"] = compare_runs(store, str(rubric["base"].run_id), str(rubric["tuned"].run_id))
        outcomes.update({f"healthbench {side}": o for side, o in rubric.items()})
    reports["runs"] = runs
    print(json.dumps(reports, indent=2))
    if any(o.status == INCOMPLETE for o in outcomes.values()):
        raise typer.Exit(3)
