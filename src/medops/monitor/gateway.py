"""``medops gateway``: an OpenAI-compatible reverse proxy that records production traffic.

The ASGI app (Starlette, served by uvicorn) forwards ``/v1/*`` to the upstream through one pooled
``aiohttp.ClientSession`` (``httpx.AsyncClient`` was measured first: its connection pool added
about 0.5 s at the median and 5 s at p99 under 100 concurrent clients; docs/PERFORMANCE.md).
Chat completions are passed through as the upstream sends them: a plain
answer as its bytes, a streamed one (server-sent events) chunk by chunk as each arrives. The
gateway only *watches* the chunks (arrival times, to find the first token) and reads them once
the answer is complete, for usage, finish reason and text. Then it observes the metrics and
hands the exchange to the ``Recorder`` (a non-blocking put): the PHI policy and the store write
happen in the recorder's thread, never on a request.

Headers: the client's ``Authorization`` goes to the upstream (or ``--upstream-key-env``'s key);
``X-Medops-Department``, ``X-Medops-Application`` and ``X-Medops-Conversation`` are recorded and
not forwarded. With ``--api-key-env``, clients must present that key (``Authorization: Bearer``
or ``X-Medops-Key``). Keys are never logged or stored; an upstream's error body is returned to
the client but not stored (some servers echo the key in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import anyio
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from medops.monitor.metrics import CONTENT_TYPE_LATEST, GatewayMetrics
from medops.monitor.recorder import Recorder
from medops.monitor.routing import CONVERSATION_HEADER, Routing, conversation_key
from medops.store.schema import utcnow

CHAT_ROUTE = "/v1/chat/completions"
DEPARTMENT_HEADER = "x-medops-department"
APPLICATION_HEADER = "x-medops-application"
KEY_HEADER = "x-medops-key"
# Not forwarded: hop-by-hop headers, what the client library sets itself, and the gateway's own headers.
_REQUEST_DROP = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "accept-encoding",
        DEPARTMENT_HEADER,
        APPLICATION_HEADER,
        CONVERSATION_HEADER,
        KEY_HEADER,
    }
)
_RESPONSE_DROP = frozenset(
    {"content-length", "connection", "keep-alive", "transfer-encoding", "trailer", "upgrade", "date", "server"}
)
_OPERATIONS = {
    "chat/completions": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}
MAX_LABEL = 100


def upstream_base(url: str) -> str:
    """``http://host:8000/v1`` or ``http://host:8000`` -> ``http://host:8000`` (paths are kept whole)."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


@dataclass
class Exchange:
    """One request on its way through the gateway (what the recorder and the metrics get)."""

    started: float
    created_at: Any
    route: str
    model: str
    arm: str
    stream: bool
    payload: dict[str, Any] | None
    conversation_id: str | None = None
    department: str | None = None
    application: str | None = None
    pair_id: str | None = None
    status: int | None = None
    error: str | None = None
    error_type: str | None = None
    latency_s: float | None = None
    ttft_s: float | None = None
    body: bytes = b""
    chunks: list[tuple[int, float]] = field(default_factory=list)  # (bytes so far, perf_counter) per chunk


def _sse_events(body: bytes) -> list[tuple[int, dict[str, Any]]]:
    """The JSON ``data:`` events of a server-sent event stream, with the offset each one ends at."""
    events = []
    offset = 0
    for block in body.split(b"\n\n"):
        offset += len(block) + 2
        for line in block.split(b"\n"):
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if not data or data == b"[DONE]":
                continue
            with contextlib.suppress(ValueError):
                event = json.loads(data)
                if isinstance(event, dict):
                    events.append((offset, event))
    return events


