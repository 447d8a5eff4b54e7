"""Everything that defines a HealthBench run; stored with the run so ``--resume`` repeats it exactly."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medops.grading.grader import GraderSettings
from medops.grading.templates import default_group_template
from medops.models.base import RetryPolicy, SamplingParams
from medops.models.spec import ModelSpec


class RunSettings(BaseModel):
    """What every run shares: how it selects items, talks to endpoints, caches and spends."""

    model_config = ConfigDict(frozen=True)

    limit: int | None = Field(default=None, ge=1)
    repeats: int = Field(default=1, ge=1)
    seed: int = 0
    concurrency: int = Field(default=32, ge=1)
    max_tries: int = Field(default=6, ge=1)
    retry_base_delay_s: float = Field(default=1.0, ge=0)
    timeout_s: float = Field(default=120.0, gt=0)
    batch_size: int = Field(default=8, ge=1)
    use_cache: bool = True
    budget_usd: float | None = Field(default=None, gt=0)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_tries=self.max_tries, base_delay_s=self.retry_base_delay_s, timeout_s=self.timeout_s)

    def record(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class HealthBenchConfig(RunSettings):
    benchmark: Literal["healthbench", "meta-eval"] = "healthbench"
    data: str
    # the --preset the settings below started from (a record: the settings themselves are what runs)
    preset: str | None = None
    # "points" renders "[5] criterion" (HealthBench); "text" the bare criterion (the meta-eval reference)
    rubric_item_format: Literal["points", "text"] = "points"
    model: ModelSpec | None = None  # None when responses are given or ideal completions graded
    grader: ModelSpec
    # a jury: every grader, in the order given (the first is ``grader``); empty: ``grader`` alone
    graders: tuple[ModelSpec, ...] = ()
    jury: Literal["majority", "all", "any", "mean"] = "majority"  # how the jurors' verdicts become one
    completions: Literal["model", "given", "ideal"] = "model"
    responses_path: str | None = None
    model_temperature: float | None = None
    model_max_tokens: int | None = Field(default=None, ge=1)
    model_system_message: str | None = None
    grader_temperature: float = 0.0
    grader_max_tokens: int = Field(default=2048, ge=1)
    grader_system_message: str | None = None
    grader_template: str
    grader_template_source: str = "medops-default"
    grader_parse_retries: int = Field(default=3, ge=0)
    grader_verdict: Literal["text", "logprob"] = "text"
    grader_json_schema: bool = False
    criteria_per_call: int = Field(default=1, ge=1)
    grader_group_template: str | None = None
    model_top_p: float | None = None
    model_seed: int | None = None
    length_penalty: float | None = None
    length_center: float | None = None
    # counterfactual variants of each prompt (medops.equity; McqaConfig has the same two)
    counterfactual: tuple[str, ...] = ()
    counterfactual_insert: bool = False

    @model_validator(mode="before")
    @classmethod
    def _stored_task_key(cls, data: Any) -> Any:
        """Runs stored before the rename recorded ``benchmark`` as ``task``."""
        if isinstance(data, dict) and "task" in data and "benchmark" not in data:
            data = {("benchmark" if key == "task" else key): value for key, value in data.items()}
        return data

    def model_params(self) -> SamplingParams:
        return SamplingParams(
            temperature=self.model_temperature,
            max_tokens=self.model_max_tokens,
            top_p=self.model_top_p,
            seed=self.model_seed,
        )

    def grader_params(self) -> SamplingParams:
        return SamplingParams(temperature=self.grader_temperature, max_tokens=self.grader_max_tokens)

    def grader_specs(self) -> tuple[ModelSpec, ...]:
        """Every grader of the run: the jury's, or the one grader."""
        return self.graders or (self.grader,)

    def grader_settings(self, grader: ModelSpec) -> GraderSettings:
        """How ``grader`` judges each criterion: the run's grader options, for that model."""
        return GraderSettings(
            template=self.grader_template,
            group_template=self.grader_group_template or default_group_template(),
            params=self.grader_params(),
            system_message=self.grader_system_message,
            parse_retries=self.grader_parse_retries,
            verdict=self.grader_verdict,
            json_schema=self.grader_json_schema,
            criteria_per_call=self.criteria_per_call,
            scores_choices=grader.capabilities.choice_scoring,
        )


class McqaConfig(RunSettings):
    """Everything that defines an exam run."""

    task: str  # the exam (medqa, kmle, ...): which loader reads --data
    data: str
    model: ModelSpec
    style: Literal["direct", "cot", "r1", "confidence"] = "direct"
    language: Literal["en", "ko"] = "en"
    prompt_template: str | None = None
    shots: int = Field(default=0, ge=0)
    fewshot_data: str | None = None
    scoring: Literal["generate", "loglikelihood"] = "generate"
    temperature: float | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    top_p: float | None = None
    model_seed: int | None = None
    system_message: str | None = None
    skip_images: bool = False  # items with images skipped and counted (a model that takes no images)
    allow_abstain: bool = False  # "I don't know" answers accepted, counted apart, scored by abstention_score
    logprobs: bool = True  # ask a served model for the answer token's logprobs where the style allows
    # counterfactual variants (medops.equity): the attributes varied, and whether an item that does
    # not mention one gets a neutral sentence per value (else it is left out of that attribute, counted)
    counterfactual: tuple[str, ...] = ()
    counterfactual_insert: bool = False

    def sampling(self) -> SamplingParams:
        return SamplingParams(
            temperature=self.temperature, max_tokens=self.max_tokens, top_p=self.top_p, seed=self.model_seed
        )
