"""Any OpenAI-compatible chat endpoint (OpenAI, Azure OpenAI, vLLM, Ollama, TGI, llama.cpp...).

Two transports share one retry loop:

* ``aiohttp`` (default): a lean JSON POST on a pooled aiohttp session. A full HealthBench run
  is ~57,000 calls and on a 2-core machine the client's CPU per call sets the pace: this
  costs ~0.5 ms per call where the SDK costs ~1.4 ms even on its own aiohttp transport
  (docs/PERFORMANCE.md), so only this meets the 1.5x-of-ideal wall-time floor.
* ``sdk``: the official ``openai`` async client (``openai:NAME,transport=sdk``), for endpoints
  that need what only the SDK knows (Azure OpenAI: ``openai:DEPLOYMENT,transport=azure,
  api_version=...``).

Retries are ours in both: we must see each 429 to lower the concurrency, honour
``Retry-After``, and count every attempt. A 429 is counted as a rejected attempt
(``Completion.rejected``), not as a call: the endpoint did no work and bills none.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from medops.errors import UserError
from medops.models.base import Completion, FatalModelError, Messages, RetryPolicy, SamplingParams
from medops.models.limiter import shared_limiter
from medops.models.spec import ModelSpec, mask_url_credentials, split_url_credentials, unmask_base_url

_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_FATAL_STATUS = {401, 403, 404}
TRANSPORTS = ("aiohttp", "sdk", "azure")
_encode = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(..., ensure_ascii=False), its encoder built once


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Read ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
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
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


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


class _TransportTimeout(Exception):
    pass


class _TransportConnectionError(Exception):
    pass


class _AiohttpTransport:
    def __init__(self, base_url: str, api_key: str, timeout_s: float, authorization: str | None = None):
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Authorization": authorization or f"Bearer {api_key}", "Content-Type": "application/json"}
        self._timeout_s = timeout_s
        self._session: Any = None
        self._target: Any = None

    async def post(self, body: dict[str, Any]) -> tuple[int, Mapping[str, str], bytes]:
        import aiohttp

        if self._session is None:  # created lazily: a session belongs to the running loop
            import yarl

            self._session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
                json_serialize=json.dumps,
            )
            self._target = yarl.URL(self._url)  # parsed once, not on every post
        try:
            async with self._session.post(self._target, data=_encode(body).encode()) as r:
                return r.status, r.headers, await r.read()
        except asyncio.TimeoutError:
            raise _TransportTimeout from None
        except aiohttp.ClientError as exc:
            raise _TransportConnectionError(str(exc)) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class _SdkTransport:
    """The official client; ``post`` with a bytes cast skips its per-call model building."""

    def __init__(
        self, spec: ModelSpec, base_url: str, api_key: str, timeout_s: float, azure: bool, authorization: str | None
    ):
        import openai

        self._openai = openai
        common: dict[str, Any] = {"api_key": api_key, "max_retries": 0, "timeout": timeout_s}
        if authorization:  # credentials from the base URL replace the bearer key
            common["default_headers"] = {"Authorization": authorization}
        if azure:
            self._client = openai.AsyncAzureOpenAI(
                azure_endpoint=base_url, api_version=spec.options.get("api_version", "2024-10-21"), **common
            )
            self._path = f"/deployments/{spec.name}/chat/completions"
        else:
            self._client = openai.AsyncOpenAI(
                base_url=base_url, http_client=openai.DefaultAioHttpClient(timeout=timeout_s), **common
            )
            self._path = "/chat/completions"

    async def post(self, body: dict[str, Any]) -> tuple[int, Mapping[str, str], bytes]:
        openai = self._openai
        try:
            return 200, {}, await self._client.post(self._path, body=body, cast_to=bytes)
        except openai.APIStatusError as exc:
            return exc.status_code, exc.response.headers, exc.response.content
        except openai.APITimeoutError:
            raise _TransportTimeout from None
        except openai.APIConnectionError as exc:
            raise _TransportConnectionError(str(exc.__cause__ or exc)) from None

    async def aclose(self) -> None:
        await self._client.close()


def _error_message(body: bytes) -> str:
    try:
        error = json.loads(body).get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return str(message)[:300] if message else body[:300].decode("utf-8", "replace")
    except (ValueError, AttributeError):
        return body[:300].decode("utf-8", "replace")


class OpenAIChatModel:
    def __init__(self, spec: ModelSpec, *, role: str, concurrency: int, retry: RetryPolicy):
        self.spec = spec
        self.label = str(spec)
        self.capabilities = spec.capabilities
        self._api_key = resolve_api_key(spec, role)
        base_url = spec.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        base_url = unmask_base_url(base_url, role)  # a resumed run stored it masked
        # Credentials in the URL travel as a Basic Authorization header; the URL that messages
        # and the cache identity show has them masked.
        url, authorization, url_secrets = split_url_credentials(base_url)
        self._secrets = (self._api_key, *url_secrets)
        self._base_url = mask_url_credentials(base_url)
        self._retry = retry
        self._refuses_logprobs = False  # learnt from a 400: optional logprobs are no longer asked for
        transport = spec.options.get("transport", "aiohttp")
        if transport not in TRANSPORTS:
            raise UserError(f"{role} '{spec}': transport must be one of {', '.join(TRANSPORTS)}")
        # One limiter per endpoint (URL, Azure deployment, credentials): a model and a grader
        # served by one server share its capacity, and --concurrency bounds them together.
        endpoint = (url, spec.name if transport == "azure" else None, authorization or self._api_key)
        self.limiter = shared_limiter(endpoint, concurrency)
        self._transport = (
            _AiohttpTransport(url, self._api_key, retry.timeout_s, authorization)
            if transport == "aiohttp"
            else _SdkTransport(spec, url, self._api_key, retry.timeout_s, transport == "azure", authorization)
        )

    def identity(self) -> dict[str, Any]:
        return {"endpoint": self._base_url, "model": self.spec.name}

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            if len(secret) >= 8:
                text = text.replace(secret, "***")
        return text

    async def complete(self, messages: Messages, params: SamplingParams) -> Completion:
        if params.score_choices or params.assistant_prefix:
            raise UserError(
                f"{self.label}: choice scoring and assistant prefixes need an in-process model (local:, hf:)"
            )
        if params.logprobs_optional and self._refuses_logprobs:
            params = replace(params, top_logprobs=None, logprobs_optional=None)
        started = time.perf_counter()
        # content parts (images as data: URIs) go on the wire as they are: the OpenAI chat format
        body = {"model": self.spec.name, "messages": messages, **params.to_request()}
        without_logprobs = False
        last_error = "no attempt made"
        rejected = 0  # 429s: attempts the endpoint refused, so not calls
        for attempt in range(1, self._retry.max_tries + 1):
            wait: float | None = None
            await self.limiter.acquire(front=attempt > 1)  # a retry has waited longest: it goes first
            try:
                status, headers, raw = await self._transport.post(body)
            except _TransportTimeout:
                last_error = f"timed out after {self._retry.timeout_s:g}s"
            except _TransportConnectionError as exc:
                last_error = self._redact(f"connection error: {exc}")
            else:
                if status == 200:
                    self.limiter.on_success()
                    try:
                        return _completion(raw, attempt - rejected, rejected, started)
                    except _UnusableReply as exc:  # retried like any transient failure, then failed
                        last_error = str(exc)
                else:
                    last_error = self._redact(f"HTTP {status}: {_error_message(raw)}")
                    if status in _FATAL_STATUS:
                        raise FatalModelError(f"{self.label} at {self._base_url}: {last_error}")
                    if status == 400 and params.logprobs_optional and "logprob" in last_error.lower():
                        without_logprobs = True  # asked again below, once the limiter's slot is released
                        break
                    if status not in _RETRYABLE_STATUS:
                        return _failed(last_error, attempt - rejected, rejected, started)
                    if status == 429:
                        rejected += 1
                        self.limiter.on_throttled()
                    wait = retry_after_seconds(headers)
            finally:
                self.limiter.release()
            if attempt < self._retry.max_tries:
                await asyncio.sleep(wait if wait is not None else self._retry.backoff(attempt))
        if without_logprobs:
            self._refuses_logprobs = True
            return await self.complete(messages, params)
        tries = self._retry.max_tries
        return _failed(f"{last_error} (gave up after {tries} tries)", tries - rejected, rejected, started)

    def stop(self) -> None:
        self.limiter.close()

    async def aclose(self) -> None:
        await self._transport.aclose()


class _UnusableReply(Exception):
    """A 200 whose body is not a usable completion (unreadable JSON, no choice, null content)."""


def _completion(raw: bytes, calls: int, rejected: int, started: float) -> Completion:
    """The completion in a 200 body. Null content is not an empty answer: it raises, so the call
    is retried and, if it never comes, recorded as failed (an empty string the model sent is kept)."""
    try:
        data = json.loads(raw)
        choice = (data.get("choices") or [None])[0] or {}
        content = (choice.get("message") or {}).get("content")
        usage = data.get("usage") or {}
    except (ValueError, AttributeError, TypeError, IndexError) as exc:
        raise _UnusableReply(f"unreadable response body ({exc})") from None
    if not isinstance(content, str):
        reason = choice.get("finish_reason")
        raise _UnusableReply(f"no message content in the reply (finish_reason {reason!r})")
    return Completion(
        text=content,
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens") or 0,
        completion_tokens=usage.get("completion_tokens") or 0,
        latency_s=time.perf_counter() - started,
        calls=calls,
        rejected=rejected,
        extra={"logprobs": choice["logprobs"]} if choice.get("logprobs") else {},
    )


def _failed(error: str, calls: int, rejected: int, started: float) -> Completion:
    return Completion(text=None, error=error, calls=calls, rejected=rejected, latency_s=time.perf_counter() - started)


def create(spec: ModelSpec, *, role: str, concurrency: int, retry: RetryPolicy, batch_size: int) -> OpenAIChatModel:
    """The ``openai`` backend (medops.models.backends)."""
    return OpenAIChatModel(spec, role=role, concurrency=concurrency, retry=retry)
