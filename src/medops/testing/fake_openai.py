"""A scriptable OpenAI-compatible chat server on loopback, for tests, benchmarks and dry runs.

It answers ``POST /v1/chat/completions`` like a real endpoint. Behaviour is scripted by tokens
in the request text, so a test data file says what the server will do:

* grader requests asking for ``logprobs`` get them for the verdict token (``{p-met:0.8}`` sets P(true));
* models whose name contains ``noschema`` refuse ``response_format`` with 400, and those whose name
  contains ``nologprobs`` refuse ``logprobs`` with 400 (as reasoning models do);
* models whose name ends in ``-unauthorized`` get 401 (with the key echoed in the message);
* models whose name contains ``grader`` answer with a HealthBench verdict JSON; ``{met}`` or
  ``{unmet}`` in the prompt fixes the verdict, ``{met-if:WORD}`` makes it depend on the
  response containing WORD, ``{met-by:NAME}`` met only for graders whose name contains NAME (a
  jury that disagrees; give it several times for several graders), otherwise a hash of the
  prompt decides;
* ``{ROLE-429:N}``, ``{ROLE-500:N}``, ``{ROLE-slow:N}``, ``{ROLE-malformed:N}``, ``{ROLE-null:N}``
  (``"content": null``), ``{ROLE-empty:N}`` (``"content": ""``), ``{ROLE-html:N}`` (200 with an
  HTML page, as a captive portal or a misrouted proxy answers) and ``{ROLE-cutoff:N}`` (a stream
  that stops after its words: no finish reason, no ``[DONE]``) make the first N requests with
  that exact body fail that way (ROLE is ``model`` or ``grader``; N may be
  ``all``); ``{grader-fence}`` and ``{grader-stringbool}`` vary the reply's format;
* exam prompts (option lines ``A. ...``) get a ``\\boxed{X}`` answer: ``{model-answer:X}`` fixes
  X, otherwise a hash of the prompt picks an option; a prompt asking for ``Confidence: N%`` gets
  ``Answer: X`` and ``Confidence: N%`` (``{model-confidence:N}`` sets N, else a hash of the prompt),
  ``{model-abstain}`` gets "I don't know.", and a model request asking for ``logprobs`` gets them
  for the answer letter (``{model-p:0.7}`` sets P(X), the rest shared by the other options, else a
  hash of the prompt);
  a model named ``...flip-P...`` lets the prompt's
  hash pick in P% of prompts and the options' hash in the others, so counterfactual variants of a
  question (same options) agree except in about P% of cases; a model named ``...biased-WORD...``
  answers the next option whenever the prompt holds WORD (a model that treats some patients worse);
* grouped grader prompts (``--criteria-per-call``) get ``{"grades": [...]}`` in reverse order,
  with ``{grader-drop:N}`` / ``{grader-dup:N}`` to omit or duplicate a criterion's entry.

``"stream": true`` gets the answer as server-sent events, one chunk per word, ``token_delay_s``
(``--token-delay``; ``{token-delay:S}`` in the prompt for one request) apart, then a chunk with the
finish reason, a usage chunk when ``stream_options.include_usage`` is set, and ``data: [DONE]``.

``FakeBehaviour(max_in_flight=N)`` (``--max-in-flight N``) makes the whole server a rate-limited
endpoint: it serves at most N requests at a time and answers any request beyond them at once with
429 and ``Retry-After`` (as a gateway in front of a busy server does), counting them in
``rejected_over_cap``.

Every request is logged (``server.log`` in process, ``GET /stats`` over HTTP) so a test can
prove which calls were made and how often.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from medops.content import text_of

_TOKEN = re.compile(r"\{(model|grader)-(429|500|slow|malformed|null|empty|html|cutoff):(\d+|all)\}")
_GROUP_LINE = re.compile(r"^(\d+)\. (?:\[-?[\d.]+\] )?(.*)$", re.MULTILINE)
_GROUP_FAULT = re.compile(r"\{grader-(drop|dup):(\d+|all)\}")
_TOKEN_DELAY = re.compile(r"\{token-delay:([0-9.]+)\}")
_BIASED = re.compile(r"biased-(\w+)")
_FLIP = re.compile(r"flip-(\d+)")


@dataclass
class LoggedCall:
    at: float
    model: str
    key: str
    status: int
    messages: list[dict]
    params: dict = field(default_factory=dict)  # every request field but the messages


@dataclass
class FakeBehaviour:
    latency_s: float = 0.0
    slow_s: float = 5.0
    retry_after: str = "1"  # the Retry-After header of every 429, scripted or over the cap
    max_in_flight: int | None = None  # server-wide: requests beyond this many in flight get 429 at once
    token_delay_s: float = 0.0  # between streamed chunks


@dataclass
class FakeOpenAIServer:
    behaviour: FakeBehaviour = field(default_factory=FakeBehaviour)
    log: list[LoggedCall] = field(default_factory=list)
    seen: Counter = field(default_factory=Counter)
    group_lines_seen: Counter = field(default_factory=Counter)
    in_flight: int = 0  # requests being served now (the event loop is the only writer)
    peak_in_flight: int = 0
    rejected_over_cap: int = 0

    # HTTP ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 2**20)  # long contexts (aiohttp's default is 1 MB)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/stats", self._stats)
        return app

    async def _models(self, _request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    async def _stats(self, _request: web.Request) -> web.Response:
        ok = Counter(c.key for c in self.log if c.status == 200)
        return web.json_response(
            {
                "calls": len(self.log),
                "ok_calls": sum(ok.values()),
                "max_ok_per_request": max(ok.values(), default=0),
                "rejected_over_cap": self.rejected_over_cap,
                "peak_in_flight": self.peak_in_flight,
            }
        )

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.read()
        payload = json.loads(body)
        cap = self.behaviour.max_in_flight
        if cap is not None and self.in_flight >= cap:  # refused before any work: no latency, no fault script
            self.rejected_over_cap += 1
            params = {k: v for k, v in payload.items() if k != "messages"}
            messages = payload.get("messages", [])
            model = payload.get("model", "")
            self.log.append(LoggedCall(time.time(), model, hashlib.sha256(body).hexdigest(), 429, messages, params))
            return web.json_response(
                {"error": {"message": f"too many requests in flight (limit {cap})", "type": "rate_limit"}},
                status=429,
                headers={"Retry-After": self.behaviour.retry_after},
            )
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._serve(body, payload, request)
        finally:
            self.in_flight -= 1

    async def _serve(self, body: bytes, payload: dict, request: web.Request) -> web.Response:
        model = payload.get("model", "")
        role = "grader" if "grader" in model else "model"
        text = "\n".join(_read(m.get("content", "")) for m in payload.get("messages", []))
        key = hashlib.sha256(body).hexdigest()
        self.seen[key] += 1
        attempt = self.seen[key]
        if self.behaviour.latency_s:
            await asyncio.sleep(self.behaviour.latency_s)
        faults = {kind: n for r, kind, n in _TOKEN.findall(text) if r == role}

        def active(kind: str) -> bool:
            n = faults.get(kind)
            return n is not None and (n == "all" or attempt <= int(n))

        status = 200
        if model.endswith("-unauthorized"):  # echoes the key, as some servers do: callers must redact it
            status = 401
            token = request.headers.get("Authorization", "").removeprefix("Bearer ")
            response = web.json_response({"error": {"message": f"Incorrect API key provided: {token}"}}, status=401)
        elif "noschema" in model and "response_format" in payload:
            status = 400
            response = web.json_response({"error": {"message": "response_format is not supported"}}, status=400)
        elif "nologprobs" in model and payload.get("logprobs"):
            status = 400
            message = "logprobs are not supported with this model"
            response = web.json_response({"error": {"message": message}}, status=400)
        elif active("429"):
            status = 429
            response = web.json_response(
                {"error": {"message": "rate limited", "type": "rate_limit"}},
                status=429,
                headers={"Retry-After": self.behaviour.retry_after},
            )
        elif active("500"):
            status = 500
            response = web.json_response({"error": {"message": "server error"}}, status=500)
        elif active("html"):
            response = web.Response(text="<html><body><h1>Sign in</h1></body></html>", content_type="text/html")
        else:
            if active("slow"):
                await asyncio.sleep(self.behaviour.slow_s)
            if role == "grader" and '{"grades"' in text:
                content = self._group_reply(text, active("malformed"))
            elif role == "grader":
                content = self._grader_reply(text, active("malformed"), model)
            else:
                content = self._model_reply(text, model)
            if active("empty"):
                content = ""
            body = _completion(model, content, text)
            if active("null"):
                body["choices"][0]["message"]["content"] = None
            if role == "model" and payload.get("tools"):  # call the first tool with the last user turn
                body["choices"][0] |= {"message": _tool_call_message(payload), "finish_reason": "tool_calls"}
            if payload.get("logprobs") and role == "grader":
                body["choices"][0]["logprobs"] = _verdict_logprobs(content, text)
            elif payload.get("logprobs") and content and not payload.get("tools"):
                body["choices"][0]["logprobs"] = _answer_logprobs(content, text)
            if payload.get("stream"):
                response = await self._stream(request, payload, body, text, cut_off=active("cutoff"))
            else:
                response = web.json_response(body)
        params = {k: v for k, v in payload.items() if k != "messages"}
        self.log.append(LoggedCall(time.time(), model, key, status, payload.get("messages", []), params))
        return response

    async def _stream(
        self, request: web.Request, payload: dict, body: dict, text: str, cut_off: bool = False
    ) -> web.StreamResponse:
        """The completion ``body`` as server-sent events, one chunk per word, ``token_delay_s`` apart
        (``cut_off``: the stream ends cleanly after the words, without finish reason or ``[DONE]``)."""
        delay_token = _TOKEN_DELAY.findall(text)
        delay = float(delay_token[-1]) if delay_token else self.behaviour.token_delay_s
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        content = body["choices"][0]["message"]["content"]
        head = {k: body[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

        def event(delta: dict, finish: str | None = None) -> bytes:
            chunk = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(chunk)}\n\n".encode()

        await response.write(event({"role": "assistant", "content": ""}))
        for i, call in enumerate(body["choices"][0]["message"].get("tool_calls") or ()):
            # id and name first, then the arguments in pieces, as OpenAI streams a tool call
            first = {"index": i, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"]}}
            await response.write(event({"tool_calls": [first]}))
            arguments = call["function"]["arguments"]
            for start in range(0, len(arguments), 7):
                piece = {"index": i, "function": {"arguments": arguments[start : start + 7]}}
                await response.write(event({"tool_calls": [piece]}))
        words = re.findall(r"\S+\s*", content or "") if content else []
        for word in words:
            if delay:
                await asyncio.sleep(delay)
            await response.write(event({"content": word}))
        if cut_off:
            await response.write_eof()
            return response
        await response.write(event({}, body["choices"][0]["finish_reason"]))
        if (payload.get("stream_options") or {}).get("include_usage"):
            usage = {**head, "choices": [], "usage": body["usage"]}
            await response.write(f"data: {json.dumps(usage)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    @staticmethod
    def _model_reply(text: str, model: str = "") -> str:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        letters = re.findall(r"^([A-J])\. ", text, re.MULTILINE)
        if letters:  # an exam question: answer like a reasoning model would
            if "{model-abstain}" in text:
                return "I don't know."
            forced = re.findall(r"\{model-answer:([A-J])\}", text)
            flip = _FLIP.search(model)
            if not forced and flip and int(digest, 16) % 100 >= int(flip.group(1)):
                # the options decide (the same under every counterfactual variant of the question)
                options = "\n".join(re.findall(r"^[A-J]\. .*$", text, re.MULTILINE))
                digest = hashlib.sha256(options.encode()).hexdigest()[:8]
            letter = forced[-1] if forced else letters[int(digest, 16) % len(letters)]
            biased = _BIASED.search(model)
            if biased and re.search(rf"\b{re.escape(biased.group(1))}\b", text, re.IGNORECASE):
                letter = letters[(letters.index(letter) + 1) % len(letters)] if letter in letters else letter
            if "Confidence: N%" in text or "확신도: N%" in text:  # the stated-confidence style
                stated = re.findall(r"\{model-confidence:(\d+)\}", text)
                return f"Answer: {letter}\nConfidence: {stated[-1] if stated else int(digest, 16) % 101}%"
            return f"Let me reason about each option step by step. The answer is \\boxed{{{letter}}}."
        return f"Reply {digest}: rest, drink fluids, and see a doctor if it gets worse."

    @staticmethod
    def _grader_reply(text: str, malformed: bool, model: str = "") -> str:
        if malformed:
            return "I think the response is fine overall, but I cannot say more."
        conditional = re.search(r"\{met-if:([^}]+)\}", text)
        by = re.findall(r"\{met-by:([^}]+)\}", text)
        if by:  # met for the graders named here (a jury whose members disagree)
            met = any(name in model for name in by)
        elif conditional:  # met when the word appears anywhere else (i.e. in the graded response)
            met = text.count(conditional.group(1)) > 1
        elif "{met}" in text:
            met = True
        elif "{unmet}" in text:
            met = False
        else:
            met = hashlib.sha256(text.encode()).digest()[0] % 2 == 0
        verdict = "true" if met else "false"
        if "{grader-stringbool}" in text:
            verdict = f'"{verdict}"'
        reply = f'{{"explanation": "scripted verdict", "criteria_met": {verdict}}}'
        if "{grader-fence}" in text:
            reply = f"Here is my assessment.\n```json\n{reply}\n```\nHope this helps."
        return reply

    def _group_reply(self, text: str, malformed: bool) -> str:
        """Grouped verdicts in reverse order (so callers must map by index); ``{grader-drop:N}`` /
        ``{grader-dup:N}`` on a criterion line omit or duplicate its entry the first N times it is asked."""
        if malformed:
            return "Overall the reply is fine."
        entries = []
        for number, line in _GROUP_LINE.findall(text):
            self.group_lines_seen[line] += 1
            met = "{met}" in line or ("{unmet}" not in line and hashlib.sha256(line.encode()).digest()[0] % 2 == 0)
            entry = {"index": int(number), "explanation": "scripted", "criteria_met": met}
            fault = _GROUP_FAULT.search(line)
            active = fault and (fault.group(2) == "all" or self.group_lines_seen[line] <= int(fault.group(2)))
            if active and fault.group(1) == "drop":
                continue
            entries.append(entry)
            if active and fault.group(1) == "dup":
                entries.append({**entry, "criteria_met": not met})
        return json.dumps({"grades": entries[::-1]})


def _read(content: object) -> str:
    """A message's text as the scripted replies read it: content parts by their text parts."""
    return text_of(content) if isinstance(content, list) else str(content)


