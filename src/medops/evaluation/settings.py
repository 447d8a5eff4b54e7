"""From options (the CLI's flags, the Python API's keywords) to a run's settings: the presets, the
verdict-mode rule, the defaults of a benchmark variant and every cross-option check, in one place."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from medops.equity.rewrite import parse_attributes
from medops.errors import UserError
from medops.evaluation.config import HealthBenchConfig, McqaConfig
from medops.evaluation.variants import VARIANTS
from medops.grading.judge import REDUCERS
from medops.grading.templates import default_template, load_template
from medops.models.spec import ModelSpec, parse_model_spec
from medops.prompts.mcqa import LANGUAGES, default_language, load_prompt_template

# OpenAI simple-evals (healthbench_eval.py, simple_evals.py, sampler/chat_completion_sampler.py):
# the model under test and the grader are both ChatCompletionSampler(system_message=
# OPENAI_SYSTEM_MESSAGE_API, max_tokens=2048) at its default temperature 0.5, and the grader's
# reply is read as text. The sampler prepends its system message to what it sends, and that
# system turn is part of the conversation the grader is shown (medops does the same with
# --model-system-message); graded ideal completions are shown without one, as there.
REFERENCE_SYSTEM_MESSAGE = "You are a helpful assistant."
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "simple-evals": {
        "model": {
            "model_system_message": REFERENCE_SYSTEM_MESSAGE,
            "model_temperature": 0.5,
            "model_max_tokens": 2048,
        },
        "grader": {
            "grader_system_message": REFERENCE_SYSTEM_MESSAGE,
            "grader_temperature": 0.5,
            "grader_max_tokens": 2048,
            "grader_verdict": "text",
        },
    }
}

# What an option is when it is not given (the CLI shows the same defaults): first the ones every
# run shares (``RunSettings``), then each kind's own.
RUN_DEFAULTS: dict[str, Any] = {
    "limit": None,
    "repeats": 1,
    "seed": 0,
    "concurrency": 32,
    "max_tries": 6,
    "retry_base_delay": 1.0,
    "timeout": 120.0,
    "batch_size": 8,
    "no_cache": False,
    "budget_usd": None,
}
HEALTHBENCH_DEFAULTS: dict[str, Any] = {
    **RUN_DEFAULTS,
    "data": "demo",
    "model": "local:smollm2",
    "grader": "local:smollm2",
    "model_base_url": None,
    "grader_base_url": None,
    "model_api_key_env": None,
    "grader_api_key_env": None,
    "jury": "majority",
    "responses": None,
    "completions": "model",
    "model_temperature": None,
    "model_max_tokens": None,
    "model_system_message": None,
    "grader_temperature": 0.0,
    "grader_max_tokens": 2048,
    "grader_system_message": None,
    "grader_template": None,
    "grader_parse_retries": 3,
    "grader_verdict": "auto",
    "grader_json_schema": False,
    "criteria_per_call": 1,
    "grader_group_template": None,
    "model_top_p": None,
    "model_seed": None,
    "length_penalty": None,
    "length_center": None,
    "preset": None,
    "counterfactual": None,
    "counterfactual_insert": False,
}


def _with_defaults(options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``options`` over ``defaults``; a name the command does not have is a TypeError (a typo in a
    notebook must not be ignored)."""
    unknown = set(options) - set(defaults)
    if unknown:
        raise TypeError(f"unknown options: {', '.join(sorted(unknown))}")
    return {**defaults, **options}


def _run_settings(args: dict[str, Any]) -> dict[str, Any]:
    """The settings every run shares (``RunSettings``), from options named as the CLI's flags."""
    return {
        "limit": args["limit"],
        "repeats": args["repeats"],
        "seed": args["seed"],
        "concurrency": args["concurrency"],
        "max_tries": args["max_tries"],
        "retry_base_delay_s": args["retry_base_delay"],
        "timeout_s": args["timeout"],
        "batch_size": args["batch_size"],
        "use_cache": not args["no_cache"],
        "budget_usd": args["budget_usd"],
    }


