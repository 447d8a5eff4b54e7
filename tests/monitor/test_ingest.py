"""``medops monitor ingest``: OpenAI-style pairs (JSONL) and OpenTelemetry GenAI spans (OTLP JSON and
one span per line), the PHI policy, and a bad line naming file:line and the field."""

from __future__ import annotations

import json

from medops.store.exchanges import exchanges
from medops.store.repository import Store


def _pair(i: int, text: str = "I have a headache.", **extra) -> dict:
    return {
        "request": {"model": "prod-model", "messages": [{"role": "user", "content": text}]},
        "response": {
            "model": "prod-model-2025",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": f"answer {i}"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5},
        },
        "created_at": "2025-06-01T10:00:00Z",
        "latency_s": 0.8,
        "metadata": {"department": "ER", "application": "triage", "conversation_id": f"c{i}"},
        **extra,
    }


def _otlp() -> dict:
    def attr(key, value):
        if isinstance(value, int):
            return {"key": key, "value": {"intValue": str(value)}}
        if isinstance(value, list):
            return {"key": key, "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}}}
        return {"key": key, "value": {"stringValue": value}}

    span = {
        "traceId": "5b8aa5a2d2c872e8321cf37308d69df2",
        "spanId": "051581bf3cb55c13",
        "name": "chat prod-model",
        "startTimeUnixNano": "1748772000000000000",
        "endTimeUnixNano": "1748772001500000000",
        "attributes": [
            attr("gen_ai.operation.name", "chat"),
            attr("gen_ai.request.model", "prod-model"),
            attr("gen_ai.response.model", "prod-model-2025"),
            attr("gen_ai.usage.input_tokens", 30),
            attr("gen_ai.usage.output_tokens", 9),
            attr("gen_ai.response.finish_reasons", ["stop"]),
            attr("gen_ai.conversation.id", "otel-conv"),
            attr(
                "gen_ai.input.messages",
                json.dumps(
                    [
                        {
                            "role": "user",
                            "parts": [{"type": "text", "content": "Patient Mr. John Smith, DOB 03/12/1938."}],
                        }
                    ]
                ),
            ),
            attr(
                "gen_ai.output.messages",
                json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": "See a doctor."}],
                            "finish_reason": "stop",
                        }
                    ]
                ),
            ),
        ],
        "status": {"code": 1},
    }
    other = {"traceId": "5b8a", "spanId": "aa", "name": "db query", "attributes": [attr("db.system", "postgresql")]}
    return {"resourceSpans": [{"scopeSpans": [{"spans": [span, other]}]}]}


def test_ingest_openai_pairs(cli, tmp_path):
    path = tmp_path / "traffic.jsonl"
    rows = [_pair(1), _pair(2, "환자 김민수 님, 연락처 010-1234-5678 입니다.")]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    result = cli.run("monitor", "ingest", str(path), "--json", check=True).json()
    assert result["ingested"] == 2 and result["formats"] == {"openai": 2, "otel": 0}
    assert result["phi_policy"] == "redact" and result["phi_entities"]["PHONE_NUMBER"] == 1
    stored = exchanges(Store.open(str(cli.db)))
    assert [r.conversation_id for r in stored] == ["c1", "c2"]
    first, second = stored
    assert (first.source, first.model, first.response_model, first.department, first.application) == (
        "ingest",
        "prod-model",
        "prod-model-2025",
        "ER",
        "triage",
    )
    assert (first.status, first.prompt_tokens, first.completion_tokens, first.finish_reason) == (200, 12, 5, "stop")
    assert first.latency_s == 0.8 and first.response == "answer 1"
    assert first.created_at.year == 2025
    assert "김민수" not in second.messages[0]["content"] and "[PHONE_NUMBER_1]" in second.messages[0]["content"]


def test_ingest_otel_spans_otlp_json_and_span_lines(cli, tmp_path):
    otlp = tmp_path / "spans.json"
    otlp.write_text(json.dumps(_otlp()), encoding="utf-8")
    result = cli.run("monitor", "ingest", str(otlp), "--json", "--phi-policy", "block", check=True).json()
    assert result["ingested"] == 1 and result["skipped_spans"] == 1 and result["formats"]["otel"] == 1
    (row,) = exchanges(Store.open(str(cli.db)))
    assert (row.model, row.response_model, row.prompt_tokens, row.completion_tokens) == (
        "prod-model",
        "prod-model-2025",
        30,
        9,
    )
    assert row.conversation_id == "otel-conv" and row.finish_reason == "stop" and row.status == 200
    assert abs(row.latency_s - 1.5) < 1e-6
    assert row.messages is None and row.response is None and row.notes["phi"]["policy"] == "block"

    lines = tmp_path / "spans.jsonl"  # the SDK console exporter's shape: attributes as an object
    span = {
        "name": "chat",
        "start_time": "2025-06-01T10:00:00Z",
        "end_time": "2025-06-01T10:00:02Z",
        "attributes": {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "m2",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "hello",
            "gen_ai.completion.0.content": "hi",
            "gen_ai.usage.input_tokens": 3,
        },
        "status": {"status_code": "ERROR", "description": "boom"},
    }
    lines.write_text(json.dumps(span) + "\n", encoding="utf-8")
    cli.run("monitor", "ingest", str(lines), "--phi-policy", "allow", check=True)
    newest = exchanges(Store.open(str(cli.db)), newest_first=True, limit=1)[0]
    assert newest.model == "m2" and newest.messages == [{"role": "user", "content": "hello"}]
    assert newest.response == "hi" and newest.error and newest.status is None and newest.latency_s == 2.0


def test_a_bad_line_exits_2_naming_file_line_and_field(cli, tmp_path):
    path = tmp_path / "bad.jsonl"
    bad = _pair(2)
    bad["response"]["usage"]["prompt_tokens"] = "many"
    path.write_text(json.dumps(_pair(1)) + "\n\n" + json.dumps(bad) + "\n", encoding="utf-8")
    result = cli.run("monitor", "ingest", str(path))
    assert result.returncode == 2
    assert f"{path}:3:" in result.stderr and "response.usage.prompt_tokens" in result.stderr
    assert "Traceback" not in result.stderr
    assert not exchanges(Store.open(str(cli.db)))  # nothing written: every line is checked first

    path.write_text('{"request": {"model": "m"}}\nnot json\n', encoding="utf-8")
    result = cli.run("monitor", "ingest", str(path))
    assert result.returncode == 2 and f"{path}:1:" in result.stderr and "request.messages" in result.stderr