def read_answer(ex: Exchange) -> dict[str, Any]:
    """Usage, finish reason, answered model and text of a finished exchange (plain or streamed);
    sets ``ex.ttft_s`` for a stream: the arrival of the chunk that held the first content."""
    found: dict[str, Any] = {}
    if not ex.body or ex.status is None or ex.status >= 400:
        return found
    if not ex.chunks:  # a plain answer
        try:
            answer = json.loads(ex.body)
        except ValueError:
            return found
        if not isinstance(answer, dict):
            return found
        choice = (answer.get("choices") or [{}])[0] or {}
        message = choice.get("message") or {}
        found["response"] = message.get("content") if isinstance(message.get("content"), str) else None
        found["finish_reason"] = choice.get("finish_reason")
        usage = answer.get("usage") or {}
        found["response_model"] = answer.get("model")
    else:
        parts: list[str] = []
        usage = {}
        finish = None
        model = None
        for end, event in _sse_events(ex.body):
            model = model or event.get("model")
            if isinstance(event.get("usage"), dict):
                usage = event["usage"]
            for choice in event.get("choices") or ():
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                content = (choice.get("delta") or {}).get("content")
                if isinstance(content, str) and content:
                    if ex.ttft_s is None:
                        arrived = next((t for size, t in ex.chunks if size >= end), ex.chunks[-1][1])
                        ex.ttft_s = arrived - ex.started
                    parts.append(content)
                finish = choice.get("finish_reason") or finish
        found["response"] = "".join(parts)
        found["finish_reason"] = finish
        found["response_model"] = model
    if isinstance(usage, dict):
        found["prompt_tokens"] = usage.get("prompt_tokens")
        found["completion_tokens"] = usage.get("completion_tokens")
    return found


