"""``medops rl train``: GRPO on TRL with ``medops.rewards`` (the rule evaluation scores with).

The training engine is TRL's; medops supplies the data, the reward, the base model (any HF
causal LM, or the packaged SmolLM2 as its converted ordinary checkpoint: transformers will not
train a GGUF-loaded model), and the record: every logged step goes to the store as part of a
training run linked to its data set, base model and checkpoints. Checkpoints resume after an
interruption. Defaults follow TRL's own unless noted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypedDict

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medops.datasets.jsonl import file_facts, read_bytes
from medops.errors import UserError
from medops.models.base import Completion
from medops.models.hf_kind import is_vision_checkpoint
from medops.models.spec import ModelSpec, mask_url_credentials
from medops.rewards.rubric import RubricReward, rubric_judge
from medops.rl.prepare import PreparedData, read_manifest
from medops.store.repository import CACHE, COMPLETED, FAILED, INTERRUPTED, Store, cache_row
from medops.store.schema import Run

BENCHMARK = "rl-train"

Notice = Callable[[str], None]  # a one-line message for the user (the CLI prints it to stderr)

# One setting of an exam run and where its value came from ("flag", "training run 3", a manifest
# path, "default"); `rl difficulty` and `rl evaluate` print these in their JSON's "settings".
Setting = TypedDict("Setting", {"value": Any, "from": str})
Settings = dict[str, Setting]


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = "local:smollm2"  # local:smollm2, or an HF directory / hub id
    train_data: str  # train.jsonl from `medops rl prepare`
    output_dir: str
    num_generations: int = Field(default=8, ge=2)
    per_device_train_batch_size: int = Field(default=8, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_completion_length: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=1e-6, gt=0)
    beta: float = Field(default=0.0, ge=0)  # TRL's current default: no KL term
    temperature: float = Field(default=1.0, gt=0)
    num_train_epochs: float = Field(default=1.0, gt=0)
    max_steps: int = -1
    use_lora: bool = True
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    gradient_checkpointing: bool = False
    bf16: bool = False
    seed: int = 0
    save_steps: int = Field(default=500, ge=1)
    logging_steps: int = Field(default=1, ge=1)
    format_weight: float = Field(default=0.0, ge=0, le=1)
    style: Literal["auto", "cot", "r1"] = "auto"  # auto: the style train_data was prepared with
    use_vllm: bool = False  # TRL's colocate mode, on a GPU machine
    report_to: list[str] = Field(default_factory=list)
    reward: Literal["exam", "rubric"] = "exam"  # exam: the answer rule; rubric: a judge against each row's rubric
    grader: str | None = None  # rubric: the judge's model (backend:name), as `eval healthbench --grader`
    grader_base_url: str | None = None
    grader_concurrency: int = Field(default=16, ge=1)  # rubric: judge calls in flight at once

    @model_validator(mode="after")
    def _reward_settings(self) -> TrainConfig:
        if self.reward == "rubric" and not self.grader:
            raise ValueError("reward rubric needs grader (e.g. openai:gpt-4.1-mini)")
        if self.reward == "exam" and (self.grader or self.grader_base_url):
            raise ValueError("grader applies to reward rubric only (the exam reward is the answer rule)")
        if self.reward == "rubric" and self.format_weight:
            raise ValueError("format_weight applies to reward exam only")
        return self


def load_train_config(path: Path | None, overrides: dict[str, Any], *, settings_only: bool = False) -> TrainConfig:
    """``settings_only``: read for its generation settings (``rl difficulty``), so the data and
    output paths may be absent."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = yaml.safe_load(Path(path).read_text("utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"{path}: cannot read the training config ({exc.__class__.__name__})") from None
        if not isinstance(raw, dict):
            raise UserError(f"{path}: expected a mapping of training options")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    if settings_only:
        raw = {"train_data": "", "output_dir": "", **raw}
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in error["loc"]) or "reward"  # a rule across fields: the reward's
        raise UserError(f"{path or 'training options'}: {field}: {error['msg']}") from None


