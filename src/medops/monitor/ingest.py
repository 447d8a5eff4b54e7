"""``medops monitor ingest FILE``: traffic logged elsewhere, into ``exchanges`` (source ``ingest``).

Two formats, told apart line by line (JSONL) or by the document (JSON):

* **OpenAI-style pairs**, one per line: ``{"request": {"model", "messages", ...}, "response":
  {chat.completion}}``; the response may also be wrapped as the Batch API writes it
  (``{"status_code": 200, "body": {...}}``). Optional: ``created_at`` (ISO 8601 or Unix seconds),
  ``latency_s``, ``ttft_s``, ``status``, ``error``, ``arm``, ``metadata`` / top level
  ``department``, ``application``, ``conversation_id``.
* **OpenTelemetry GenAI spans**: an OTLP JSON export (``resourceSpans[].scopeSpans[].spans[]``,
  attributes as ``[{"key", "value": {"stringValue"|"intValue"|...}}]``), a list of spans, or one
  span per line (``attributes`` as an object, as the SDK's console exporter writes). A span is an
  exchange when it carries ``gen_ai.*`` attributes (``gen_ai.operation.name``,
  ``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` /
  ``output_tokens``, ``gen_ai.response.finish_reasons``, ``gen_ai.conversation.id``, and the
  text in ``gen_ai.input.messages`` / ``gen_ai.output.messages`` or the older
  ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*``); other spans are skipped and counted.

Every line is checked before anything is written: the first bad one is an error naming
``file:line`` and the field. Text is stored after the PHI policy, as the gateway stores it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medops.errors import UserError
from medops.models.targets import ARMS  # the arms traffic is recorded under, one per deployment role
from medops.monitor.recorder import apply_phi


class BadRecord(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass
class Ingested:
    rows: list[dict[str, Any]]
    skipped: int  # spans without gen_ai attributes
    formats: dict[str, int]  # "openai" / "otel": rows of each
    phi_entities: dict[str, int]


def _time(value: Any, field: str) -> datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1e9 if value > 1e14 else value  # OTel nanoseconds, or Unix seconds
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    if isinstance(value, str):
        if value.isdigit():
            return _time(int(value), field)
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadRecord(field, f"not a time: {value[:40]!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise BadRecord(field, "not a time")


def _opt_str(data: dict[str, Any], key: str, field: str, size: int = 200) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise BadRecord(field, "must be a string")
    return str(value)[:size]


def _opt_int(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadRecord(field, "must be a non-negative integer")
    return value


def _opt_float(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise BadRecord(field, "must be a non-negative number")
    return float(value)


def _messages(value: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise BadRecord(field, "must be a non-empty list of messages")
    for i, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRecord(f"{field}[{i}]", "must be an object with a role")
    return value


# OpenAI-style request / response pairs -------------------------------------------------------------
def openai_pair(record: dict[str, Any]) -> dict[str, Any]:
    request = record.get("request")
    if not isinstance(request, dict):
        raise BadRecord("request", "must be an object with model and messages")
    messages = _messages(request.get("messages"), "request.messages")
    model = _opt_str(request, "model", "request.model")
    response = record.get("response")
    status = _opt_int(record.get("status"), "status")
    if isinstance(response, dict) and "body" in response and "choices" not in response:
        status = status if status is not None else _opt_int(response.get("status_code"), "response.status_code")
        response = response.get("body")
    if response is not None and not isinstance(response, dict):
        raise BadRecord("response", "must be a chat.completion object")
    response = response or {}
    choices = response.get("choices")
    text = None
    finish = None
    if choices is not None:
        if not isinstance(choices, list):
            raise BadRecord("response.choices", "must be a list")
        if choices:
            first = choices[0]
            if not isinstance(first, dict):
                raise BadRecord("response.choices[0]", "must be an object")
            message = first.get("message") or {}
            if not isinstance(message, dict):
                raise BadRecord("response.choices[0].message", "must be an object")
            content = message.get("content")
            if content is not None and not isinstance(content, str):
                raise BadRecord("response.choices[0].message.content", "must be a string or null")
            text = content
            finish = first.get("finish_reason")
    usage = response.get("usage") or {}
    if not isinstance(usage, dict):
        raise BadRecord("response.usage", "must be an object")
    error = record.get("error") or response.get("error")
    if status is None:
        status = 200 if choices else None
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise BadRecord("metadata", "must be an object")
    meta = {**metadata, **{k: record[k] for k in ("department", "application", "conversation_id") if k in record}}
    arm = record.get("arm", "primary")
    if arm not in ARMS:
        raise BadRecord("arm", f"must be one of {', '.join(ARMS)}")
    row: dict[str, Any] = {
        "source": "ingest",
        "route": "/v1/chat/completions",
        "model": model,
        "response_model": _opt_str(response, "model", "response.model"),
        "arm": arm,
        "conversation_id": _opt_str(meta, "conversation_id", "metadata.conversation_id"),
        "department": _opt_str(meta, "department", "metadata.department"),
        "application": _opt_str(meta, "application", "metadata.application"),
        "stream": bool(request.get("stream")),
        "status": status,
        "error": json.dumps(error, ensure_ascii=False)[:2000] if isinstance(error, (dict, list)) else error,
        "latency_s": _opt_float(record.get("latency_s"), "latency_s"),
        "ttft_s": _opt_float(record.get("ttft_s"), "ttft_s"),
        "prompt_tokens": _opt_int(usage.get("prompt_tokens"), "response.usage.prompt_tokens"),
        "completion_tokens": _opt_int(usage.get("completion_tokens"), "response.usage.completion_tokens"),
        "finish_reason": str(finish)[:40] if finish is not None else None,
        "messages": messages,
        "response": text,
    }
    when = record.get("created_at", record.get("timestamp"))
    if when is None and isinstance(response.get("created"), int):
        when = response["created"]
    if when is not None:
        row["created_at"] = _time(when, "created_at")
    return row


# OpenTelemetry GenAI spans ---------------------------------------------------------------------------
def _any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` (``{"stringValue": ...}``, ``{"arrayValue": {"values": [...]}}``, ...) as plain data."""
    if not isinstance(value, dict):
        return value
    for kind in ("stringValue", "boolValue", "doubleValue"):
        if kind in value:
            return value[kind]
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_any_value(v) for v in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return {kv["key"]: _any_value(kv.get("value")) for kv in (value["kvlistValue"] or {}).get("values", [])}
    return None


