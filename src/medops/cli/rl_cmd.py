"""``medops rl prepare``, ``difficulty``, ``train`` and ``evaluate``: options in, JSON out.

The work is ``medops.rl``'s (prepare, asked, difficulty, train, evaluate), so a notebook or a
server does exactly what these commands do. ``difficulty`` and ``evaluate`` ask each item the
way the model is (or will be) trained (``medops.rl.asked``); the JSON says where each setting
came from.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import typer

from medops.cli.console import err, out, trackers
from medops.cli.options import DB_OPTION, MAX_TRIES_OPTION, NAME_OPTION, PHI_POLICY_OPTION, RETRY_DELAY_OPTION
from medops.datasets.mcqa import TASKS
from medops.errors import UserError
from medops.events import EventBus
from medops.models.spec import parse_model_spec
from medops.monitor.windows import parse_duration
from medops.rl.asked import difficulty_settings, evaluation_settings
from medops.rl.difficulty import profile_difficulty
from medops.rl.evaluate import evaluate_before_after
from medops.rl.evidence import prepare_from_exchanges, prepare_from_run, weak_slices_of
from medops.rl.prepare import prepare
from medops.rl.train import Settings, load_train_config, train
from medops.store.repository import COMPLETED, Store

app = typer.Typer(help="Rule-based RL (GRPO with medops.rewards) on TRL.", no_args_is_help=True)


@app.command("prepare")
def prepare_cmd(
    task: str = typer.Option(None, "--task", help=f"One of: {', '.join(TASKS)} (exam files; not with --from-*)."),
    data: list[str] = typer.Option(
        [], "--data", help="Exam files to train on, or with --from-run the pool (rubric or exam files) to draw from."
    ),
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
    from_run: str = typer.Option(None, "--from-run", metavar="RUN", help="Draw from the weakest slices of this run."),
    weak: int = typer.Option(None, "--weak", metavar="K", min=1, help="--from-run: how many of its weakest slices."),
    by: str = typer.Option(None, "--by", help="--from-run: theme, axis, subject or criterion-tag (as `runs weak`)."),
    vs: str = typer.Option(None, "--vs", metavar="BASELINE", help="--from-run: weakest against this baseline run."),
    from_exchanges: bool = typer.Option(
        False, "--from-exchanges", help="Production conversations online grading scored low, with their rubric."
    ),
    since: str = typer.Option("30d", "--since", help="--from-exchanges: windows within this long ago (30d, 12h)."),
    below: float = typer.Option(None, "--below", metavar="SCORE", help="--from-exchanges: scored below this."),
    db: str = DB_OPTION,
) -> None:
    """Turn exam items into a deduplicated training set with a held-out split; or, with --from-run
    or --from-exchanges, a training set from evidence (every row traced in the manifest)."""
    if from_run and from_exchanges:
        raise UserError("--from-run and --from-exchanges: choose one")
    evidence_only = {"--weak": weak, "--by": by, "--vs": vs}
    if not from_run and (given := [flag for flag, value in evidence_only.items() if value is not None]):
        raise UserError(f"{given[0]} applies to --from-run only")
    if from_exchanges and below is None:
        raise UserError("--from-exchanges needs --below SCORE")
    if not from_exchanges and below is not None:
        raise UserError("--below applies to --from-exchanges only")
    if (from_run or from_exchanges) and (task or exclude):
        raise UserError(f"{'--task' if task else '--exclude'} does not apply to --from-run / --from-exchanges")
    if from_run:
        if weak is None:
            raise UserError("--from-run needs --weak K (how many of the run's weakest slices)")
        manifest = prepare_from_run(
            Store.open(db, create=False),
            from_run,
            data,
            output,
            weak=weak,
            by=by,
            vs=vs,
            heldout=heldout,
            seed=seed,
            style=style,
            language=language,
        )
        _print_evidence(manifest, output)
        return
    if from_exchanges:
        if data:
            raise UserError("--data does not apply to --from-exchanges (the rows come from the store)")
        manifest = prepare_from_exchanges(
            Store.open(db, create=False), output, since=parse_duration(since), below=below, heldout=heldout, seed=seed
        )
        _print_evidence(manifest, output)
        return
    if task is None or not data:
        raise UserError("rl prepare needs --task and --data (or --from-run / --from-exchanges)")
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


def _print_evidence(manifest: dict, output: Path) -> None:
    out.print(
        f"train {manifest['train']['rows']} / held out {manifest['heldout']['rows']} rows -> {output} "
        f"({len(manifest['excluded'])} excluded; each row and exclusion traced in {output / 'manifest.json'})",
        soft_wrap=True,
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
    reward: str = typer.Option(
        None, "--reward", help="exam (the answer rule, default) or rubric (a judge against each row's rubric)."
    ),
    grader: str = typer.Option(None, "--grader", help="--reward rubric: the judge's model, e.g. openai:gpt-4.1-mini."),
    grader_base_url: str = typer.Option(None, "--grader-base-url", help="--reward rubric: the grader's endpoint."),
    grader_concurrency: int = typer.Option(None, "--grader-concurrency", help="--reward rubric: judge calls at once."),
    name: str = NAME_OPTION,
    db: str = DB_OPTION,
) -> None:
    """GRPO with a verifiable reward (the exam's answer rule, or a rubric judge); the run, its steps
    and checkpoints go to the store."""
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


def _show_settings(settings: Settings) -> None:
    err.print(
        "asking with " + ", ".join(f"{k} {v['value']} ({v['from']})" for k, v in settings.items()),
        soft_wrap=True,
        markup=False,
    )


@app.command("difficulty")
def difficulty_cmd(
    data: Path = typer.Option(..., "--data", help="train.jsonl from `medops rl prepare`."),
    model: str = typer.Option(..., "--model", help="The base model: local:, hf: or an OpenAI-compatible server."),
    model_base_url: str = typer.Option(None, "--model-base-url"),
    phi_policy: str = PHI_POLICY_OPTION,
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
    asked = difficulty_settings(
        store,
        spec,
        data,
        style=style,
        language=language,
        max_tokens=max_tokens,
        temperature=temperature,
        train_config=train_config,
        training_run_ref=training_run_ref,
        on_notice=_notice,
    )
    _show_settings(asked.settings)
    with contextlib.redirect_stdout(sys.stderr):
        profile = profile_difficulty(
            store,
            spec,
            data,
            output,
            asked,
            samples=samples,
            low=low,
            high=high,
            max_chars=max_chars,
            concurrency=concurrency,
            name=name,
            on_notice=_notice,
            bus=EventBus(trackers(store, None, phi_policy)),
        )
    print(json.dumps(profile.as_json(), indent=2))


@app.command("evaluate")
def evaluate_cmd(
    base: str = typer.Option(..., "--base", help="The base model spec."),
    tuned: str = typer.Option(..., "--tuned", help="The tuned model: hf:CHECKPOINT_DIR (LoRA adapters load too)."),
    task: str = typer.Option("generic", "--task"),
    data: str = typer.Option(..., "--data", help="The held-out split (heldout.jsonl) or any exam file."),
    model_base_url: str = typer.Option(None, "--model-base-url", help="For openai: specs."),
    phi_policy: str = PHI_POLICY_OPTION,
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
    weak_from: str = typer.Option(
        None,
        "--weak-from",
        help="A file from `rl prepare --from-run` whose weak slices to report apart "
        "[default: the one beside --healthbench-data or --data, if any].",
    ),
    max_tries: int = MAX_TRIES_OPTION,
    retry_base_delay: float = RETRY_DELAY_OPTION,
    db: str = DB_OPTION,
) -> None:
    """Base vs tuned on the same items, asked as the tuned model was trained, then the paired
    comparison: did it help (the weak slices), did it hurt (every other slice), Holm-adjusted.
    The JSON's `gate` names each tuned run and its baseline for `medops gate`. Exits 3 when a run
    has calls that failed for good."""
    if healthbench_data and not grader:
        raise UserError("--healthbench-data needs --grader")
    store = Store.open(db)
    base_spec = parse_model_spec(base, base_url=model_base_url, what="--base")
    tuned_spec = parse_model_spec(tuned, base_url=model_base_url, what="--tuned")
    asked = evaluation_settings(
        store,
        tuned_spec,
        data,
        task=task,
        style=style,
        language=language,
        max_tokens=max_tokens,
        training_run_ref=training_run_ref,
        on_notice=_notice,
    )
    _show_settings(asked.settings)
    sources = [weak_from] if weak_from else [p for p in (healthbench_data, data) if p and Path(p).is_file()]
    weak = next((found for p in sources if (found := weak_slices_of(p))), [])
    if weak_from and not weak:
        raise UserError(f"--weak-from {weak_from}: not a file written by `rl prepare --from-run`")
    result = evaluate_before_after(
        store,
        base_spec,
        tuned_spec,
        data,
        asked,
        task=task,
        limit=limit,
        healthbench_data=healthbench_data,
        grader=parse_model_spec(grader, base_url=grader_base_url, what="--grader") if healthbench_data else None,
        max_tries=max_tries,
        retry_base_delay_s=retry_base_delay,
        on_notice=_notice,
        bus=EventBus(trackers(store, None, phi_policy)),
        weak=weak,
    )
    print(json.dumps(result.as_json(), indent=2))
    if result.incomplete:
        raise typer.Exit(3)
