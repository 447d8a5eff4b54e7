"""The backend registry: what each ``backend:`` can do, and how to build its model.

Callers ask a spec or a model what it can do (``spec.capabilities.in_process``) instead of
testing backend names. A new backend is its own module, with a ``create`` function of the
signature ``spec.create_model`` calls, plus one ``register(...)`` line at the end of this file.
The module is imported only when a model is built, so asking what a backend can do never loads
torch or an SDK.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, fields

from medops.errors import UserError
from medops.models.base import Capabilities  # defined below the registry: a model's protocol names it too


@dataclass(frozen=True)
class Backend:
    name: str
    capabilities: Capabilities
    create: str  # "module:function", called as function(spec, role=, concurrency=, retry=, batch_size=)
    # "module:function", called as function(spec, capabilities) -> Capabilities: what one spec's model
    # can do beyond its backend's (an hf: checkpoint that is a vision-language model takes images)
    refine: str | None = None

    def capabilities_of(self, spec: object) -> Capabilities:
        if self.refine is None:
            return self.capabilities
        module, _, function = self.refine.partition(":")
        return getattr(importlib.import_module(module), function)(spec, self.capabilities)


BACKENDS: dict[str, Backend] = {}


def register(name: str, capabilities: Capabilities, create: str, refine: str | None = None) -> None:
    BACKENDS[name] = Backend(name, capabilities, create, refine)


def backend_for(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise UserError(f"unknown backend '{name}'; known: {', '.join(BACKENDS)}") from None


def backends_with(capability: str) -> list[str]:
    """Names of the backends that have ``capability`` (for messages such as "local:, hf:")."""
    if capability not in {f.name for f in fields(Capabilities)}:
        raise ValueError(f"no capability '{capability}'")
    return [name for name, b in BACKENDS.items() if getattr(b.capabilities, capability)]


register("openai", Capabilities(logprobs=True, priced=True, images=True), "medops.models.openai_chat:create")
register("local", Capabilities(in_process=True, choice_scoring=True), "medops.models.local_hf:create")
register(
    "hf",
    Capabilities(in_process=True, choice_scoring=True),
    "medops.models.local_vlm:create",
    refine="medops.models.hf_kind:capabilities",
)