def with_prepared_style(config: TrainConfig, prepared: PreparedData | None) -> TrainConfig:
    """The format reward checks the style the rows' prompts ask for: the one they were prepared with."""
    if prepared is None:
        return config  # not from `medops rl prepare`: "auto" judges each completion by its own format
    if prepared.style not in ("cot", "r1"):
        raise UserError(f"{prepared.manifest}: style {prepared.style}: the format reward checks cot or r1 only")
    if config.style == "auto":
        return config.model_copy(update={"style": prepared.style})
    if config.style != prepared.style:
        raise UserError(
            f"style {config.style}: {config.train_data} was prepared with style {prepared.style} "
            f"({prepared.manifest}), and its prompts ask for that format"
        )
    return config


def _base_model(spec: str) -> str:
    if spec == "local:smollm2":
        from medops.models.local_hf import smollm2_checkpoint

        return str(smollm2_checkpoint())
    return spec.removeprefix("hf:")


def refuse_vision(config: TrainConfig, rows: list[dict[str, Any]]) -> None:
    """``rl train`` fine-tunes text models (a causal LM with LoRA); vision GRPO is refused, in one line."""
    with_images = sum(1 for row in rows if row.get("images"))
    if with_images:
        raise UserError(
            f"{config.train_data}: {with_images} row(s) have images; medops rl train trains text models only "
            "(train a vision-language model on these rows with TRL's GRPOTrainer directly: `prompt` with image "
            "placeholders and `images` paths relative to the file), or prepare text items only"
        )
    if is_vision_checkpoint(_base_model(config.model)):
        raise UserError(
            f"--model {config.model}: a vision-language checkpoint; medops rl train trains text models only "
            "(TRL's GRPOTrainer can train it directly on rows from `medops rl prepare`)"
        )


