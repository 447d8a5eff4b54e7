"""Model specs: ``backend:name`` strings plus the connection settings that go with them.

A spec is what a run records: it never holds a secret, only the *name* of the environment
variable the key is read from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from medops.errors import UserError

KNOWN_BACKENDS = ("openai", "local", "hf")


@dataclass(frozen=True)
class ModelSpec:
    backend: str
    name: str
    base_url: str | None = None
    api_key_env: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.backend}:{self.name}"

    def to_record(self) -> dict:
        return asdict(self)


def parse_model_spec(
    text: str, *, base_url: str | None = None, api_key_env: str | None = None, what: str = "--model"
) -> ModelSpec:
    """Parse ``backend:name[,key=value...]`` (e.g. ``openai:gpt-4.1``)."""
    backend, sep, rest = text.partition(":")
    if not sep or not rest:
        raise UserError(f"{what} '{text}': expected BACKEND:NAME, e.g. openai:gpt-4.1 ({'/'.join(KNOWN_BACKENDS)})")
    if backend not in KNOWN_BACKENDS:
        raise UserError(f"{what} '{text}': unknown backend '{backend}'; known: {', '.join(KNOWN_BACKENDS)}")
    name, *option_parts = rest.split(",")
    options: dict[str, str] = {}
    for part in option_parts:
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise UserError(f"{what} '{text}': option '{part}' is not key=value")
        options[key.strip()] = value.strip()
    return ModelSpec(backend, name, base_url, api_key_env, options)