def with_preset(options: dict[str, Any], explicit: Collection[str], benchmark: str = "healthbench") -> dict[str, Any]:
    """``options`` with the preset's value for every setting not in ``explicit``.

    Model settings apply only when a model is called (not with given responses, ideal
    completions or in meta-eval, where the grader is the model being checked).
    """
    preset = options.get("preset")
    if preset is None:
        return options
    if preset not in PRESETS:
        raise UserError(f"unknown preset '{preset}' (known: {', '.join(PRESETS)})")
    settings = PRESETS[preset]
    calls_model = benchmark == "healthbench" and options["responses"] is None and options["completions"] == "model"
    chosen = {**settings["grader"], **(settings["model"] if calls_model else {})}
    return {**options, **{name: value for name, value in chosen.items() if name not in explicit}}


def healthbench_config(
    options: dict[str, Any], *, explicit: Collection[str] = (), benchmark: str = "healthbench"
) -> HealthBenchConfig:
    """The settings of a rubric run (``eval healthbench``) or a meta-evaluation, from options named
    as the CLI's flags (``model_base_url`` for ``--model-base-url``); missing ones take their default.
    ``explicit`` names the options the user gave, which a preset never overrides."""
    args = with_preset(_with_defaults(options, HEALTHBENCH_DEFAULTS), explicit, benchmark)
    if not args["data"]:
        raise UserError("--data is required (a built-in name or a JSONL file)")
    if not args["grader"]:
        raise UserError("--grader is required, e.g. --grader openai:gpt-4.1")
    source = "given" if args["responses"] is not None or benchmark == "meta-eval" else str(args["completions"])
    if source == "model" and not args["model"]:
        raise UserError("--model is required unless --responses FILE or --completions ideal is given")
    model = (
        parse_model_spec(
            args["model"], base_url=args["model_base_url"], api_key_env=args["model_api_key_env"], what="--model"
        )
        if source == "model"
        else None
    )
    graders = _grader_specs(args)
    grader = graders[0]
    if args["jury"] not in REDUCERS:
        raise UserError(f"--jury must be one of {', '.join(REDUCERS)}")
    template_path, group_template = args["grader_template"], args["grader_group_template"]
    verdict = str(args["grader_verdict"])
    if verdict == "auto":  # a grader that scores choices in process reads P(met); an API's text is parsed
        verdict = "logprob" if grader.capabilities.choice_scoring else "text"
    if verdict == "logprob" and args["criteria_per_call"] > 1:
        raise UserError(
            "--criteria-per-call > 1 needs --grader-verdict text (grouped replies carry no per-criterion logprob)"
        )
    length_penalty, length_center = args["length_penalty"], args["length_center"]
    variant = VARIANTS.get(args["data"])
    if variant is not None and length_penalty is None and length_center is None:
        # the reference's length adjustment for this set, unless the user chose their own
        length_penalty, length_center = variant.length_penalty_per_500_chars, variant.length_center
    counterfactual = _counterfactual(args)
    if counterfactual["counterfactual"] and (benchmark == "meta-eval" or source != "model"):
        raise UserError(
            "--counterfactual needs responses from --model: a given response or an ideal completion "
            "does not change with the patient's description"
        )
    return HealthBenchConfig(
        **counterfactual,
        benchmark=benchmark,
        preset=args["preset"],
        rubric_item_format="text" if benchmark == "meta-eval" else "points",
        data=args["data"],
        model=model,
        grader=grader,
        graders=graders if len(graders) > 1 else (),
        jury=args["jury"],
        completions=source,
        responses_path=str(args["responses"]) if args["responses"] else None,
        **_run_settings(args),
        model_temperature=args["model_temperature"],
        model_max_tokens=args["model_max_tokens"],
        model_system_message=args["model_system_message"],
        grader_temperature=args["grader_temperature"],
        grader_max_tokens=args["grader_max_tokens"],
        grader_system_message=args["grader_system_message"],
        grader_template=load_template(template_path) if template_path else default_template(),
        grader_template_source=str(template_path) if template_path else "medops-default",
        grader_parse_retries=args["grader_parse_retries"],
        length_penalty=length_penalty,
        length_center=length_center,
        grader_verdict=verdict,
        grader_json_schema=args["grader_json_schema"],
        criteria_per_call=args["criteria_per_call"],
        grader_group_template=load_template(group_template, ("<<conversation>>", "<<rubric_items>>"))
        if group_template
        else None,
        model_top_p=args["model_top_p"],
        model_seed=args["model_seed"],
    )


