"""``medops rl prepare`` and ``medops rl train``."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import typer

from medops.cli.console import out
from medops.cli.options import DB_OPTION, NAME_OPTION
from medops.datasets.mcqa import TASKS
from medops.errors import UserError
from medops.evaluation.config import HealthBenchConfig, McqaConfig, SpecConfig
from medops.evaluation.mcqa import run_mcqa
from medops.evaluation.run import run_healthbench
from medops.grading.templates import default_template
from medops.models.spec import parse_model_spec
from medops.ops.compare import compare_runs
from medops.rl.difficulty import filter_by_difficulty, pass_rates
from medops.rl.prepare import prepare
from medops.rl.train import load_train_config, train
from medops.store.repository import COMPLETED, Store

app = typer.Typer(help="Rule-based RL (GRPO with medops.rewards) on TRL.", no_args_is_help=True)


@app.command("prepare")
def prepare_cmd(
    task: str = typer.Option(..., "--task", help=f"One of: {', '.join(TASKS)}."),
    data: list[str] = typer.Option(..., "--data", help="Exam files to train on (repeat for several)."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory for train.jsonl, heldout.jsonl, manifest.json."),
    style: str = typer.Option("cot", "--style", help="cot (\\boxed{}) or r1 (<think>/<answer>)."),
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
    pairs = []
    for text in exclude:
        exclude_task, eq, path = text.partition("=")
        if not eq or exclude_task not in TASKS:
            raise UserError(f"--exclude '{text}': expected TASK=PATH with a known task")
        pairs.append((exclude_task, path))
    manifest = prepare(task, data, output, style=style, heldout=heldout, seed=seed, exclude=pairs)
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
    max_completion_length: int = typer.Option(None, "--max-completion-length"),
    learning_rate: float = typer.Option(None, "--learning-rate"),
    beta: float = typer.Option(None, "--beta", help="KL coefficient (TRL's default 0)."),
    temperature: float = typer.Option(None, "--temperature"),
    num_train_epochs: float = typer.Option(None, "--num-train-epochs"),
    max_steps: int = typer.Option(None, "--max-steps"),
    use_lora: bool = typer.Option(None, "--lora/--no-lora"),
    lora_r: int = typer.Option(None, "--lora-r"),
    lora_alpha: int = typer.Option(None, "--lora-alpha"),
    gradient_checkpointing: bool = typer.Option(None, "--gradient-checkpointing/--no-gradient-checkpointing"),
    bf16: bool = typer.Option(None, "--bf16/--no-bf16"),
    seed: int = typer.Option(None, "--seed"),
    save_steps: int = typer.Option(None, "--save-steps"),
    format_weight: float = typer.Option(None, "--format-weight", help="0.1 gives 0.9 x correct + 0.1 x well-formed."),
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
        result = train(settings, store, name=name)
    print(json.dumps({k: v for k, v in result.items() if k != "steps"}, indent=2))
    if result["status"] != COMPLETED:
        raise typer.Exit(130)


@app.command("difficulty")
def difficulty_cmd(
    data: Path = typer.Option(..., "--data", help="train.jsonl from `medops rl prepare`."),
    model: str = typer.Option(..., "--model", help="The base model: local:, hf: or an OpenAI-compatible server."),
    model_base_url: str = typer.Option(None, "--model-base-url"),
    samples: int = typer.Option(4, "-k", "--samples", min=1, help="Answers sampled per item."),
    temperature: float = typer.Option(1.0, "--temperature"),
    max_tokens: int = typer.Option(512, "--max-tokens", min=1),
    style: str = typer.Option("cot", "--style"),
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
    config = McqaConfig(
        task="generic",
        data=str(data),
        style=style,
        temperature=temperature,
        max_tokens=max_tokens,
        repeats=samples,
        concurrency=concurrency,
        model=SpecConfig.of(parse_model_spec(model, base_url=model_base_url)),
    )
    with contextlib.redirect_stdout(sys.stderr):
        outcome = run_mcqa(config, store, name=name)
    if outcome.status != COMPLETED:
        raise UserError(f"the sampling run {outcome.run_id} did not complete ({outcome.message})")
    report = filter_by_difficulty(
        data, pass_rates(store, outcome.run_id), output, low=low, high=high, max_chars=max_chars
    )
    print(json.dumps({"sampling_run_id": outcome.run_id, **report}, indent=2))


@app.command("evaluate")
def evaluate_cmd(
    base: str = typer.Option(..., "--base", help="The base model spec."),
    tuned: str = typer.Option(..., "--tuned", help="The tuned model: hf:CHECKPOINT_DIR (LoRA adapters load too)."),
    task: str = typer.Option("generic", "--task"),
    data: str = typer.Option(..., "--data", help="The held-out split (heldout.jsonl) or any exam file."),
    model_base_url: str = typer.Option(None, "--model-base-url", help="For openai: specs."),
    style: str = typer.Option("cot", "--style"),
    limit: int = typer.Option(None, "--limit", min=1),
    max_tokens: int = typer.Option(None, "--max-tokens", min=1),
    healthbench_data: str = typer.Option(
        None,
        "--healthbench-data",
        help="Also run this rubric set (e.g. healthbench) for both models: did anything else get worse?",
    ),
    grader: str = typer.Option(None, "--grader", help="Grader for --healthbench-data."),
    grader_base_url: str = typer.Option(None, "--grader-base-url"),
    db: str = DB_OPTION,
) -> None:
    """Base vs tuned on the same items, then the paired comparison: did it help, did it hurt."""
    store = Store.open(db)
    run_ids = []
    for spec in (base, tuned):
        config = McqaConfig(
            task=task,
            data=data,
            style=style,
            limit=limit,
            max_tokens=max_tokens,
            model=SpecConfig.of(parse_model_spec(spec, base_url=model_base_url)),
        )
        outcome = run_mcqa(config, store)
        if outcome.status != COMPLETED:
            raise UserError(f"run {outcome.run_id} for {spec} did not complete ({outcome.message})")
        run_ids.append(outcome.run_id)
    reports = {"exam": compare_runs(store, str(run_ids[0]), str(run_ids[1]))}
    if healthbench_data:
        if not grader:
            raise UserError("--healthbench-data needs --grader")
        grader_spec = SpecConfig.of(parse_model_spec(grader, base_url=grader_base_url, what="--grader"))
        rubric_runs = []
        for spec in (base, tuned):
            config = HealthBenchConfig(
                data=healthbench_data,
                model=SpecConfig.of(parse_model_spec(spec, base_url=model_base_url)),
                grader=grader_spec,
                grader_template=default_template(),
                model_max_tokens=max_tokens,
                grader_verdict="logprob" if grader_spec.backend in ("local", "hf") else "text",
            )
            outcome = run_healthbench(config, store)
            if outcome.status != COMPLETED:
                raise UserError(f"run {outcome.run_id} for {spec} did not complete ({outcome.message})")
            rubric_runs.append(outcome.run_id)
        reports["healthbench"] = compare_runs(store, str(rubric_runs[0]), str(rubric_runs[1]))
    print(json.dumps(reports, indent=2))
