"""Any OpenAI-compatible chat endpoint (OpenAI, Azure OpenAI, vLLM, Ollama, TGI, llama.cpp...).

Retries are ours, not the SDK's: we must see each 429 to lower the concurrency, honour
``Retry-After``, and count every attempt. The SDK runs on its aiohttp transport, which costs
about half the client CPU per call of the default httpx one (see docs/PERFORMANCE.md).
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from dataclasses import dataclass
from typing import Any

import openai

from medops.errors import UserError
from medops.models.base import Completion, FatalModelError, Messages, SamplingParams
from medops.models.limiter import AdaptiveLimiter
from medops.models.spec import ModelSpec

_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_FATAL_STATUS = {401, 403, 404}


@dataclass(frozen=True)
class RetryPolicy:
    max_tries: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    timeout_s: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: attempt 1 waits ~base, then doubles, capped."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


def retry_after_seconds(headers: Any) -> float | None:
    """Read ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def resolve_api_key(spec: ModelSpec, role: str) -> str:
    """The key comes from the environment only; a local endpoint may need none."""
    env_name = spec.api_key_env or "OPENAI_API_KEY"
    key = os.environ.get(env_name)
    if key:
        return key
    if spec.api_key_env:
        raise UserError(f"{role}: environment variable {env_name} (named by --{role}-api-key-env) is not set")
    if spec.base_url or os.environ.get("OPENAI_BASE_URL"):
        return "not-needed"  # vLLM, Ollama, llama.cpp servers usually take no key
    raise UserError(f"{role}: set OPENAI_API_KEY, or --{role}-base-url for a local OpenAI-compatible server")


class OpenAIChatModel:
    def __init__(self, spec: ModelSpec, *, role: str, concurrency: int, retry: RetryPolicy):
        self.spec = spec
        self.label = str(spec)
        self._api_key = resolve_api_key(spec, role)
        self._base_url = spec.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self._retry = retry
        self.limiter = AdaptiveLimiter(concurrency)
        self._client = openai.AsyncOpenAI(
            api_key=self._api_key,
            base_url=self._base_url,
            max_retries=0,
            timeout=retry.timeout_s,
            http_client=openai.DefaultAioHttpClient(timeout=retry.timeout_s),
        )

    def identity(self) -> dict[str, Any]:
        return {"endpoint": self._base_url, "model": self.spec.name}

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if len(self._api_key) >= 8 else text

    async def complete(self, messages: Messages, params: SamplingParams) -> Completion:
        started = time.perf_counter()
        last_error = "no attempt made"
        for attempt in range(1, self._retry.max_tries + 1):
            wait: float | None = None
            async with self.limiter:
                try:
                    response = await self._client.chat.completions.create(
                        model=self.spec.name, messages=messages, **params.to_request()
                    )
                except openai.APIStatusError as exc:
                    last_error = self._redact(f"HTTP {exc.status_code}: {exc.message}")
                    if exc.status_code in _FATAL_STATUS:
                        raise FatalModelError(f"{self.label} at {self._base_url}: {last_error}") from None
                    if exc.status_code not in _RETRYABLE_STATUS:
                        return self._failed(last_error, attempt, started)
                    if exc.status_code == 429:
                        self.limiter.on_throttled()
                    wait = retry_after_seconds(exc.response.headers)
                except openai.APITimeoutError:
                    last_error = f"timed out after {self._retry.timeout_s:g}s"
                except openai.APIConnectionError as exc:
                    last_error = self._redact(f"connection error: {exc.__cause__ or exc}")
                else:
                    self.limiter.on_success()
                    return self._completed(response, attempt, started)
            if attempt < self._retry.max_tries:
                await asyncio.sleep(wait if wait is not None else self._retry.backoff(attempt))
        return self._failed(
            f"{last_error} (gave up after {self._retry.max_tries} tries)", self._retry.max_tries, started
        )

    @staticmethod
    def _completed(response: Any, attempts: int, started: float) -> Completion:
        choice = response.choices[0] if response.choices else None
        usage = response.usage
        return Completion(
            text=(choice.message.content or "") if choice else "",
            finish_reason=choice.finish_reason if choice else None,
            prompt_tokens=(usage.prompt_tokens or 0) if usage else 0,
            completion_tokens=(usage.completion_tokens or 0) if usage else 0,
            latency_s=time.perf_counter() - started,
            calls=attempts,
        )

    @staticmethod
    def _failed(error: str, attempts: int, started: float) -> Completion:
        return Completion(text=None, error=error, calls=attempts, latency_s=time.perf_counter() - started)

    async def aclose(self) -> None:
        await self._client.close()
