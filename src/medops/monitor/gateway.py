"""``medops gateway``: an OpenAI-compatible reverse proxy that records production traffic.

The ASGI app (served by uvicorn) forwards ``/v1/*`` to the upstream through one pooled
``aiohttp.ClientSession`` (``httpx.AsyncClient`` was measured first: its connection pool added
about 0.5 s at the median and 5 s at p99 under 100 concurrent clients; docs/PERFORMANCE.md).
``/v1`` calls are served as plain ASGI (Starlette only serves /metrics, /healthz and the
lifespan). The request's bytes go upstream as they came; chat completions come back as the
upstream sends them: a plain answer as its bytes, a streamed one (server-sent events) chunk by
chunk as each arrives. The gateway only *watches* the chunks (arrival times, to find the first
token); once the answer is sent it hands the exchange to the ``Recorder`` (a non-blocking put),
whose thread parses the request and the answer (usage, finish reason, text), counts them in the
metrics and applies the PHI policy before the store write: none of that runs on a request.

Headers: the client's ``Authorization`` goes to the upstream (or ``--upstream-key-env``'s key);
``X-Medops-Department``, ``X-Medops-Application`` and ``X-Medops-Conversation`` are recorded and
not forwarded. With ``--api-key-env``, clients must present that key (``Authorization: Bearer``
or ``X-Medops-Key``). Keys are never logged or stored; an upstream's error body is returned to
the client but not stored (some servers echo the key in it).

Limits and faults: a request body over ``--max-body-mb`` is refused with 413 as soon as its
``Content-Length`` (or, chunked, the bytes received so far) passes the limit, before the rest is
read; an upstream timeout is answered and counted 504, anything else that keeps the upstream
from answering 502; a chat answer of 200 that is not JSON (an HTML page from a proxy) is answered
502 and recorded as a failure; a stream that ends without a finish reason and ``[DONE]`` is
recorded as incomplete (the recorder's thread checks, off the request path).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hmac
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
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
_PASS_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"})
_REFUSED = {"error": {"message": "missing or wrong gateway key", "type": "invalid_request_error"}}
DEFAULT_MAX_BODY_MB = 16.0
# How long the recorder's thread may hold the interpreter lock while the event loop waits for it
# (Python's default is 5 ms, which a request waiting on the loop pays in full).
SWITCH_INTERVAL_S = 0.0005


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
    request: bytes = b""  # the request's body as the client sent it (parsed off the request path)
    overhead_s: float | None = None  # time spent in the gateway, not waiting on the upstream
    returned: int | None = None  # the status the client got
    admitted: bool = False  # holds room in the recorder (--record-overflow backpressure) until submitted


def _sse_events(body: bytes) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
    """The JSON ``data:`` events of a server-sent event stream, with the offset each one ends at,
    and whether the stream ended with ``data: [DONE]``."""
    events = []
    offset = 0
    done = False
    for block in body.split(b"\n\n"):
        offset += len(block) + 2
        for line in block.split(b"\n"):
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                done = True
            if not data or done:
                continue
            with contextlib.suppress(ValueError):
                event = json.loads(data)
                if isinstance(event, dict):
                    events.append((offset, event))
    return events, done


def read_answer(ex: Exchange) -> dict[str, Any]:
    """Usage, finish reason, answered model and text of a finished exchange (plain or streamed);
    sets ``ex.ttft_s`` for a stream: the arrival of the chunk that held the first content.
    ``fault`` (error type, error) when an answer of status < 400 is not a whole one: a plain answer
    that is not a JSON object, a stream without a finish reason or ``[DONE]``."""
    found: dict[str, Any] = {}
    if ex.status is None or ex.status >= 400:
        return found
    if not ex.chunks and not ex.stream:  # a plain answer
        try:
            answer = json.loads(ex.body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            found["fault"] = ("invalid_response", f"upstream answered {ex.status} with a body that is not JSON")
            return found
        choice = (answer.get("choices") or [{}])[0] or {}
        message = choice.get("message") or {}
        found["response"] = message.get("content") if isinstance(message.get("content"), str) else None
        if isinstance(message.get("tool_calls"), list):
            found["tool_calls"] = message["tool_calls"]
        found["finish_reason"] = choice.get("finish_reason")
        usage = answer.get("usage") or {}
        found["response_model"] = answer.get("model")
    else:
        parts: list[str] = []
        calls: dict[int, dict[str, Any]] = {}  # streamed tool calls, by index, their deltas joined
        usage = {}
        finish = None
        model = None
        events, done = _sse_events(ex.body)
        for end, event in events:
            model = model or event.get("model")
            if isinstance(event.get("usage"), dict):
                usage = event["usage"]
            for choice in event.get("choices") or ():
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                _join_tool_call_deltas(calls, delta.get("tool_calls"))
                content = delta.get("content")
                if isinstance(content, str) and content:
                    if ex.ttft_s is None:
                        arrived = next((t for size, t in ex.chunks if size >= end), ex.chunks[-1][1])
                        ex.ttft_s = arrived - ex.started
                    parts.append(content)
                finish = choice.get("finish_reason") or finish
        found["response"] = "".join(parts)
        if calls:
            found["tool_calls"] = [calls[i] for i in sorted(calls)]
        found["finish_reason"] = finish
        found["response_model"] = model
        if finish is None or not done:
            missing = " and ".join(name for name, seen in (("a finish reason", finish), ("[DONE]", done)) if not seen)
            found["fault"] = ("stream_incomplete", f"stream incomplete: it ended without {missing}")
    if isinstance(usage, dict):
        found["prompt_tokens"] = usage.get("prompt_tokens")
        found["completion_tokens"] = usage.get("completion_tokens")
    return found


def _join_tool_call_deltas(calls: dict[int, dict[str, Any]], deltas: Any) -> None:
    """Add one chunk's tool-call deltas: the id and name arrive once, the arguments in pieces."""
    for delta in deltas if isinstance(deltas, list) else ():
        if not isinstance(delta, dict):
            continue
        index = delta.get("index", 0) if isinstance(delta.get("index"), int) else 0
        call = calls.setdefault(index, {"type": "function", "function": {"name": "", "arguments": ""}})
        if isinstance(delta.get("id"), str):
            call["id"] = delta["id"]
        function = delta.get("function") if isinstance(delta.get("function"), dict) else {}
        for key in ("name", "arguments"):
            if isinstance(function.get(key), str):
                call["function"][key] += function[key]


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
        max_body_mb: float = DEFAULT_MAX_BODY_MB,
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
        self.max_body = int(max_body_mb * 2**20)
        self._too_large = {
            "error": {
                "message": f"medops gateway: the request body is over the limit of {max_body_mb:g} MB (--max-body-mb)",
                "type": "request_too_large",
            }
        }
        self.client: aiohttp.ClientSession | None = None
        self.shadow_client: aiohttp.ClientSession | None = None
        self._shadows: set[asyncio.Task[None]] = set()
        # the request's JSON is parsed before forwarding only when an A/B split needs its conversation key
        self._arm_needs_key = bool(self.routing.candidate and self.routing.split > 0)
        self._backpressure = recorder.overflow == "backpressure"

    # lifecycle --------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.client = _session(self.max_connections, self.timeout)
        if self.routing.shadow:
            self.shadow_client = _session(self.max_shadow, self.shadow_timeout)
        if not self.recorder._thread.is_alive():
            self.recorder.start()
        # Everything imported and built so far lives as long as the process: once the recorder has
        # opened the store, move it out of the collector's sight (gc.freeze), so that a full
        # collection walks only what requests allocate (measured: 40-110 ms pauses without it).
        await anyio.to_thread.run_sync(self.recorder.ready.wait, 30.0)
        gc.collect()
        gc.freeze()
        switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)  # the recorder thread yields the GIL to the loop sooner
        try:
            yield
        finally:
            sys.setswitchinterval(switch)
            if self._shadows:
                await asyncio.wait(list(self._shadows), timeout=5.0)
            await self.client.close()
            if self.shadow_client is not None:
                await self.shadow_client.close()
            await anyio.to_thread.run_sync(self.recorder.close)
            gc.unfreeze()

    def app(self) -> Any:
        """Chat completions and the other ``/v1`` calls are served as plain ASGI (no routing,
        middleware or request objects on the hot path); /metrics, /healthz, the lifespan and
        anything else go to a Starlette app."""
        rest = Starlette(
            routes=[
                Route("/metrics", self.metrics_endpoint, methods=["GET"]),
                Route("/healthz", self.health, methods=["GET"]),
            ],
            lifespan=self.lifespan,
        )

        in_flight = self.metrics.in_flight

        async def gateway_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                path = scope["path"]
                serve = None
                if path == CHAT_ROUTE and scope["method"] == "POST":
                    serve = self.chat
                elif path.startswith("/v1/") and scope["method"] in _PASS_METHODS:
                    serve = self.passthrough
                if serve is not None:
                    in_flight.inc()
                    try:
                        return await serve(scope, receive, send)
                    finally:
                        in_flight.dec()
            await rest(scope, receive, send)

        return gateway_app

    # helpers ----------------------------------------------------------------------------------
    def _refused(self, headers: dict[str, str]) -> bool:
        """True when the gateway has a key and the request does not present it."""
        if self.api_key is None:
            return False
        presented = headers.get(KEY_HEADER)
        if presented is None:
            auth = headers.get("authorization", "")
            presented = auth[7:] if auth[:7].lower() == "bearer " else ""
        return not hmac.compare_digest(presented.encode(), self.api_key.encode())

    def _forward(self, headers: dict[str, str]) -> dict[str, str]:
        """The headers sent upstream, from the client's (``headers`` is consumed)."""
        presented_key = headers.get(KEY_HEADER)
        for name in _REQUEST_DROP.intersection(headers):
            del headers[name]
        if self.upstream_auth is not None:
            headers["authorization"] = self.upstream_auth
        elif self.api_key is not None and presented_key is None:
            headers.pop("authorization", None)  # it carried the gateway's own key
        headers["accept-encoding"] = "identity"  # bytes pass through as they come, undecoded
        return headers

    async def _body(self, headers: dict[str, str], receive: Any) -> bytes | None:
        """The request's body, or None when it is over ``--max-body-mb``: refused on its declared
        length before any of it is read, or as soon as the chunks received pass the limit."""
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return None
        return await _read_body(receive, self.max_body)

    async def _refuse_body(self, send: Any, operation: str, started: float) -> None:
        self.metrics.observe_request("", operation, "primary", 413, time.perf_counter() - started, "request_too_large")
        await _send_json(send, 413, self._too_large)

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

    async def passthrough(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Any other ``/v1/...`` call (models, embeddings, ...): forwarded as is, counted, not recorded."""
        started = time.perf_counter()
        headers = _headers(scope)
        if self._refused(headers):
            return await _send_json(send, 401, _REFUSED)
        assert self.client is not None
        path = scope["path"]
        operation = _OPERATIONS.get(path[len("/v1/") :], path[len("/v1/") :][:MAX_LABEL])
        query = scope.get("query_string") or b""
        url = self.upstream + path + (f"?{query.decode('latin-1')}" if query else "")
        body = await self._body(headers, receive)
        if body is None:
            return await self._refuse_body(send, operation, started)
        try:
            async with self.client.request(scope["method"], url, data=body, headers=self._forward(headers)) as response:
                content = await response.read()
        except UPSTREAM_ERRORS as exc:
            self.metrics.observe_request(
                "", operation, "primary", _failed_status(exc), time.perf_counter() - started, type(exc).__name__
            )
            return await _send_upstream_error(send, exc)
        await _send_whole(send, response, content)
        error = str(response.status) if response.status >= 400 else None
        self.metrics.observe_request("", operation, "primary", response.status, time.perf_counter() - started, error)

    async def chat(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Forward the request's bytes as they came; answer with the upstream's bytes; then count
        the request and hand the exchange to the recorder, which parses what it stores."""
        started = time.perf_counter()
        headers = _headers(scope)
        if self._refused(headers):
            return await _send_json(send, 401, _REFUSED)
        assert self.client is not None
        body = await self._body(headers, receive)
        if body is None:
            return await self._refuse_body(send, "chat", started)
        conversation = headers.get(CONVERSATION_HEADER)
        arm = "primary"
        if self._arm_needs_key:  # A/B: the arm is the conversation's, so its key is needed now
            conversation = conversation_key(conversation, _payload(body) or {})
            arm = self.routing.arm(conversation)
        ex = Exchange(
            started=started,
            created_at=utcnow(),
            route=CHAT_ROUTE,
            model="",
            arm=arm,
            stream=False,
            payload=None,
            conversation_id=conversation,
            department=headers.get(DEPARTMENT_HEADER) or None,
            application=headers.get(APPLICATION_HEADER) or None,
            request=body,
        )
        if not self._backpressure:
            return await self._serve(ex, headers, receive, send)
        await self.recorder.admit()  # --record-overflow backpressure: room to record it, before serving
        ex.admitted = True
        try:
            return await self._serve(ex, headers, receive, send)
        finally:
            if ex.admitted:  # ended before it was handed to the recorder (cancelled): give the room back
                self.recorder.release()

    async def _serve(self, ex: Exchange, headers: dict[str, str], receive: Any, send: Any) -> None:
        started, body, arm = ex.started, ex.request, ex.arm
        forward = self._forward(headers)
        if self.routing.shadow:
            ex.pair_id = uuid.uuid4().hex
            self._shadow(body, forward, ex)
        upstream_url = self._base_for(arm) + CHAT_ROUTE
        sent_up = time.perf_counter()
        try:
            response = await self.client.post(upstream_url, data=body, headers=forward)
        except UPSTREAM_ERRORS as exc:
            ex.error = _failure("upstream unreachable", exc)
            ex.error_type = type(exc).__name__
            ex.latency_s = time.perf_counter() - started
            self._finish(ex, returned=_failed_status(exc))
            return await _send_upstream_error(send, exc)
        ex.status = response.status
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return await self._relay(response, ex, sent_up, receive, send)
        try:
            ex.body = await response.read()
        except UPSTREAM_ERRORS as exc:
            ex.error = _failure("upstream broke off", exc)
            ex.error_type = type(exc).__name__
            ex.latency_s = time.perf_counter() - started
            self._finish(ex, returned=_failed_status(exc))
            return await _send_upstream_error(send, exc)
        finally:
            response.release()
        if ex.status < 300 and ex.body[:1] != b"{" and ex.body.lstrip()[:1] != b"{":
            return await self._not_json(ex, response, send)  # an HTML page, an empty body: no answer
        answered = time.perf_counter()
        try:
            await _send_whole(send, response, ex.body)
        finally:
            ex.latency_s = done = time.perf_counter() - started
            ex.overhead_s = (sent_up - started) + (started + done - answered)
            self._finish(ex)

    async def _relay(
        self, response: aiohttp.ClientResponse, ex: Exchange, sent_up: float, receive: Any, send: Any
    ) -> None:
        """The upstream's stream, each chunk sent on as it arrives; recorded at the end. A client
        that goes away closes the upstream response (and so ends the relay) at once."""
        gone = asyncio.ensure_future(receive())  # resolves when the client disconnects
        gone.add_done_callback(lambda _f: response.close() if ex.latency_s is None else None)
        ex.stream = True
        received = bytearray()
        chunks = ex.chunks
        held = 0.0  # the longest any chunk waited in the gateway, from its arrival to its sending
        clock = time.perf_counter
        try:
            await send({"type": "http.response.start", "status": response.status, "headers": _out_headers(response)})
            async for chunk in response.content.iter_any():
                arrived = clock()
                received += chunk
                chunks.append((len(received), arrived))
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                held = max(held, clock() - arrived)
            if gone.done():  # the client went away: the upstream response was closed for it
                ex.error, ex.error_type = "client disconnected", "client_disconnected"
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except UPSTREAM_ERRORS as exc:
            if gone.done():
                ex.error, ex.error_type = "client disconnected", "client_disconnected"
            else:
                ex.error = f"upstream stream broke off: {type(exc).__name__}"
                ex.error_type = type(exc).__name__
                with contextlib.suppress(Exception):  # end the client's stream
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        except BaseException:  # ClientGone, a cancellation, an OSError from the client's socket
            ex.error, ex.error_type = "client disconnected", "client_disconnected"
            raise
        finally:
            ex.latency_s = clock() - ex.started
            ex.overhead_s = (sent_up - ex.started) + held
            gone.cancel()
            ex.body = bytes(received)
            if ex.error is None:
                response.release()
            else:  # broken off: the connection is not reused
                response.close()
            self._finish(ex)

    async def _not_json(self, ex: Exchange, response: aiohttp.ClientResponse, send: Any) -> None:
        """A chat answer of 2xx whose body is not JSON: a failure (502), its body neither sent nor stored."""
        kind = response.headers.get("content-type", "no content type")[:100]
        ex.error = f"upstream answered {ex.status} with a body that is not JSON ({kind})"
        ex.error_type = "invalid_response"
        ex.body = b""
        ex.latency_s = time.perf_counter() - ex.started
        self._finish(ex, returned=502)
        message = f"medops gateway: the upstream answered {ex.status} with a body that is not JSON ({kind})"
        await _send_json(send, 502, {"error": {"message": message, "type": "upstream_error"}})

    def _finish(self, ex: Exchange, returned: int | None = None) -> None:
        """Count the request (a few dictionary lookups), then hand the exchange to the recorder:
        parsing the request and the answer happens in its thread (``exchange_row``). Never raises."""
        try:
            status = returned if returned is not None else (ex.status or 502)
            if ex.error_type is None and ex.status is not None and ex.status >= 400:
                ex.error_type = str(ex.status)
                ex.error = f"upstream answered {ex.status}"
            if ex.arm != "shadow" and ex.overhead_s is not None:
                self.metrics.overhead.labels("chat", "stream" if ex.stream else "plain").observe(ex.overhead_s)
            ex.returned = status
            admitted, ex.admitted = ex.admitted, False
            if not self.recorder.submit(
                functools.partial(exchange_row, ex, self.metrics), len(ex.request) + len(ex.body), admitted=admitted
            ):
                _count(ex, self.metrics)  # the recorder is behind: the request is still counted
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
            payload=None,
            conversation_id=primary.conversation_id,
            department=primary.department,
            application=primary.application,
            pair_id=primary.pair_id,
            request=body,
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


def _parse_request(ex: Exchange) -> dict[str, Any] | None:
    """The request's JSON, with the model, stream flag and conversation key it gives the exchange."""
    payload = _payload(ex.request) if ex.payload is None else ex.payload
    ex.payload = payload
    model = payload.get("model") if payload else None
    ex.model = str(model)[:MAX_LABEL] if model is not None else ""
    ex.stream = bool(payload and payload.get("stream"))
    if ex.conversation_id is None:
        ex.conversation_id = conversation_key(None, payload or {})
    return payload


def _count(ex: Exchange, metrics: GatewayMetrics) -> None:
    _parse_request(ex)
    if ex.arm != "shadow":
        metrics.observe_request(ex.model, "chat", ex.arm, ex.returned or 502, ex.latency_s or 0.0, ex.error_type)


def exchange_row(ex: Exchange, metrics: GatewayMetrics) -> dict[str, Any]:
    """The recorder's row for a finished exchange, made in the recorder's thread (off the request
    path): the request's JSON and the answer are parsed here, and the request is counted."""
    found = read_answer(ex)
    if "fault" in found and ex.error is None:  # not a whole answer: a failure, in the store and the metrics
        ex.error_type, ex.error = found["fault"]
    _count(ex, metrics)
    payload = ex.payload
    if ex.arm != "shadow":
        if ex.ttft_s is not None:
            metrics.ttft.labels(ex.model, "chat", ex.arm).observe(ex.ttft_s)
        metrics.observe_usage(ex.model, ex.arm, found.get("prompt_tokens"), found.get("completion_tokens"))
    messages = (payload or {}).get("messages")
    return {
        "created_at": ex.created_at,
        "source": "gateway",
        "route": ex.route,
        "model": ex.model or None,
        "response_model": _text(found.get("response_model"), 200),
        "arm": ex.arm,
        "pair_id": ex.pair_id,
        "conversation_id": ex.conversation_id[:200],
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
        "response_tool_calls": found.get("tool_calls"),
    }


class ClientGone(Exception):
    """The client went away in the middle of a streamed answer."""


def _payload(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    """The request's headers, names in lower case (ASGI servers send them so); a repeated one keeps its last value."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def _read_body(receive: Any, limit: int) -> bytes | None:
    """The request's body; None as soon as more than ``limit`` bytes came (the rest is not read)."""
    message = await receive()
    if message["type"] != "http.request":
        raise ClientGone
    body = message.get("body", b"")
    if not message.get("more_body", False):  # the usual case: one message, no copy
        return body if len(body) <= limit else None
    parts, size = [body], len(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


def _out_headers(response: aiohttp.ClientResponse, length: int | None = None) -> list[tuple[bytes, bytes]]:
    headers = [(k.lower(), v) for k, v in response.raw_headers if k.lower().decode("latin-1") not in _RESPONSE_DROP]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return headers


async def _send_whole(send: Any, response: aiohttp.ClientResponse, content: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": response.status, "headers": _out_headers(response, len(content))}
    )
    await send({"type": "http.response.body", "body": content})


async def _send_json(send: Any, status: int, value: Any) -> None:
    content = json.dumps(value).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def _failed_status(exc: BaseException) -> int:
    """What a client is answered (and the metrics count) when the upstream did not answer."""
    return 504 if isinstance(exc, asyncio.TimeoutError) else 502


def _failure(what: str, exc: BaseException) -> str:
    return "upstream timed out" if isinstance(exc, asyncio.TimeoutError) else f"{what}: {type(exc).__name__}"


async def _send_upstream_error(send: Any, exc: BaseException) -> None:
    await _send_json(
        send,
        _failed_status(exc),
        {"error": {"message": f"medops gateway: upstream {type(exc).__name__}", "type": "upstream_error"}},
    )


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


def _text(value: Any, size: int) -> str | None:
    return str(value)[:size] if value is not None else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