class Gateway:
    """The proxy: ``Gateway(...).app()`` is the ASGI application."""

    def __init__(
        self,
        upstream: str,
        *,
        recorder: Recorder,
        metrics: GatewayMetrics | None = None,
        routing: Routing | None = None,
        api_key: str | None = None,
        upstream_key: str | None = None,
        timeout_s: float = 600.0,
        shadow_timeout_s: float = 60.0,
        max_connections: int = 1000,
        max_shadow_in_flight: int = 256,
    ):
        self.upstream = upstream_base(upstream)
        self.routing = routing or Routing()
        self.recorder = recorder
        self.metrics = metrics or recorder.metrics
        self.api_key = api_key
        self.upstream_auth = f"Bearer {upstream_key}" if upstream_key else None
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=10.0)
        self.shadow_timeout_s = shadow_timeout_s
        self.shadow_timeout = aiohttp.ClientTimeout(total=shadow_timeout_s, connect=min(10.0, shadow_timeout_s))
        self.max_connections = max_connections
        self.max_shadow = max_shadow_in_flight
        self.client: aiohttp.ClientSession | None = None
        self.shadow_client: aiohttp.ClientSession | None = None
        self._shadows: set[asyncio.Task[None]] = set()

    # lifecycle --------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.client = _session(self.max_connections, self.timeout)
        if self.routing.shadow:
            self.shadow_client = _session(self.max_shadow, self.shadow_timeout)
        if not self.recorder._thread.is_alive():
            self.recorder.start()
        try:
            yield
        finally:
            if self._shadows:
                await asyncio.wait(list(self._shadows), timeout=5.0)
            await self.client.close()
            if self.shadow_client is not None:
                await self.shadow_client.close()
            await anyio.to_thread.run_sync(self.recorder.close)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(CHAT_ROUTE, self.chat, methods=["POST"]),
                Route("/v1/{path:path}", self.passthrough, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
                Route("/metrics", self.metrics_endpoint, methods=["GET"]),
                Route("/healthz", self.health, methods=["GET"]),
            ],
            lifespan=self.lifespan,
        )

    # helpers ----------------------------------------------------------------------------------
    def _refused(self, request: Request) -> Response | None:
        """401 when the gateway has a key and the request does not present it."""
        if self.api_key is None:
            return None
        presented = request.headers.get(KEY_HEADER)
        if presented is None:
            auth = request.headers.get("authorization", "")
            presented = auth[7:] if auth[:7].lower() == "bearer " else ""
        if hmac.compare_digest(presented.encode(), self.api_key.encode()):
            return None
        return JSONResponse(
            {"error": {"message": "missing or wrong gateway key", "type": "invalid_request_error"}}, status_code=401
        )

    def _headers(self, request: Request) -> dict[str, str]:
        headers = {k: v for k, v in request.headers.items() if k not in _REQUEST_DROP}
        if self.upstream_auth is not None:
            headers["authorization"] = self.upstream_auth
        elif self.api_key is not None and request.headers.get(KEY_HEADER) is None:
            headers.pop("authorization", None)  # it carried the gateway's own key
        headers["accept-encoding"] = "identity"  # bytes pass through as they come, undecoded
        return headers

    @staticmethod
    def _response_headers(response: aiohttp.ClientResponse) -> dict[str, str]:
        return {k: v for k, v in response.headers.items() if k.lower() not in _RESPONSE_DROP}

    def _base_for(self, arm: str) -> str:
        if arm == "candidate" and self.routing.candidate:
            return upstream_base(self.routing.candidate)
        return self.upstream

    # endpoints --------------------------------------------------------------------------------
    async def health(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok", "store": "unavailable" if self.recorder.store_error else "ok"})

    async def metrics_endpoint(self, _request: Request) -> Response:
        self.metrics.queue_depth.set(self.recorder.queue.qsize())
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def passthrough(self, request: Request) -> Response:
        """Any other ``/v1/...`` call (models, embeddings, ...): forwarded as is, counted, not recorded."""
        refused = self._refused(request)
        if refused is not None:
            return refused
        assert self.client is not None
        path = request.url.path
        operation = _OPERATIONS.get(path[len("/v1/") :], path[len("/v1/") :][:MAX_LABEL])
        started = time.perf_counter()
        url = self.upstream + path + (f"?{request.url.query}" if request.url.query else "")
        try:
            async with self.client.request(
                request.method, url, data=await request.body(), headers=self._headers(request)
            ) as response:
                content = await response.read()
        except UPSTREAM_ERRORS as exc:
            self.metrics.observe_request(
                "", operation, "primary", 502, time.perf_counter() - started, type(exc).__name__
            )
            return _upstream_error(exc)
        error = str(response.status) if response.status >= 400 else None
        self.metrics.observe_request("", operation, "primary", response.status, time.perf_counter() - started, error)
        return Response(content, status_code=response.status, headers=self._response_headers(response))

    async def chat(self, request: Request) -> Response:
        started = time.perf_counter()
        refused = self._refused(request)
        if refused is not None:
            return refused
        assert self.client is not None
        body = await request.body()
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            payload = None
        headers = request.headers
        key = conversation_key(headers.get(CONVERSATION_HEADER), payload or {})
        arm = self.routing.arm(key)
        model = payload.get("model") if payload else None
        ex = Exchange(
            started=started,
            created_at=utcnow(),
            route=CHAT_ROUTE,
            model=str(model)[:MAX_LABEL] if model is not None else "",
            arm=arm,
            stream=bool(payload and payload.get("stream")),
            payload=payload,
            conversation_id=key[:200],
            department=(headers.get(DEPARTMENT_HEADER) or None),
            application=(headers.get(APPLICATION_HEADER) or None),
        )
        forward = self._headers(request)
        if self.routing.shadow:
            ex.pair_id = uuid.uuid4().hex
            self._shadow(body, forward, ex)
        upstream_url = self._base_for(arm) + CHAT_ROUTE
        try:
            response = await self.client.post(upstream_url, data=body, headers=forward)
        except UPSTREAM_ERRORS as exc:
            ex.error = f"upstream unreachable: {type(exc).__name__}"
            ex.error_type = type(exc).__name__
            ex.latency_s = time.perf_counter() - started
            self._finish(ex, returned=502)
            return _upstream_error(exc)
        ex.status = response.status
        out_headers = self._response_headers(response)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return StreamingResponse(self._relay(response, ex), status_code=response.status, headers=out_headers)
        try:
            ex.body = await response.read()
        except UPSTREAM_ERRORS as exc:
            ex.error = f"upstream broke off: {type(exc).__name__}"
            ex.error_type = type(exc).__name__
            ex.latency_s = time.perf_counter() - started
            self._finish(ex, returned=502)
            return _upstream_error(exc)
        finally:
            response.release()
        ex.latency_s = time.perf_counter() - started
        return Response(
            ex.body, status_code=response.status, headers=out_headers, background=BackgroundTask(self._finish, ex)
        )

    async def _relay(self, response: aiohttp.ClientResponse, ex: Exchange) -> AsyncIterator[bytes]:
        """The upstream's stream, each chunk yielded as it arrives; read and recorded at the end."""
        received = bytearray()
        try:
            async for chunk in response.content.iter_any():
                received += chunk
                ex.chunks.append((len(received), time.perf_counter()))
                yield chunk
        except UPSTREAM_ERRORS as exc:
            ex.error = f"upstream stream broke off: {type(exc).__name__}"
            ex.error_type = type(exc).__name__
        except BaseException:
            ex.error = "client disconnected"
            ex.error_type = "client_disconnected"
            raise
        finally:
            ex.latency_s = time.perf_counter() - ex.started
            ex.body = bytes(received)
            if ex.error is None:
                response.release()
            else:  # broken off: the connection is not reused
                response.close()
            self._finish(ex)

    def _finish(self, ex: Exchange, returned: int | None = None) -> None:
        """Metrics, then the exchange to the recorder. Never raises."""
        try:
            found = read_answer(ex)
            status = returned if returned is not None else (ex.status or 502)
            if ex.error_type is None and ex.status is not None and ex.status >= 400:
                ex.error_type = str(ex.status)
                ex.error = f"upstream answered {ex.status}"
            if ex.arm != "shadow":
                self.metrics.observe_request(ex.model, "chat", ex.arm, status, ex.latency_s or 0.0, ex.error_type)
                if ex.ttft_s is not None:
                    self.metrics.ttft.labels(ex.model, "chat", ex.arm).observe(ex.ttft_s)
                self.metrics.observe_usage(ex.model, ex.arm, found.get("prompt_tokens"), found.get("completion_tokens"))
            payload = ex.payload or {}
            messages = payload.get("messages")
            self.recorder.submit(
                {
                    "created_at": ex.created_at,
                    "source": "gateway",
                    "route": ex.route,
                    "model": ex.model or None,
                    "response_model": _text(found.get("response_model"), 200),
                    "arm": ex.arm,
                    "pair_id": ex.pair_id,
                    "conversation_id": ex.conversation_id,
                    "department": _text(ex.department, 200),
                    "application": _text(ex.application, 200),
                    "stream": ex.stream,
                    "status": ex.status,
                    "error": ex.error,
                    "latency_s": ex.latency_s,
                    "ttft_s": ex.ttft_s,
                    "prompt_tokens": _int(found.get("prompt_tokens")),
                    "completion_tokens": _int(found.get("completion_tokens")),
                    "finish_reason": _text(found.get("finish_reason"), 40),
                    "messages": messages if isinstance(messages, list) else None,
                    "response": found.get("response"),
                }
            )
        except Exception:  # recording must never fail a request
            self.recorder._drop("error", 1)

    # shadow -----------------------------------------------------------------------------------
    def _shadow(self, body: bytes, headers: dict[str, str], primary: Exchange) -> None:
        if len(self._shadows) >= self.max_shadow:
            self.metrics.shadow_dropped.inc()
            return
        copy = Exchange(
            started=time.perf_counter(),
            created_at=utcnow(),
            route=primary.route,
            model=primary.model,
            arm="shadow",
            stream=primary.stream,
            payload=primary.payload,
            conversation_id=primary.conversation_id,
            department=primary.department,
            application=primary.application,
            pair_id=primary.pair_id,
        )
        task = asyncio.get_running_loop().create_task(self._shadow_call(body, headers, copy))
        self._shadows.add(task)
        self.metrics.shadow_in_flight.inc()
        task.add_done_callback(self._shadow_done)

    def _shadow_done(self, task: asyncio.Task[None]) -> None:
        self._shadows.discard(task)
        self.metrics.shadow_in_flight.dec()

    async def _shadow_call(self, body: bytes, headers: dict[str, str], ex: Exchange) -> None:
        assert self.shadow_client is not None and self.routing.shadow
        url = upstream_base(self.routing.shadow) + CHAT_ROUTE
        received = bytearray()
        try:
            with anyio.fail_after(self.shadow_timeout_s):
                await self._shadow_read(url, body, headers, ex, received)
        except Exception as exc:  # a timeout, a refused connection: recorded, never raised
            ex.error = f"shadow failed: {type(exc).__name__}"
            ex.error_type = type(exc).__name__
        ex.latency_s = time.perf_counter() - ex.started
        ex.body = bytes(received)
        self._finish(ex)

    async def _shadow_read(
        self, url: str, body: bytes, headers: dict[str, str], ex: Exchange, received: bytearray
    ) -> None:
        assert self.shadow_client is not None
        async with self.shadow_client.post(url, data=body, headers=headers) as response:
            ex.status = response.status
            streamed = response.headers.get("content-type", "").startswith("text/event-stream")
            async for chunk in response.content.iter_any():
                received += chunk
                if streamed:
                    ex.chunks.append((len(received), time.perf_counter()))


UPSTREAM_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


def _session(limit: int, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientSession:
    """A pooled session to the upstreams: bytes as sent (no decompression), no proxies from the environment."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0, keepalive_timeout=60),
        timeout=timeout,
        auto_decompress=False,
        trust_env=False,
        skip_auto_headers=("User-Agent",),
    )


def _upstream_error(exc: BaseException) -> Response:
    status = 504 if isinstance(exc, asyncio.TimeoutError) else 502
    return JSONResponse(
        {"error": {"message": f"medops gateway: upstream {type(exc).__name__}", "type": "upstream_error"}},
        status_code=status,
    )


def _text(value: Any, size: int) -> str | None:
    return str(value)[:size] if value is not None else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
