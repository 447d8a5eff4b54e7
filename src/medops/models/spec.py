"""Model specs: ``backend:name`` strings plus the connection settings that go with them.

A spec is what a run records: it never holds a secret, only the *name* of the environment
variable the key is read from. Credentials in a base URL (``https://user:token@host/v1``) are
masked wherever the URL is stored, shown or logged (``mask_url_credentials``).
"""

from __future__ import annotations

import base64
import importlib
import os
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from medops.errors import UserError
from medops.models.backends import BACKENDS, backend_for
from medops.models.base import Capabilities, RetryPolicy

if TYPE_CHECKING:
    from medops.models.base import ChatModel

MASK = "***"


class ModelSpec(BaseModel):
    """A model as a run records it (``model`` and ``grader`` in a run's config)."""

    model_config = ConfigDict(frozen=True)

    backend: str
    name: str
    base_url: str | None = None
    api_key_env: str | None = None
    options: dict[str, str] = Field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.backend}:{self.name}"

    @property
    def capabilities(self) -> Capabilities:
        """What its model can do, answered from the registry (and for ``hf:``, the checkpoint's
        config) without building the model."""
        return backend_for(self.backend).capabilities_of(self)

    @field_serializer("base_url")
    def _stored_masked(self, url: str | None) -> str | None:  # a run records no secret
        return mask_url_credentials(url)


def parse_model_spec(
    text: str, *, base_url: str | None = None, api_key_env: str | None = None, what: str = "--model"
) -> ModelSpec:
    """Parse ``backend:name[,key=value...]`` (e.g. ``openai:gpt-4.1``)."""
    backend_name, sep, rest = text.partition(":")
    if not sep or not rest:
        raise UserError(f"{what} '{text}': expected BACKEND:NAME, e.g. openai:gpt-4.1 ({'/'.join(BACKENDS)})")
    if backend_name not in BACKENDS:
        raise UserError(f"{what} '{text}': unknown backend '{backend_name}'; known: {', '.join(BACKENDS)}")
    name, *option_parts = rest.split(",")
    options: dict[str, str] = {}
    for part in option_parts:
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise UserError(f"{what} '{text}': option '{part}' is not key=value")
        options[key.strip()] = value.strip()
    return ModelSpec(backend=backend_name, name=name, base_url=base_url, api_key_env=api_key_env, options=options)


def _userinfo(url: str) -> tuple[str | None, str]:
    """(``user[:password]`` or None, ``host[:port]``) of an URL's authority."""
    netloc = urlsplit(url).netloc
    userinfo, at, hostport = netloc.rpartition("@")
    return (userinfo if at else None), hostport


def mask_url_credentials(url: str | None) -> str | None:
    """``https://user:token@host/v1`` -> ``https://user:***@host/v1``; a user alone is often a
    token itself, so ``https://token@host`` -> ``https://***@host``. Other URLs are unchanged."""
    if not url:
        return url
    userinfo, hostport = _userinfo(url)
    if userinfo is None:
        return url
    user, colon, _ = userinfo.partition(":")
    shown = f"{user}:{MASK}" if colon and user else MASK
    return urlunsplit(urlsplit(url)._replace(netloc=f"{shown}@{hostport}"))


def split_url_credentials(url: str) -> tuple[str, str | None, tuple[str, ...]]:
    """(URL without credentials, ``Basic ...`` Authorization value, the secrets to redact from
    what servers send back). HTTP clients get the credentials as a header, never in the URL,
    so no connection error can carry them."""
    userinfo, hostport = _userinfo(url)
    if userinfo is None:
        return url, None, ()
    user, _, password = (unquote(part) for part in userinfo.partition(":"))
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return urlunsplit(urlsplit(url)._replace(netloc=hostport)), f"Basic {token}", (password or user, token)


def unmask_base_url(url: str, role: str) -> str:
    """The full URL for a base URL stored masked (a resumed run): taken from
    ``MEDOPS_<ROLE>_BASE_URL`` or ``OPENAI_BASE_URL`` when its masked form is the stored one."""
    userinfo, _ = _userinfo(url)
    if userinfo is None or MASK not in userinfo.split(":"):
        return url
    variable = f"MEDOPS_{role.upper()}_BASE_URL"
    for candidate in (os.environ.get(variable), os.environ.get("OPENAI_BASE_URL")):
        if candidate and candidate != url and mask_url_credentials(candidate) == url:
            return candidate
    raise UserError(
        f"{role}: base URL {url} carried credentials, which medops never stores; "
        f"to resume, set {variable} to the full URL"
    )


def create_model(spec: ModelSpec, *, role: str, concurrency: int, retry: RetryPolicy, batch_size: int = 8) -> ChatModel:
    """Build the model a spec names; its backend's module is imported only now."""
    module, _, function = backend_for(spec.backend).create.partition(":")
    create = getattr(importlib.import_module(module), function)
    return create(spec, role=role, concurrency=concurrency, retry=retry, batch_size=batch_size)