def _verdict_logprobs(content: str, prompt: str) -> dict:
    """OpenAI-style token logprobs for a verdict reply; ``{p-met:0.8}`` sets P(true) at the decision."""
    wanted = re.search(r"\{p-met:([0-9.]+)\}", prompt)
    p_true = float(wanted.group(1)) if wanted else (0.9 if '"criteria_met": true' in content else 0.1)
    head, _, tail = content.partition('"criteria_met": ')
    value = "true" if tail.startswith("true") else "false"
    chosen = p_true if value == "true" else 1 - p_true
    alternatives = [
        {"token": " true", "logprob": math.log(max(p_true, 1e-9))},
        {"token": " false", "logprob": math.log(max(1 - p_true, 1e-9))},
    ]
    return {
        "content": [
            {"token": head + '"criteria_met":', "logprob": 0.0, "top_logprobs": []},
            {"token": " " + value, "logprob": math.log(max(chosen, 1e-9)), "top_logprobs": alternatives},
            {"token": tail[len(value) :], "logprob": 0.0, "top_logprobs": []},
        ]
    }


def _answer_logprobs(content: str, prompt: str) -> dict:
    """OpenAI-style token logprobs for an exam reply: one token per word, and at the answer letter
    (the last one standing alone or in ``\\boxed{}``) its probability among the options."""
    letters = re.findall(r"^([A-J])\. ", prompt, re.MULTILINE)
    wanted = re.findall(r"\{model-p:([0-9.]+)\}", prompt)
    digest = hashlib.sha256(prompt.encode()).digest()
    p = float(wanted[-1]) if wanted else 0.2 + 0.79 * digest[1] / 255
    pieces = re.findall(r"\\boxed\{|[A-J](?=\})|\S+|\s+", content)
    answer = max((i for i, t in enumerate(pieces) if t.strip("{}.") in letters), default=None)
    tokens = []
    for i, piece in enumerate(pieces):
        if i != answer:
            tokens.append({"token": piece, "logprob": 0.0, "top_logprobs": []})
            continue
        chosen = piece.strip("{}.")
        others = [x for x in letters if x != chosen]
        rest = (1 - p) / len(others) if others else 0.0
        alternatives = [{"token": chosen, "logprob": math.log(max(p, 1e-9))}] + [
            {"token": x, "logprob": math.log(max(rest, 1e-9))} for x in others
        ]
        tokens.append({"token": piece, "logprob": math.log(max(p, 1e-9)), "top_logprobs": alternatives})
    return {"content": tokens}