def _each(value: Any, n: int, what: str) -> list[Any]:
    """One value for every grader, or one per grader (a list as long as the graders)."""
    if isinstance(value, (list, tuple)) and len(value) <= 1:
        value = value[0] if value else None  # a repeatable flag given once, or not at all
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise UserError(f"{what} is given {len(value)} times for {n} graders: give it once, or once per grader")
        return list(value)
    return [value] * n


def _grader_specs(args: dict[str, Any]) -> tuple[ModelSpec, ...]:
    """The graders: ``grader`` is one name or several (a jury); base URLs and key variables are
    given once for all of them, or once per grader."""
    names = list(args["grader"]) if isinstance(args["grader"], (list, tuple)) else [args["grader"]]
    urls = _each(args["grader_base_url"], len(names), "--grader-base-url")
    keys = _each(args["grader_api_key_env"], len(names), "--grader-api-key-env")
    specs = tuple(
        parse_model_spec(name, base_url=url, api_key_env=key, what="--grader")
        for name, url, key in zip(names, urls, keys, strict=True)
    )
    labels = [str(spec) for spec in specs]
    if len(set(labels)) != len(labels):
        twice = max(labels, key=labels.count)
        raise UserError(f"--grader {twice} is given twice: each juror must be a different model")
    return specs


EXAM_DEFAULTS: dict[str, Any] = {
    **RUN_DEFAULTS,
    "task": None,
    "data": None,
    "model": "local:smollm2",
    "model_base_url": None,
    "model_api_key_env": None,
    "style": "direct",
    "language": None,
    "prompt_template": None,
    "shots": 0,
    "fewshot_data": None,
    "scoring": "generate",
    "temperature": None,
    "max_tokens": None,
    "top_p": None,
    "model_seed": None,
    "system_message": None,
    "skip_images": False,
    "allow_abstain": False,
    "no_logprobs": False,
    "counterfactual": None,
    "counterfactual_insert": False,
}


def _counterfactual(args: dict[str, Any]) -> dict[str, Any]:
    """``--counterfactual ATTRS`` and ``--counterfactual-insert``: the latter alone is refused (it would do nothing)."""
    attributes = parse_attributes(args["counterfactual"])
    if args["counterfactual_insert"] and not attributes:
        raise UserError("--counterfactual-insert needs --counterfactual ATTRS")
    return {"counterfactual": attributes, "counterfactual_insert": bool(args["counterfactual_insert"])}


def exam_config(options: dict[str, Any]) -> McqaConfig:
    """The settings of an exam run (``eval mcqa``), from options named as the CLI's flags."""
    args = _with_defaults(options, EXAM_DEFAULTS)
    if not args["task"] or not args["data"]:
        raise UserError("--task and --data are required (or --resume RUN)")
    language = args["language"] or default_language(args["task"])
    if language not in LANGUAGES:
        raise UserError(f"--language must be one of {', '.join(LANGUAGES)}")
    return McqaConfig(
        task=args["task"],
        data=args["data"],
        model=parse_model_spec(args["model"], base_url=args["model_base_url"], api_key_env=args["model_api_key_env"]),
        style=args["style"],
        language=language,
        prompt_template=load_prompt_template(args["prompt_template"]) if args["prompt_template"] else None,
        shots=args["shots"],
        fewshot_data=args["fewshot_data"],
        scoring=args["scoring"],
        **_run_settings(args),
        temperature=args["temperature"],
        max_tokens=args["max_tokens"],
        top_p=args["top_p"],
        model_seed=args["model_seed"],
        system_message=args["system_message"],
        skip_images=bool(args["skip_images"]),
        allow_abstain=bool(args["allow_abstain"]),
        logprobs=not args["no_logprobs"],
        **_counterfactual(args),
    )