def train(
    config: TrainConfig,
    store: Store,
    *,
    name: str | None = None,
    on_notice: Notice | None = None,
) -> dict[str, Any]:
    """Run GRPO on ``config`` and record it in ``store`` as it goes: the run, each logged step,
    its checkpoints and final model. Returns the run's summary with ``run_id`` and ``status``
    (``interrupted`` on Ctrl-C: the output directory resumes on the next call)."""
    prepared = read_manifest(config.train_data, on_notice)
    rubric = config.reward == "rubric"
    if not rubric:
        config = with_prepared_style(config, prepared)
    try:
        from datasets import Dataset
        from peft import LoraConfig
        from transformers import TrainerCallback
        from trl import GRPOConfig, GRPOTrainer
    except ImportError as exc:
        raise UserError(f"medops rl train needs TRL and peft ({exc}): pip install 'medops[rl,local]'") from None
    from medops.rewards import accuracy_reward, format_reward

    if rubric:
        _check_trl_drops_unscorable(GRPOTrainer)

    data = read_bytes(config.train_data)
    rows = [json.loads(line) for line in data.decode("utf-8").split("\n") if line.strip()]
    if rubric:
        rows = rubric_rows(config.train_data, rows)
    elif not rows or "prompt" not in rows[0] or "answer" not in rows[0]:
        raise UserError(f"{config.train_data}: expected prompt/answer rows (from `medops rl prepare`)")
    refuse_vision(config, rows)
    dataset_id = store.register_dataset(Path(config.train_data).stem, file_facts(config.train_data, data), len(rows))
    run_id = store.create_run(
        name=name,
        benchmark=BENCHMARK,
        dataset_id=dataset_id,
        model=config.model,
        grader=f"medops.rewards.rubric:{config.grader}" if rubric else "medops.rewards",
        # with how the rows were prompted, so `rl evaluate` and `rl difficulty` can ask the same way
        config={
            **config.model_dump(mode="json"),
            "grader_base_url": mask_url_credentials(config.grader_base_url),  # never a credential in the store
            "prepared_data": prepared.record() if prepared else None,
        },
    )
    steps: list[dict[str, Any]] = []
    reward = _rubric_reward(config, store) if rubric else None
    reward_totals: dict[str, int] = {}

    class RecordSteps(TrainerCallback):
        """Every logged step into the store as it happens, so an interrupted run keeps its history."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "train_runtime" not in logs:
                step = {
                    "step": state.global_step,
                    **{k: float(v) for k, v in logs.items() if isinstance(v, int | float)},
                }
                if reward is not None:  # what the judge did since the last logged step
                    for key, value in reward.stats.take().items():
                        step[f"rubric/{key}"] = value
                        reward_totals[key] = reward_totals.get(key, 0) + value
                steps.append(step)
                store.update_summary(run_id, {"steps": steps, "output_dir": config.output_dir})

    arguments = GRPOConfig(
        output_dir=config.output_dir,
        num_generations=config.num_generations,
        per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_completion_length=config.max_completion_length,
        learning_rate=config.learning_rate,
        beta=config.beta,
        temperature=config.temperature,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        gradient_checkpointing=config.gradient_checkpointing,
        bf16=config.bf16,
        seed=config.seed,
        save_steps=config.save_steps,
        logging_steps=config.logging_steps,
        report_to=config.report_to,
        use_vllm=config.use_vllm,
        reward_weights=None if rubric else [1 - config.format_weight, config.format_weight],
        **({"vllm_mode": "colocate"} if config.use_vllm else {}),
    )
    peft_config = (
        LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            target_modules=config.lora_target_modules,
            task_type="CAUSAL_LM",
        )
        if config.use_lora
        else None
    )

    # Two reward functions, weighted: TRL logs each one's mean, i.e. accuracy and format rate per step.
    def accuracy(prompts=None, completions=(), **kwargs):
        return accuracy_reward(prompts, completions, **kwargs)

    def format_rate(prompts=None, completions=(), **kwargs):
        return format_reward(prompts, completions, style=config.style)

    trainer = GRPOTrainer(
        model=_base_model(config.model),
        reward_funcs=[reward] if reward is not None else [accuracy, format_rate],
        args=arguments,
        train_dataset=Dataset.from_list(rows),
        peft_config=peft_config,
        callbacks=[RecordSteps()],
    )
    resume = any(Path(config.output_dir).glob("checkpoint-*"))
    status = COMPLETED
    try:
        result = trainer.train(resume_from_checkpoint=True if resume else None)
    except KeyboardInterrupt:
        status = INTERRUPTED
        result = None
    except Exception as exc:
        if reward is not None:
            reward.close()
        store.finish_run(
            run_id,
            FAILED,
            wall_seconds=0.0,
            error=str(exc)[:500],
            summary={"steps": steps, "output_dir": config.output_dir},
        )
        raise
    if reward is not None:
        reward.close()
    final = Path(config.output_dir) / "final"
    if status == COMPLETED:
        trainer.save_model(str(final))
    checkpoints = sorted(str(p) for p in Path(config.output_dir).glob("checkpoint-*"))
    summary = {
        "steps": steps,
        "output_dir": config.output_dir,
        "checkpoints": checkpoints,
        "final_model": str(final) if status == COMPLETED else None,
        "resumed_from_checkpoint": resume,
        "base_model": _base_model(config.model),
        "train_runtime_s": result.metrics.get("train_runtime") if result else None,
    }
    if reward is not None:  # a completion the judge could not grade was dropped from its step, not scored 0
        summary["rubric_reward"] = reward_totals
    store.finish_run(run_id, status, wall_seconds=float(summary["train_runtime_s"] or 0.0), summary=summary)
    return {"run_id": run_id, "status": status, **summary}


def _check_trl_drops_unscorable(trainer: type) -> None:
    """A completion the judge could not grade must be left out of its step, never scored 0: TRL
    does that for completions every reward function returned None for since huggingface/trl#5902;
    an older TRL would turn them into zero rewards, so it is refused."""
    import inspect

    import trl

    if "unscorable" not in inspect.getsource(trainer._generate_and_score_completions):
        raise UserError(
            f"reward rubric needs a TRL that leaves unscorable completions out of the step (trl {trl.__version__} "
            "scores them 0): pip install -U trl"
        )


def rubric_rows(path: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rubric training rows (HealthBench format, from ``rl prepare --from-run``) as the trainer
    takes them: the conversation as ``prompt`` and the criteria as ``rubrics``."""
    out = []
    for line, row in enumerate(rows, 1):
        prompt, criteria = row.get("prompt"), row.get("rubrics")
        if not isinstance(prompt, list) or not prompt or not isinstance(criteria, list) or not criteria:
            field = "prompt" if not isinstance(prompt, list) or not prompt else "rubrics"
            raise UserError(f"{path}:{line}: {field}: expected rubric rows (from `medops rl prepare --from-run`)")
        out.append({"prompt": prompt, "rubrics": [{"tags": [], **c} for c in criteria]})
    if not out:
        raise UserError(f"{path}: no rows")
    return out