def _tool_call_message(payload: dict) -> dict:
    """An assistant message calling the request's first tool with the last user turn as ``query``."""
    tool = payload["tools"][0]
    name = (tool.get("function") or {}).get("name", "tool") if isinstance(tool, dict) else "tool"
    users = [m for m in payload.get("messages", []) if isinstance(m, dict) and m.get("role") == "user"]
    query = users[-1].get("content") if users else ""
    arguments = json.dumps({"query": query}, ensure_ascii=False)
    call = {"id": "call_fake_1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def _completion(model: str, content: str, prompt: str) -> dict:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": len(prompt) // 4 + 1,
            "completion_tokens": len(content) // 4 + 1,
            "total_tokens": len(prompt) // 4 + len(content) // 4 + 2,
        },
    }


class ServerThread:
    """Run a FakeOpenAIServer on 127.0.0.1 in a background thread: ``with ServerThread() as s: s.base_url``."""

    def __init__(self, server: FakeOpenAIServer | None = None, port: int = 0):
        self.server = server or FakeOpenAIServer()
        self.port = port  # 0: any free port
        self.base_url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._runner = web.AppRunner(self.server.app(), access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=2048)
        self._loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def _stop() -> None:
            if self._runner:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def main() -> None:
    """``python -m medops.testing.fake_openai --port 8000 --latency 0.2 [--max-in-flight 64]``: serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument(
        "--max-in-flight", type=int, default=None, help="answer 429 to requests beyond this many in flight"
    )
    parser.add_argument("--retry-after", default="1", help="the Retry-After header of 429 answers (seconds)")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between streamed chunks")
    args = parser.parse_args()
    if args.max_in_flight is not None and args.max_in_flight < 1:
        parser.error("--max-in-flight must be at least 1")
    server = FakeOpenAIServer(
        FakeBehaviour(
            latency_s=args.latency,
            max_in_flight=args.max_in_flight,
            retry_after=args.retry_after,
            token_delay_s=args.token_delay,
        )
    )

    async def serve() -> None:
        runner = web.AppRunner(server.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096)
        await site.start()
        print(f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/v1", flush=True)  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
