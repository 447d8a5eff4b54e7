"""The monitor policy: windows, webhooks and drift / alert rules, shaped like the gate policy.

Policy YAML (docs/monitor.yaml is a commented example)::

    window: 1h            # the current window: the last hour
    reference: 7d         # compared with the 7 days before it
    cooldown: 1h          # the same alert (rule + scope) does not fire again within this
    min_samples: 20       # distribution tests need this many values in each window, else skipped
    webhooks:
      - {name: oncall, url: "http://alerts.hospital.local/hook", format: json}
      - {name: slack, url_env: MEDOPS_SLACK_WEBHOOK, format: slack}
    rules:
      - {min_exchanges: 20}                                   # traffic has not stopped
      - {name: prompt-length, metric: prompt_length, test: psi, max: 0.2}
      - {metric: language_mix, test: chi2, max_p: 0.001}
      - {metric: refusal_rate, max: 0.1}
      - {metric: error_rate, max: 0.05}
      - {metric: latency_p95_s, max: 5}
      - {metric: "online:overall_score", min: 0.5}
      - {metric: "online:overall_score", test: cusum, h: 5, window: 1d}
      - {metric: "canary:overall_score", min: 0.45}
      - {metric: prompt_embedding, test: mmd, max_p: 0.001}   # needs embedding_model
    embedding_model: local:smollm2  # or hf:/models/your-embedder (on this machine)
    retention:            # each `monitor check` round deletes what is older (as `medops store prune`)
      exchanges: 90d      # at least the longest window + reference
      scores: 400d
      canary_runs: 180d   # runs a gate decision or a review set refers to are kept
      online_runs: 90d

A rule with ``action: retrain`` also starts retraining when it fires (``monitor/retrain.py``): the
training set of the alert's window (``rl prepare --from-exchanges``) is written, then the site's
command runs with the set's path and the alert id in its environment::

    retrain:
      output_dir: /data/retrain      # one directory per alert: alert-<id>/train.jsonl, manifest.json
      below: 0.5                     # conversations scored below this [default: the rule's min]
      command: "sbatch train.sh"     # run without a shell; or a Kubernetes Job:
      job_manifest: k8s/retrain-job.yaml   # ${MEDOPS_TRAINING_SET} / ${MEDOPS_ALERT_ID} filled in,
                                     # applied by command [default: kubectl apply -f <the filled-in copy>]
      dry_run: false                 # true: show what would run; write and run nothing

A bad file or field is one line naming the file and the field (exit 2), as for ``medops gate``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medops.errors import UserError
from medops.models.targets import arm_name
from medops.monitor.windows import parse_duration
from medops.ops.gate import read_policy

# Metrics computed from the exchanges of a window (medops.monitor.drift), by kind.
NUMERIC = ("prompt_length", "response_length", "latency_s")  # distributions: psi (default) or ks
CATEGORICAL = ("language_mix", "department_mix", "application_mix", "finish_reasons")  # psi (default) or chi2
RATES = ("refusal_rate", "error_rate")  # a share: its value (min/max) or ztest against the reference
POINTS = ("latency_p50_s", "latency_p95_s", "prompt_length_mean", "response_length_mean")  # a number: min/max
EMBEDDING = ("prompt_embedding",)  # the user text's embedding (embedding_model): mmd
SCORE_SOURCES = ("online", "canary")  # "online:<metric>" / "canary:<metric>": monitor_scores series
TESTS = ("psi", "chi2", "ks", "ztest", "cusum", "mmd")


def metric_kind(metric: str) -> str:
    """numeric | categorical | rate | point | embedding | score; ValueError for an unknown metric."""
    kinds = (("numeric", NUMERIC), ("categorical", CATEGORICAL), ("rate", RATES), ("point", POINTS))
    for kind, names in (*kinds, ("embedding", EMBEDDING)):
        if metric in names:
            return kind
    source, sep, name = metric.partition(":")
    if sep and source in SCORE_SOURCES and name:
        return "score"
    known = ", ".join((*NUMERIC, *CATEGORICAL, *RATES, *POINTS, *EMBEDDING, "online:<metric>", "canary:<metric>"))
    raise ValueError(f"unknown metric {metric!r} (known: {known})")


# Which tests each kind of metric takes; the first is the default when a rule names none
# (None: the rule checks the window's value against min / max).
ALLOWED_TESTS: dict[str, tuple[str | None, ...]] = {
    "numeric": ("psi", "ks"),
    "categorical": ("psi", "chi2"),
    "rate": (None, "ztest"),
    "point": (None,),
    "embedding": ("mmd",),
    "score": (None, "cusum"),
}


def _arm_field(value: str | None) -> str | None:
    """A deployment target's role (production, candidate, shadow) or its recorded arm name."""
    return arm_name(value) if value is not None else None


