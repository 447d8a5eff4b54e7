"""Deployment targets: a model served at an endpoint, in a role (production, candidate, shadow, canary).

The one description every part that talks to a deployed model reads: the gateway's ``--upstream``,
``--candidate`` and ``--shadow`` (``gateway_targets``), ``medops monitor canary`` and the
dashboard's canary rounds (the endpoint a round evaluates), and monitor policies (the arm a rule
watches: a role, or the arm name traffic is recorded under). Like a model spec, a target holds the
*name* of the environment variable its key is read from, never the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Literal

from medops.errors import UserError
from medops.models.spec import ModelSpec, parse_model_spec

Role = Literal["production", "candidate", "shadow", "canary"]
ROLES: tuple[Role, ...] = ("production", "candidate", "shadow", "canary")
# The arm an exchange is recorded under, by the role of the target that answered it (the names
# stored with exchanges and in score tags such as ``arm:candidate``). A canary answers no traffic.
ARM_OF_ROLE: dict[str, str] = {"production": "primary", "candidate": "candidate", "shadow": "shadow"}
ARMS: tuple[str, ...] = tuple(ARM_OF_ROLE.values())


@dataclass(frozen=True)
class Target:
    """Where a model is served and what it is there for.

    ``source`` names where the endpoint came from (``--upstream``, ``--model-base-url``, a form
    field) for messages; an endpoint must be an http(s) URL."""

    role: Role
    endpoint: str | None = None  # OpenAI-compatible base URL; None: the backend's default (or in process)
    model: str | None = None  # backend:name (a canary's); the gateway forwards whatever model clients ask for
    api_key_env: str | None = None
    source: str = "endpoint"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise UserError(f"unknown target role '{self.role}' (known: {', '.join(ROLES)})")
        if self.endpoint and not re.match(r"^https?://", self.endpoint.strip()):
            raise UserError(f"{self.source} must be an http(s) URL, not '{self.endpoint}'")

    @property
    def arm(self) -> str | None:
        """The arm its traffic is recorded under (None for a canary, which answers no traffic)."""
        return ARM_OF_ROLE.get(self.role)

    @property
    def endpoint_key(self) -> str | None:
        """The endpoint as compared with a list of allowed ones (no surrounding space, no final ``/``)."""
        return self.endpoint.strip().rstrip("/") if self.endpoint else None

    def api_key(self, named_by: str = "api_key_env") -> str | None:
        """The key from the environment (None when the target names no variable); ``named_by`` is
        the flag or field that named the variable, for the message when it is unset."""
        if not self.api_key_env:
            return None
        value = os.environ.get(self.api_key_env)
        if not value:
            raise UserError(f"{named_by} {self.api_key_env}: the variable is not set")
        return value

    def spec(self, what: str = "--model") -> ModelSpec:
        """The model spec a run against this target records (``model`` must be set)."""
        if not self.model:
            raise UserError(f"{what}: a {self.role} target needs a model, e.g. openai:our-model")
        return parse_model_spec(self.model, base_url=self.endpoint, api_key_env=self.api_key_env, what=what)

    def model_options(self) -> dict[str, Any]:
        """The run options naming this target's model (``model``, ``model_base_url``, ``model_api_key_env``)."""
        return {"model": self.model, "model_base_url": self.endpoint, "model_api_key_env": self.api_key_env}


def gateway_targets(
    upstream: str, *, candidate: str | None = None, shadow: str | None = None, upstream_key_env: str | None = None
) -> dict[str, Target]:
    """The gateway's targets by role from its flags: production (``--upstream``), and a candidate
    (``--candidate``, A/B) or a shadow (``--shadow``). The gateway sends ``--upstream-key-env``'s
    key to each of them."""
    if candidate and shadow:
        raise UserError("--candidate and --shadow are two ways to try a candidate: choose one")
    found = {"production": Target("production", upstream, api_key_env=upstream_key_env, source="--upstream")}
    if candidate:
        found["candidate"] = Target("candidate", candidate, api_key_env=upstream_key_env, source="--candidate")
    if shadow:
        found["shadow"] = Target("shadow", shadow, api_key_env=upstream_key_env, source="--shadow")
    return found


def canary_target(
    model: str, endpoint: str | None = None, api_key_env: str | None = None, *, source: str = "--model-base-url"
) -> Target:
    """The endpoint a canary round evaluates (``medops monitor canary``, the dashboard's rounds)."""
    return Target("canary", endpoint, model=model, api_key_env=api_key_env, source=source)


def arm_name(value: str) -> str:
    """A monitor policy's ``arm``: a role (``production``) or a recorded arm name (``primary``),
    as the arm name; ValueError naming both for anything else."""
    if value in ARMS:
        return value
    if value in ARM_OF_ROLE:
        return ARM_OF_ROLE[value]
    known = ", ".join(dict.fromkeys((*ARMS, *ARM_OF_ROLE)))
    raise ValueError(f"arm {value!r} is not a target's role or arm (known: {known})")