class StoreCache:
    """The rubric reward's judge answers in the store's call cache, as evaluation calls are kept:
    a resumed training run (or a later one with the same grader) sends only what is new."""

    def __init__(self, store: Store):
        self.store, self.writer = store, store.writer()

    def get(self, key: str) -> Completion | None:
        return self.store.cache_get(key)

    def put(self, key: str, completion: Completion) -> None:
        self.writer.add(CACHE, cache_row(key, completion))

    def close(self) -> None:
        self.writer.close()


class _ClosingReward(RubricReward):
    """The rubric reward that also flushes its cache writes when training ends."""

    def close(self) -> None:
        super().close()
        if isinstance(self.cache, StoreCache):
            self.cache.close()


def _rubric_reward(config: TrainConfig, store: Store) -> RubricReward:
    assert config.grader is not None  # the config requires it for reward rubric
    judge = rubric_judge(config.grader, config.grader_base_url, concurrency=config.grader_concurrency)
    return _ClosingReward(judge, cache=StoreCache(store), max_concurrency=config.grader_concurrency)


# Scoring a model as it was trained -------------------------------------------------------------
def training_run_for(store: Store, spec: ModelSpec) -> Run | None:
    """The latest recorded ``rl train`` run whose output directory holds this model: the
    directory itself, its ``final`` or one of its ``checkpoint-N``."""
    where = _weights_directory(spec)
    if where is None:
        return None
    found = None
    for run, _ in store.list_runs():
        output_dir = (run.config or {}).get("output_dir") if run.benchmark == BENCHMARK else None
        if output_dir and Path(output_dir).resolve() in (where, where.parent):
            found = run
    return found


def _weights_directory(spec: ModelSpec) -> Path | None:
    """The directory a spec's name points at: ``hf:DIR``, or ``openai:DIR`` served under its path
    (as vLLM names a checkpoint). A ``local:`` name is a packaged model, never a path."""
    if spec.backend == "local" or not Path(spec.name).exists():
        return None
    return Path(spec.name).resolve()


def training_run(store: Store, ref: str) -> Run:
    """The ``rl train`` run ``ref`` (id or name); any other run is refused."""
    run = store.find_run(ref)
    if run.benchmark != BENCHMARK:
        raise UserError(f"run '{ref}' is a {run.benchmark} run, not an `rl train` run")
    return run


def trained_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What a training run (or training config) generated with, as exam-run settings."""
    style = config.get("style")
    return {
        "style": style if style in ("cot", "r1") else None,
        "language": (config.get("prepared_data") or {}).get("language"),
        "max_tokens": config.get("max_completion_length"),
        "temperature": config.get("temperature"),
    }


def resolve_settings(
    defaults: dict[str, Any],
    flags: dict[str, Any],
    *,
    run: Run | None = None,
    train_config: tuple[str, TrainConfig] | None = None,
    prepared: PreparedData | None = None,
) -> Settings:
    """Each setting in ``defaults`` as ``{"value", "from"}``: a flag, else the training run, else
    the training config file, else the prepared data's manifest, else the default."""
    layers: list[tuple[str, dict[str, Any]]] = [("flag", flags)]
    if run is not None:
        layers.append((f"training run {run.id}", trained_settings(run.config or {})))
    if train_config is not None:
        layers.append((train_config[0], trained_settings(train_config[1].model_dump(mode="json"))))
    if prepared is not None:
        layers.append((str(prepared.manifest), {"style": prepared.style, "language": prepared.language}))
    settings: Settings = {}
    for key, default in defaults.items():
        source, value = next(((s, v[key]) for s, v in layers if v.get(key) is not None), ("default", default))
        settings[key] = {"value": value, "from": source}
    return settings
