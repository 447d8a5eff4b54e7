"""``medops eval mcqa`` and ``medops data export``: exam questions, scored by rule."""

from __future__ import annotations

import json
import os
import tempfile
from enum import Enum
from pathlib import Path

import typer

from medops import api
from medops.cli.console import close_run, out, print_notice, trackers
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
from medops.datasets.mcqa import TASKS, load_mcqa
from medops.datasets.registry import resolve
from medops.errors import UserError
from medops.evaluation.settings import EXAM_DEFAULTS
from medops.prompts.mcqa import STYLES, default_language
from medops.prompts.training_rows import training_row

Task = Enum("Task", {t: t for t in TASKS}, type=str)  # type: ignore[misc]
Style = Enum("Style", {s: s for s in STYLES}, type=str)  # type: ignore[misc]


class Scoring(str, Enum):
    generate = "generate"
    loglikelihood = "loglikelihood"


def eval_mcqa(
    task: Task = typer.Option(
        None, "--task", help="medqa, medmcqa, pubmedqa, mmlu_medical, kormedmcqa, kormedmcqa_v, kmle, generic."
    ),
    data: str = typer.Option(
        None, "--data", help="The exam file (JSONL, CSV, parquet, KMLE .xlsx, PubMedQA ori_pqal.json)."
    ),
    model: str = typer.Option("local:smollm2", "--model", help="openai:NAME, local:smollm2 or hf:DIR_OR_HUB_ID."),
    model_base_url: str = typer.Option(None, "--model-base-url"),
    model_api_key_env: str = typer.Option(None, "--model-api-key-env"),
    style: Style = typer.Option(
        "direct",
        "--style",
        help="direct (letter), cot (\\boxed{}), r1 (<answer>), confidence (letter and a stated confidence).",
    ),
    language: str = typer.Option(
        None, "--language", help="Instruction language: en or ko (default: ko for kormedmcqa and kmle)."
    ),
    prompt_template: Path = typer.Option(
        None, "--prompt-template", help="User turn with <<instruction>>, <<question>>, <<options>>."
    ),
    shots: int = typer.Option(0, "--shots", min=0, help="Worked examples from --fewshot-data."),
    fewshot_data: str = typer.Option(None, "--fewshot-data"),
    scoring: Scoring = typer.Option(
        Scoring.generate,
        "--scoring",
        help="loglikelihood: pick the most probable answer letter (in-process models; no generation).",
    ),
    limit: int = typer.Option(None, "--limit", min=1),
    repeats: int = REPEATS_OPTION,
    seed: int = SEED_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    max_tries: int = MAX_TRIES_OPTION,
    retry_base_delay: float = RETRY_DELAY_OPTION,
    timeout: float = TIMEOUT_OPTION,
    temperature: float = typer.Option(None, "--temperature"),
    max_tokens: int = typer.Option(None, "--max-tokens", min=1),
    top_p: float = typer.Option(None, "--top-p"),
    model_seed: int = typer.Option(None, "--model-seed"),
    system_message: str = typer.Option(None, "--system-message"),
    skip_images: bool = typer.Option(
        False,
        "--skip-images",
        help="Skip the items that carry images (counted as needs_image): for a model that takes no images.",
    ),
    allow_abstain: bool = typer.Option(
        False,
        "--allow-abstain",
        help="Let the model answer \"I don't know\": abstentions are counted apart and scored 0 "
        "(right +1, wrong -1) in the abstention-aware score.",
    ),
    no_logprobs: bool = typer.Option(
        False,
        "--no-logprobs",
        help="Do not ask a served model for the answer token's logprobs (for endpoints that refuse them); "
        "confidence then comes from --style confidence or is missing.",
    ),
    counterfactual: str = COUNTERFACTUAL_OPTION,
    counterfactual_insert: bool = COUNTERFACTUAL_INSERT_OPTION,
    batch_size: int = BATCH_SIZE_OPTION,
    no_cache: bool = NO_CACHE_OPTION,
    budget_usd: float = BUDGET_OPTION,
    mlflow_uri: str = MLFLOW_OPTION,
    phi_policy: str = PHI_POLICY_OPTION,
    name: str = NAME_OPTION,
    resume: str = RESUME_OPTION,
    db: str = DB_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Score a model on exam questions; the answer is read by the same rule medops.rewards uses."""
    given = locals()  # not inside the comprehension: that has its own locals()
    options = {k: (v.value if isinstance(v, Enum) else v) for k, v in given.items() if k in EXAM_DEFAULTS}
    config = api.exam_config(**options) if resume is None else None
    store = api.open_store(db)
    subscribers = trackers(store, mlflow_uri, phi_policy)
    if config is not None:
        outcome = api.evaluate(config, db=store, name=name, subscribers=subscribers, on_notice=print_notice)
    else:
        outcome = api.resume(
            resume,
            db=store,
            budget_usd=budget_usd,
            subscribers=subscribers,
            on_notice=print_notice,
            benchmarks=("mcqa",),
        )
    show_outcome(store, outcome, as_json)
    close_run(outcome, subscribers)


class ExportFormat(str, Enum):
    trl = "trl"
    verl = "verl"


def data_export(
    task: Task = typer.Option(..., "--task"),
    data: str = typer.Option(..., "--data"),
    fmt: ExportFormat = typer.Option(ExportFormat.trl, "--format", help="trl: JSONL prompt/answer; verl: parquet."),
    output: Path = typer.Option(..., "-o", "--output"),
    style: Style = typer.Option("cot", "--style", help="The prompt style the reward expects (cot or r1)."),
    language: str = typer.Option(None, "--language"),
) -> None:
    """Write an exam set as an RL prompt/answer dataset for TRL or verl (rewards: medops.rewards).

    Rows carry the letters and option texts, so the rewards read answers exactly as eval mcqa does."""
    exam = load_mcqa(task.value, resolve(data)[1])
    language = language or default_language(task.value)
    rows = [
        training_row(item, task.value, style.value, language, fmt=fmt.value, index=index)
        for index, item in enumerate(exam.items)
    ]
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=output.resolve().parent, prefix=f".{output.name}.")
    os.close(fd)
    try:
        if fmt is ExportFormat.trl:
            Path(tmp).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        else:
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise UserError("--format verl writes parquet and needs pyarrow: pip install 'medops[rl]'") from None
            pq.write_table(pa.Table.from_pylist(rows), tmp)
        os.replace(tmp, output)
    finally:
        Path(tmp).unlink(missing_ok=True)
    out.print(f"{len(rows)} items from {exam.name} -> {output} ({fmt.value}; skipped: {exam.skipped or 'none'})")