def _duration_field(value: str | None) -> str | None:
    if value is not None:
        try:
            parse_duration(value)
        except UserError as exc:
            raise ValueError(str(exc)) from None
    return value


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    url: str | None = None
    url_env: str | None = None  # the URL is read from this environment variable when the check runs
    format: Literal["json", "slack"] = "json"
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _one_url(self) -> Webhook:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("each webhook sets exactly one of url, url_env")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return self

    def resolved_url(self) -> str:
        """The URL to post to (from the environment for ``url_env``); UserError when unset."""
        if self.url is not None:
            return self.url
        value = os.environ.get(self.url_env or "", "").strip()
        if not value:
            raise UserError(
                f"webhook {self.name}: environment variable {self.url_env} is not set; set it to the webhook's "
                "URL, or remove the webhook from the policy (alerts are still recorded: `medops monitor alerts`)"
            )
        if not value.startswith(("http://", "https://")):
            raise UserError(f"webhook {self.name}: {self.url_env} must hold an http:// or https:// URL")
        return value


class MonitorRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = None  # default: derived from metric and test (see ``label``)
    metric: str | None = None
    test: Literal["psi", "chi2", "ks", "ztest", "cusum", "mmd"] | None = None
    max: float | None = None  # the value (or the PSI) must be <= max
    min: float | None = None  # the value must be >= min
    max_p: float | None = Field(default=None, gt=0, lt=1)  # chi2 / ks / ztest / mmd: alert when p < max_p
    h: float | None = Field(default=None, gt=0)  # cusum decision threshold (in reference sds); default 5
    k: float | None = Field(default=None, ge=0)  # cusum allowance (in reference sds); default 0.5
    direction: Literal["up", "down"] | None = None  # cusum / ztest: the harmful direction
    min_exchanges: int | None = Field(default=None, ge=1)  # a rule of its own: traffic in the window
    tag: str = "all"  # score series: which tag (all, department:ER, arm:candidate, ...)
    department: str | None = None  # exchange metrics: only this department's traffic
    application: str | None = None
    arm: str | None = None  # default: the policy's arm (a target's role or arm: models.targets)
    window: str | None = None  # overrides the policy's window / reference / cooldown for this rule
    reference: str | None = None
    cooldown: str | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    action: Literal["notify", "retrain"] = "notify"  # retrain: also start the policy's retraining when fired

    _durations = field_validator("window", "reference", "cooldown")(_duration_field)
    _arm = field_validator("arm")(_arm_field)

    @model_validator(mode="after")
    def _consistent(self) -> MonitorRule:
        if self.min_exchanges is not None:
            extra = [f for f in ("metric", "test", "max", "min", "max_p", "h", "k") if getattr(self, f) is not None]
            if extra:
                raise ValueError(f"a min_exchanges rule takes no {', '.join(extra)}")
            return self
        if not self.metric:
            raise ValueError("each rule sets a metric (or is a min_exchanges rule)")
        kind = metric_kind(self.metric)
        test = self.effective_test
        if test not in ALLOWED_TESTS[kind]:
            allowed = ", ".join(t or "none (min/max on the value)" for t in ALLOWED_TESTS[kind])
            raise ValueError(f"{self.metric} is a {kind} metric; its tests: {allowed}")
        if test == "psi":
            self._only(("max",), required=("max",))
        elif test in ("chi2", "ks", "ztest", "mmd"):
            self._only(("max_p", "direction") if test == "ztest" else ("max_p",), required=("max_p",))
        elif test == "cusum":
            self._only(("h", "k", "direction"), required=())
        else:
            self._only(("min", "max"), required=())
            if self.min is None and self.max is None:
                raise ValueError(f"a rule on {self.metric} without a test sets min or max")
        if kind == "score" and (self.department or self.application or self.arm):
            raise ValueError("score rules select their series with tag (department:ER, arm:candidate, ...)")
        return self

    def _only(self, allowed: tuple[str, ...], required: tuple[str, ...]) -> None:
        test = self.effective_test or "a value rule"
        for field in ("max", "min", "max_p", "h", "k", "direction"):
            if getattr(self, field) is not None and field not in allowed:
                raise ValueError(f"{field} does not apply to {test} (it takes {', '.join(allowed)})")
        for field in required:
            if getattr(self, field) is None:
                raise ValueError(f"{test} needs {field}")

    @property
    def effective_test(self) -> str | None:
        if self.test is not None or self.metric is None:
            return self.test
        return ALLOWED_TESTS[metric_kind(self.metric)][0]

    @property
    def label(self) -> str:
        """The rule's name: given, or e.g. ``prompt_length:psi``, ``refusal_rate``, ``min_exchanges``."""
        if self.name:
            return self.name
        if self.min_exchanges is not None:
            return "min_exchanges"
        return f"{self.metric}:{self.effective_test}" if self.effective_test else str(self.metric)

    @property
    def scope(self) -> str:
        """What the rule watches, beside its name: ``all``, ``department=ER``, ``tag=department:ER``."""
        if self.metric and metric_kind(self.metric) == "score":
            return f"tag={self.tag}"
        parts = [f"{f}={getattr(self, f)}" for f in ("department", "application", "arm") if getattr(self, f)]
        return ",".join(parts) or "all"

    @property
    def key(self) -> str:
        """The de-duplication key: rule name + scope (one alert per key per cooldown)."""
        return f"{self.label}|{self.scope}"

    def describe(self) -> str:
        if self.min_exchanges is not None:
            return f"at least {self.min_exchanges} exchanges in the window"
        test = self.effective_test
        if test == "psi":
            return f"PSI of {self.metric} <= {self.max:g}"
        if test in ("chi2", "ks", "ztest", "mmd"):
            return f"{test} p-value of {self.metric} >= {self.max_p:g}"
        if test == "cusum":
            return f"CUSUM of {self.metric} ({self.cusum_direction}) <= h={self.cusum_h:g}"
        bounds = [
            f">= {self.min:g}" if self.min is not None else "",
            f"<= {self.max:g}" if self.max is not None else "",
        ]
        return f"{self.metric} {' and '.join(b for b in bounds if b)}"

    @property
    def cusum_h(self) -> float:
        return self.h if self.h is not None else 5.0

    @property
    def cusum_k(self) -> float:
        return self.k if self.k is not None else 0.5

    @property
    def cusum_direction(self) -> str:
        return self.direction or "down"  # scores: a drop is what hurts

    @property
    def ztest_direction(self) -> str:
        return self.direction or "up"  # refusal and error rates: a rise is what hurts


