"""Patient data outside message text (issue 19, item 1), through the real gateway: names, tool-call
arguments and tool results in the request, and the answer's tool calls, plain and streamed, are
stored redacted by the one walker (``medops.content``)."""

from __future__ import annotations

import json

import httpx
import pytest
from test_gateway import SECRET, Procs, recorded

PATIENT, PHONE, MRN = "John Smith", "010-1234-5678", "88120034"
TOOLS = [{"type": "function", "function": {"name": "lookup_patient", "parameters": {"type": "object"}}}]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    procs = Procs(tmp_path_factory.mktemp("gateway-tools"))
    try:
        upstream = procs.upstream()
        db = procs.tmp / "tools.db"
        yield procs.gateway(upstream, db=str(db)), db
    finally:
        procs.stop()


def request(conversation: str, *, stream: bool) -> dict:
    body = {
        "model": "fake-model",
        "user": f"{PATIENT} ({PHONE})",
        "tools": TOOLS,
        "messages": [
            {"role": "system", "content": "You help clinicians."},
            {"role": "user", "name": "John_Smith", "content": f"Patient {PATIENT}, MRN: {MRN}, has a fever."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_0",
                        "type": "function",
                        "function": {"name": "lookup_patient", "arguments": json.dumps({"name": PATIENT, "mrn": MRN})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_0", "content": f"{PATIENT}, phone {PHONE}, allergic to penicillin"},
            {"role": "user", "content": [{"type": "text", "text": f"Call {PATIENT} at {PHONE} about the penicillin."}]},
        ],
    }
    if stream:
        body |= {"stream": True}
    return body


def send(base: str, body: dict, conversation: str) -> httpx.Response:
    return httpx.post(
        base + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {SECRET}", "X-Medops-Conversation": conversation},
        timeout=30,
    )


@pytest.mark.parametrize("stream", [False, True])
def test_every_string_of_a_tool_calling_exchange_is_stored_redacted(gateway, stream):
    base, db = gateway
    conversation = f"tools-{stream}"
    answer = send(base, request(conversation, stream=stream), conversation)
    assert answer.status_code == 200
    if not stream:  # the client got the tool call as the upstream sent it, PHI included
        assert PATIENT in answer.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    (row,) = recorded(db, 1, timeout=120, conversation_id=conversation)  # the first batch starts the redaction process
    stored = json.dumps([row.messages, row.response, row.response_tool_calls], ensure_ascii=False)
    for value in (PATIENT, PHONE, MRN, "John_Smith"):
        assert value not in stored, value
    assert "penicillin" in stored and "fever" in stored  # clinical text is kept
    assert row.messages[1]["name"] != "John_Smith"
    arguments = json.loads(row.messages[2]["tool_calls"][0]["function"]["arguments"])
    assert arguments["name"].startswith("[PERSON") and arguments["mrn"].startswith("[MRN")
    assert row.messages[3]["tool_call_id"] == "call_0" and "[PHONE_NUMBER" in row.messages[3]["content"]
    (call,) = row.response_tool_calls  # the answer's tool call, streamed deltas joined
    assert call["id"] == "call_fake_1" and call["function"]["name"] == "lookup_patient"
    query = json.loads(call["function"]["arguments"])["query"]
    assert "penicillin" in json.dumps(query) and PATIENT not in json.dumps(query)
    assert row.notes["phi"]["entities"]["PERSON"] >= 1
