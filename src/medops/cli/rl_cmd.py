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