class Retrain(BaseModel):
    """What ``action: retrain`` does (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    output_dir: str = Field(min_length=1)
    command: str | None = None
    job_manifest: str | None = None
    below: float | None = None
    heldout: float = Field(default=0.1, ge=0, le=0.9)
    dry_run: bool = False

    @model_validator(mode="after")
    def _runs_something(self) -> Retrain:
        if self.command is None and self.job_manifest is None:
            raise ValueError("retrain sets command (a command line) or job_manifest (a Kubernetes Job)")
        return self


class RetentionPolicy(BaseModel):
    """How long ``monitor check`` keeps production records (each round prunes what is older; the
    same as ``medops store prune``): exchanges, score rows, and the runs canary rounds and online
    grading made. A key left out is kept for ever."""

    model_config = ConfigDict(extra="forbid")
    exchanges: str | None = None
    scores: str | None = None
    canary_runs: str | None = None
    online_runs: str | None = None

    _durations = field_validator("exchanges", "scores", "canary_runs", "online_runs")(_duration_field)

    def limits(self) -> dict[str, timedelta]:
        return {k: parse_duration(v) for k, v in self.model_dump().items() if v is not None}


class MonitorPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window: str = "1h"
    reference: str = "7d"
    cooldown: str = "1h"
    arm: str | None = "primary"  # exchange metrics watch this arm (null: every arm); production = primary
    min_samples: int = Field(default=20, ge=1)
    embedding_model: str | None = None  # local:smollm2 or hf:<directory>, for prompt_embedding rules
    webhooks: list[Webhook] = []
    rules: list[MonitorRule] = Field(min_length=1)
    retrain: Retrain | None = None
    retention: RetentionPolicy | None = None

    _durations = field_validator("window", "reference", "cooldown")(_duration_field)
    _arm = field_validator("arm")(_arm_field)

    @model_validator(mode="after")
    def _keeps_what_rules_read(self) -> MonitorPolicy:
        """Exchanges must be kept as long as the longest window plus its reference, or drift
        rules would compare against a reference that retention has emptied."""
        kept = (self.retention.limits() if self.retention else {}).get("exchanges")
        if kept is not None:
            needed = max(self.window_of(r) + self.reference_of(r) for r in self.rules)
            if kept < needed:
                raise ValueError(
                    f"retention.exchanges ({self.retention.exchanges}) is shorter than the rules read: "
                    f"window plus reference need {needed.days}d {needed.seconds // 3600}h of exchanges"
                )
        return self

    @model_validator(mode="after")
    def _unique(self) -> MonitorPolicy:
        names = [w.name for w in self.webhooks]
        if len(set(names)) != len(names):
            raise ValueError("webhook names must be unique")
        keys = [r.key for r in self.rules]
        duplicate = next((k for k in keys if keys.count(k) > 1), None)
        if duplicate:
            raise ValueError(f"two rules share the name and scope {duplicate!r}; give one a name")
        if self.embedding_model is None and any(r.metric in EMBEDDING for r in self.rules):
            raise ValueError("prompt_embedding rules need embedding_model (e.g. local:smollm2 or hf:<directory>)")
        for rule in self.rules:
            if rule.action != "retrain":
                continue
            if self.retrain is None:
                raise ValueError(f"rule {rule.label} has action retrain: the policy needs a retrain section")
            online_min = (rule.metric or "").startswith("online:") and rule.min is not None
            if self.retrain.below is None and not online_min:
                raise ValueError(
                    f"rule {rule.label} has action retrain: set retrain.below (the score below which a "
                    "conversation is trained on), or give the rule an online: metric with min"
                )
        return self

    def retrain_below(self, rule: MonitorRule) -> float:
        """The score below which a conversation of the alert's window goes into the training set."""
        assert self.retrain is not None
        below = self.retrain.below if self.retrain.below is not None else rule.min
        assert below is not None  # checked when the policy was read
        return below

    def window_of(self, rule: MonitorRule) -> timedelta:
        return parse_duration(rule.window or self.window)

    def reference_of(self, rule: MonitorRule) -> timedelta:
        return parse_duration(rule.reference or self.reference)

    def cooldown_of(self, rule: MonitorRule) -> timedelta:
        return parse_duration(rule.cooldown or self.cooldown)

    def arm_of(self, rule: MonitorRule) -> str | None:
        return rule.arm if rule.arm is not None else self.arm


def load_monitor_policy(path: Path) -> MonitorPolicy:
    """Read and validate a monitor policy; UserError in one line naming the file and the field."""
    return read_policy(path, MonitorPolicy)