def _attributes(span: dict[str, Any]) -> dict[str, Any]:
    attributes = span.get("attributes") or {}
    if isinstance(attributes, list):  # OTLP: [{"key": ..., "value": {...}}]
        out = {}
        for i, kv in enumerate(attributes):
            if not isinstance(kv, dict) or "key" not in kv:
                raise BadRecord(f"attributes[{i}]", "must be an object with key and value")
            out[kv["key"]] = _any_value(kv.get("value"))
        return out
    if not isinstance(attributes, dict):
        raise BadRecord("attributes", "must be an object or an OTLP attribute list")
    return attributes


def _json_attr(value: Any, field: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise BadRecord(field, "must be JSON") from None
    return value


def _otel_messages(messages: Any, field: str) -> list[dict[str, Any]]:
    """GenAI ``input.messages`` (``{"role", "parts": [{"type": "text", "content"}]}``) or
    OpenAI-style ``{"role", "content"}`` -> OpenAI-style messages."""
    if not isinstance(messages, list):
        raise BadRecord(field, "must be a list of messages")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRecord(f"{field}[{i}]", "must be an object with a role")
        if "parts" in message:
            texts = [
                str(p.get("content", ""))
                for p in message.get("parts") or ()
                if isinstance(p, dict) and p.get("type") == "text"
            ]
            out.append({"role": message["role"], "content": "".join(texts)})
        else:
            out.append({"role": message["role"], "content": message.get("content")})
    return out


def _indexed(attributes: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``gen_ai.prompt.0.role`` / ``gen_ai.prompt.0.content`` ... -> messages (OpenLLMetry's layout)."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if key.startswith(prefix):
            index, _, name = key[len(prefix) :].partition(".")
            if index.isdigit() and name in ("role", "content", "finish_reason"):
                found.setdefault(int(index), {})[name] = value
    return [found[i] for i in sorted(found)]


def otel_span(span: dict[str, Any]) -> dict[str, Any] | None:
    """An exchange from a GenAI span, or None for a span without ``gen_ai.*`` attributes."""
    attributes = _attributes(span)
    if not any(k.startswith("gen_ai.") for k in attributes):
        return None
    a = attributes
    messages: list[dict[str, Any]] | None = None
    response = None
    finish = None
    if "gen_ai.input.messages" in a:
        messages = _otel_messages(
            _json_attr(a["gen_ai.input.messages"], "gen_ai.input.messages"), "gen_ai.input.messages"
        )
    elif _indexed(a, "gen_ai.prompt."):
        messages = [{"role": m.get("role", "user"), "content": m.get("content")} for m in _indexed(a, "gen_ai.prompt.")]
    if "gen_ai.output.messages" in a:
        output = _otel_messages(
            _json_attr(a["gen_ai.output.messages"], "gen_ai.output.messages"), "gen_ai.output.messages"
        )
        response = output[0]["content"] if output else None
        raw = _json_attr(a["gen_ai.output.messages"], "gen_ai.output.messages")
        finish = raw[0].get("finish_reason") if raw and isinstance(raw[0], dict) else None
    elif _indexed(a, "gen_ai.completion."):
        completion = _indexed(a, "gen_ai.completion.")[0]
        response = completion.get("content")
        finish = completion.get("finish_reason")
    reasons = a.get("gen_ai.response.finish_reasons")
    if isinstance(reasons, str):
        reasons = _json_attr(reasons, "gen_ai.response.finish_reasons") if reasons.startswith("[") else [reasons]
    if finish is None and isinstance(reasons, list) and reasons:
        finish = reasons[0]
    start = span.get("startTimeUnixNano", span.get("start_time"))
    end = span.get("endTimeUnixNano", span.get("end_time"))
    created = _time(start, "startTimeUnixNano") if start is not None else None
    latency = None
    if start is not None and end is not None:
        latency = max(0.0, (_time(end, "endTimeUnixNano") - created).total_seconds())  # type: ignore[operator]
    status = span.get("status") or {}
    code = status.get("code", status.get("status_code")) if isinstance(status, dict) else None
    failed = code in (2, "ERROR", "STATUS_CODE_ERROR") or "error.type" in a
    http_status = _opt_int(a.get("http.response.status_code"), "http.response.status_code")
    operation = a.get("gen_ai.operation.name") or "chat"
    row: dict[str, Any] = {
        "source": "ingest",
        "route": f"otel:{operation}"[:200],
        "model": _opt_str(a, "gen_ai.request.model", "gen_ai.request.model"),
        "response_model": _opt_str(a, "gen_ai.response.model", "gen_ai.response.model"),
        "arm": "primary",
        "conversation_id": _opt_str(a, "gen_ai.conversation.id", "gen_ai.conversation.id"),
        "department": _opt_str(a, "medops.department", "medops.department"),
        "application": _opt_str(a, "medops.application", "medops.application"),
        "stream": bool(a.get("gen_ai.request.stream", False)),
        "status": http_status if http_status is not None else (None if failed else 200),
        "error": (str(a.get("error.type") or status.get("message") or "error")[:2000]) if failed else None,
        "latency_s": latency,
        "ttft_s": _opt_float(a.get("gen_ai.server.time_to_first_token"), "gen_ai.server.time_to_first_token"),
        "prompt_tokens": _opt_int(
            a.get("gen_ai.usage.input_tokens", a.get("gen_ai.usage.prompt_tokens")), "gen_ai.usage.input_tokens"
        ),
        "completion_tokens": _opt_int(
            a.get("gen_ai.usage.output_tokens", a.get("gen_ai.usage.completion_tokens")), "gen_ai.usage.output_tokens"
        ),
        "finish_reason": str(finish)[:40] if finish is not None else None,
        "messages": messages,
        "response": response if isinstance(response, str) else None,
        "notes": {"otel": {k: span[k] for k in ("traceId", "spanId", "trace_id", "span_id") if k in span}},
    }
    if created is not None:
        row["created_at"] = created
    return row


def _spans(document: Any) -> list[dict[str, Any]] | None:
    """The spans of an OTLP export, a list of spans or one span; None when it is not spans."""
    if isinstance(document, dict) and "resourceSpans" in document:
        spans = []
        for resource in document.get("resourceSpans") or ():
            for scope in (
                (resource or {}).get("scopeSpans") or (resource or {}).get("instrumentationLibrarySpans") or ()
            ):
                spans.extend((scope or {}).get("spans") or ())
        return spans
    if isinstance(document, dict) and "attributes" in document and "request" not in document:
        return [document]
    if isinstance(document, list) and all(isinstance(s, dict) and "attributes" in s for s in document):
        return document
    return None


def _records(document: Any, counts: dict[str, int]) -> list[dict[str, Any]]:
    spans = _spans(document)
    if spans is not None:
        rows = []
        for i, span in enumerate(spans):
            if not isinstance(span, dict):
                raise BadRecord(f"spans[{i}]", "must be an object")
            try:
                row = otel_span(span)
            except BadRecord as exc:
                raise BadRecord(
                    f"spans[{i}].{exc.field}" if len(spans) > 1 else exc.field, str(exc).split(": ", 1)[1]
                ) from None
            if row is None:
                counts["skipped"] += 1
            else:
                counts["otel"] += 1
                rows.append(row)
        return rows
    if isinstance(document, dict):
        counts["openai"] += 1
        return [openai_pair(document)]
    raise BadRecord("(line)", "must be a JSON object: a request/response pair or OpenTelemetry spans")


def read_traffic(path: Path, *, policy: str = "redact") -> Ingested:
    """Every exchange in ``path``, checked and with the PHI policy applied (nothing written yet)."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    counts = {"openai": 0, "otel": 0, "skipped": 0}
    rows: list[dict[str, Any]] = []
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    whole = None
    if path.suffix.lower() == ".json" or stripped.startswith("["):
        try:
            whole = json.loads(text)
        except ValueError:
            whole = None  # maybe JSON lines after all
    try:
        if whole is not None:
            rows = _records(whole, counts)
        else:
            for number, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    document = json.loads(line)
                except ValueError as exc:
                    raise UserError(f"{path}:{number}: not JSON ({exc.msg})") from None
                try:
                    rows.extend(_records(document, counts))
                except BadRecord as exc:
                    raise UserError(f"{path}:{number}: {exc}") from None
    except BadRecord as exc:
        raise UserError(f"{path}: {exc}") from None
    entities: dict[str, int] = {}
    for row in rows:
        for kind, n in apply_phi(row, policy).items():
            entities[kind] = entities.get(kind, 0) + n
    return Ingested(rows, counts["skipped"], {"openai": counts["openai"], "otel": counts["otel"]}, entities)
