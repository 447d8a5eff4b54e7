"""``medops gateway`` as a real process, in front of loopback upstreams (``fake_openai`` processes):
pass-through (plain and streamed), recording, PHI, /metrics (parsed as Prometheus text), A/B,
shadow, gateway keys, and a store that is down."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from medops.store.exchanges import exchanges
from medops.store.repository import Store

SECRET = "sk-test-SECRET-do-not-leak-0123456789"
GATEWAY_KEY = "gw-key-SECRET-0987654321"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp: Path, db: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MEDOPS_"))}
    env.update({"MEDOPS_DB": db, "MEDOPS_CACHE_DIR": str(tmp / "cache"), "NO_COLOR": "1", "GW_KEY": GATEWAY_KEY})
    return env


def _wait(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not ready after {timeout} s")


class Procs:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.running: list[subprocess.Popen] = []

    def upstream(self, *extra: str) -> str:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "medops.testing.fake_openai", "--port", str(port), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.running.append(proc)
        base = f"http://127.0.0.1:{port}/v1"
        _wait(base + "/models", proc)
        return base

    def gateway(self, upstream: str, *extra: str, db: str | None = None, env: dict | None = None) -> str:
        port = free_port()
        db = db or str(self.tmp / f"gw{port}.db")
        proc = subprocess.Popen(
            [sys.executable, "-m", "medops.cli.app", "gateway", "--upstream", upstream, "--port", str(port), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**_env(self.tmp, db), **(env or {})},
        )
        self.running.append(proc)
        base = f"http://127.0.0.1:{port}"
        _wait(base + "/healthz", proc, timeout=60)
        return base

    def stop(self) -> None:
        for proc in self.running:
            proc.terminate()
        for proc in self.running:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def procs(tmp_path_factory):
    running = Procs(tmp_path_factory.mktemp("gateway"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def upstream(procs) -> str:
    return procs.upstream()


@pytest.fixture(scope="module")
def candidate(procs) -> str:
    return procs.upstream()


@pytest.fixture(scope="module")
def gateway(procs, upstream) -> tuple[str, Path]:
    db = procs.tmp / "main.db"
    return procs.gateway(upstream, db=str(db)), db


def chat(base: str, text: str, *, stream: bool = False, headers: dict | None = None, model: str = "fake-model"):
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return httpx.post(
        base + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {SECRET}", **(headers or {})},
        timeout=30,
    )


def metrics(base: str) -> dict[str, list]:
    """Every sample of /metrics by metric family name (parsed by prometheus_client's text parser)."""
    text = httpx.get(base + "/metrics", timeout=10).text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def total(samples: list, name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def recorded(db: Path, n: int, timeout: float = 15.0, **where) -> list:
    deadline = time.monotonic() + timeout
    rows: list = []
    store = Store.open(str(db))
    while time.monotonic() < deadline:
        rows = [r for r in exchanges(store) if all(getattr(r, k) == v for k, v in where.items())]
        if len(rows) >= n:
            return rows
        time.sleep(0.2)
    raise AssertionError(f"{len(rows)} exchanges recorded, expected {n}")


def test_plain_and_streamed_pass_through_byte_identical_and_are_recorded(gateway, upstream):
    base, db = gateway
    headers = {"X-Medops-Department": "ER", "X-Medops-Application": "triage-bot", "X-Medops-Conversation": "conv-1"}
    direct = chat(upstream.removesuffix("/v1"), "plain question")
    proxied = chat(base, "plain question", headers=headers)
    assert proxied.status_code == 200
    body = proxied.json()
    assert body["choices"][0]["message"]["content"] == direct.json()["choices"][0]["message"]["content"]
    assert {k: v for k, v in body.items() if k != "created"} == {
        k: v for k, v in direct.json().items() if k != "created"
    }

    streamed_direct = chat(upstream.removesuffix("/v1"), "streamed question", stream=True)
    streamed = chat(base, "streamed question", stream=True, headers={**headers, "X-Medops-Conversation": "conv-2"})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    strip = lambda text: [line for line in text.split("\n") if '"created"' not in line]  # noqa: E731
    assert strip(streamed.text) == strip(streamed_direct.text)
    assert streamed.text.endswith("data: [DONE]\n\n")

    rows = recorded(db, 1, conversation_id="conv-1") + recorded(db, 1, conversation_id="conv-2")
    plain, stream = rows
    for row in rows:
        assert (row.source, row.route, row.model, row.arm, row.status) == (
            "gateway",
            "/v1/chat/completions",
            "fake-model",
            "primary",
            200,
        )
        assert (row.department, row.application) == ("ER", "triage-bot")
        assert row.prompt_tokens and row.completion_tokens and row.finish_reason == "stop"
        assert row.latency_s > 0
    assert not plain.stream and plain.ttft_s is None
    assert stream.stream and 0 < stream.ttft_s <= stream.latency_s
    assert plain.response == body["choices"][0]["message"]["content"]
    assert stream.messages == [{"role": "user", "content": "streamed question"}]


def test_first_chunk_reaches_the_client_before_the_upstream_finishes(gateway):
    base, db = gateway
    body = {
        "model": "fake-model",
        "stream": True,
        "messages": [{"role": "user", "content": "slow tokens please {token-delay:0.25} one two three four"}],
    }
    started = time.perf_counter()
    arrivals = []
    with httpx.stream("POST", base + "/v1/chat/completions", json=body, timeout=30) as response:
        for chunk in response.iter_raw():
            if b'"content": "' in chunk and b'"content": ""' not in chunk:
                arrivals.append(time.perf_counter() - started)
    finished = time.perf_counter() - started
    # the answer has ~12 words, 0.25 s apart: the first word arrives ~0.25 s in, the last ~3 s in
    assert finished > 2.0
    assert arrivals[0] < 1.0
    deadline = time.monotonic() + 15
    slow: list = []
    while not slow and time.monotonic() < deadline:
        rows = exchanges(Store.open(str(db)))
        slow = [r for r in rows if r.messages and "slow tokens" in r.messages[0]["content"]]
        time.sleep(0.2)
    assert slow and 0.2 < slow[0].ttft_s < 1.0


def test_a_client_leaving_mid_stream_ends_the_relay_and_is_recorded(gateway):
    base, db = gateway
    body = {
        "model": "fake-model",
        "stream": True,
        "messages": [{"role": "user", "content": "leaving early {token-delay:0.5} one two three four five six"}],
    }
    started = time.monotonic()
    with httpx.stream("POST", base + "/v1/chat/completions", json=body, timeout=30) as response:
        for chunk in response.iter_raw():
            if b'"content": "' in chunk and b'"content": ""' not in chunk:
                break  # the first word arrived: the user closes the tab
    # ~12 words 0.5 s apart: the upstream would stream for ~6 s; the gateway stops relaying at once
    [row] = recorded(db, 1, timeout=5.0, error="client disconnected")
    assert "leaving early" in row.messages[0]["content"] and row.stream
    assert row.latency_s < 3.0 and time.monotonic() - started < 5.0
    assert chat(base, "still serving after a client left").status_code == 200


def test_authorization_is_forwarded_and_keys_are_never_stored(gateway):
    base, db = gateway
    answer = chat(base, "who am I", model="fake-unauthorized", headers={"X-Medops-Conversation": "conv-auth"})
    assert answer.status_code == 401
    assert SECRET in answer.json()["error"]["message"]  # the upstream saw the client's key
    (row,) = recorded(db, 1, conversation_id="conv-auth")
    assert row.status == 401 and row.error == "upstream answered 401" and row.response is None
    assert SECRET not in db.read_bytes().decode("latin-1")
    samples = metrics(base)
    assert total(samples["medops_gateway_errors"], "medops_gateway_errors_total", error_type="401") >= 1


def test_phi_is_redacted_in_stored_text_by_default(gateway):
    base, db = gateway
    text = "환자 김민수 님, 연락처 010-1234-5678. Dr. John Smith asks about metformin 500 mg."
    assert chat(base, text, headers={"X-Medops-Conversation": "conv-phi"}).status_code == 200
    (row,) = recorded(db, 1, conversation_id="conv-phi")
    stored = row.messages[0]["content"]
    assert "김민수" not in stored and "010-1234-5678" not in stored and "John Smith" not in stored
    assert "[PERSON_1]" in stored and "[PHONE_NUMBER_1]" in stored and "metformin 500 mg" in stored
    assert row.notes["phi"]["policy"] == "redact"
    assert row.notes["phi"]["entities"]["PERSON"] >= 2
    samples = metrics(base)
    redacted = samples["medops_gateway_phi_entities_redacted"]
    assert total(redacted, "medops_gateway_phi_entities_redacted_total", entity="PHONE_NUMBER") >= 1


def test_metrics_parse_as_prometheus_text_with_genai_labels(gateway):
    base, _db = gateway
    chat(base, "count me")
    samples = metrics(base)
    for family in (
        "medops_gateway_requests",
        "medops_gateway_errors",
        "medops_gateway_request_duration_seconds",
        "medops_gateway_time_to_first_token_seconds",
        "medops_gateway_overhead_seconds",
        "medops_gateway_tokens",
        "medops_gateway_record_dropped",
        "medops_gateway_phi_entities_redacted",
        "medops_online_score",
    ):
        assert family in samples, family
    requests = [s for s in samples["medops_gateway_requests"] if s.name == "medops_gateway_requests_total"]
    chat_ok = [s for s in requests if s.labels["gen_ai_operation_name"] == "chat"]
    assert set(chat_ok[0].labels) == {
        "gen_ai_request_model",
        "gen_ai_operation_name",
        "arm",
        "http_response_status_code",
    }
    assert total(requests, "medops_gateway_requests_total", gen_ai_request_model="fake-model") >= 3
    assert total(samples["medops_gateway_tokens"], "medops_gateway_tokens_total", gen_ai_token_type="input") > 0
    assert total(samples["medops_gateway_record_dropped"], "medops_gateway_record_dropped_total") == 0
    hist = samples["medops_gateway_time_to_first_token_seconds"]
    assert total(hist, "medops_gateway_time_to_first_token_seconds_count") >= 1
    overhead = samples["medops_gateway_overhead_seconds"]
    assert total(overhead, "medops_gateway_overhead_seconds_count", kind="plain") >= 1
    assert total(overhead, "medops_gateway_overhead_seconds_count", kind="stream") >= 1


def test_online_scores_from_the_store_are_exposed(procs, upstream):
    from medops.store.schema import MonitorScore, utcnow

    db = procs.tmp / "scores.db"
    store = Store.open(str(db))
    with store.session() as s:
        now = utcnow()
        for value in (0.5, 0.71):
            s.add(
                MonitorScore(source="online", window_start=now, window_end=now, tag="all", metric="score", value=value)
            )
    base = procs.gateway(upstream, db=str(db))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        gauge = metrics(base)["medops_online_score"]
        if gauge:
            break
        time.sleep(0.2)
    assert [(s.labels, s.value) for s in gauge] == [({"tag": "all", "metric": "score"}, 0.71)]


def test_store_unavailable_every_request_still_succeeds_and_drops_are_counted(procs, upstream):
    refusing = f"postgresql+psycopg://medops:pw@127.0.0.1:{free_port()}/medops"
    base = procs.gateway(upstream, db=refusing)

    def one(i: int) -> int:
        return chat(base, f"question {i}", stream=i % 2 == 0).status_code

    n = 200
    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(one, range(n)))
    assert statuses == [200] * n
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        dropped = total(metrics(base)["medops_gateway_record_dropped"], "medops_gateway_record_dropped_total")
        if dropped >= n:
            break
        time.sleep(0.2)
    assert dropped == n
    assert httpx.get(base + "/healthz").json()["store"] == "unavailable"


def test_ab_split_is_seeded_sticky_and_near_the_share(procs, upstream, candidate):
    db = procs.tmp / "ab.db"
    base = procs.gateway(upstream, "--candidate", candidate, "--split", "0.3", "--seed", "7", db=str(db))
    n = 150
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: chat(base, f"q {i}", headers={"X-Medops-Conversation": f"c{i}"}), range(n)))
    rows = recorded(db, n)
    arms = {r.conversation_id: r.arm for r in rows}
    share = sum(a == "candidate" for a in arms.values()) / n
    assert 0.18 <= share <= 0.42, share
    # the same assignment as the routing function computes for this seed
    from medops.monitor.routing import Routing

    routing = Routing(candidate=candidate, split=0.3, seed=7)
    assert all(arm == routing.arm(key) for key, arm in arms.items())
    # sticky: a conversation's later turns go to the same arm; without the header, the first user message decides
    for i in range(10):
        chat(base, "another turn", headers={"X-Medops-Conversation": f"c{i}"})
    first = [{"role": "user", "content": "same opening"}]
    for turn in range(3):
        messages = (
            first
            if turn == 0
            else [*first, {"role": "assistant", "content": "ok"}, {"role": "user", "content": f"turn {turn}"}]
        )
        httpx.post(base + "/v1/chat/completions", json={"model": "fake-model", "messages": messages}, timeout=30)
    rows = recorded(db, n + 13)
    by_conversation: dict[str, set[str]] = {}
    for r in rows:
        by_conversation.setdefault(r.conversation_id, set()).add(r.arm)
    assert all(len(a) == 1 for a in by_conversation.values())
    hashed = [r for r in rows if r.conversation_id.startswith("h:")]
    assert len(hashed) == 3 and len({r.conversation_id for r in hashed}) == 1
    # the candidate really answered its share (the upstreams count their calls)
    stats = httpx.get(candidate.removesuffix("/v1") + "/stats").json()
    assert stats["calls"] == sum(r.arm == "candidate" for r in rows)


def test_shadow_answers_are_recorded_never_returned(procs, upstream):
    shadow = procs.upstream()
    db = procs.tmp / "shadow.db"
    base = procs.gateway(upstream, "--shadow", shadow, db=str(db))
    answers = [
        chat(base, "shadowed question", headers={"X-Medops-Conversation": "s1"}),
        chat(base, "shadowed stream", stream=True, headers={"X-Medops-Conversation": "s2"}),
    ]
    assert all(a.status_code == 200 for a in answers)
    rows = recorded(db, 4)
    primary = {r.pair_id: r for r in rows if r.arm == "primary"}
    shadows = [r for r in rows if r.arm == "shadow"]
    assert len(primary) == 2 and len(shadows) == 2
    for copy in shadows:
        assert copy.pair_id in primary
        assert copy.status == 200 and copy.response and copy.completion_tokens
        assert copy.conversation_id == primary[copy.pair_id].conversation_id
    stream_copy = next(r for r in shadows if r.stream)
    assert stream_copy.ttft_s is not None
    # what the client got came from the primary only: one answer, one stream
    assert (
        answers[0].json()["choices"][0]["message"]["content"]
        == primary[next(r.pair_id for r in shadows if not r.stream)].response
    )
    assert answers[1].text.count("data: [DONE]") == 1
    assert httpx.get(shadow.removesuffix("/v1") + "/stats").json()["calls"] == 2


def test_gateway_key_is_required_and_not_sent_upstream(procs, upstream):
    base = procs.gateway(upstream, "--api-key-env", "GW_KEY", "--upstream-key-env", "UP_KEY", env={"UP_KEY": SECRET})
    body = {"model": "fake-unauthorized", "messages": [{"role": "user", "content": "hi"}]}
    url = base + "/v1/chat/completions"
    assert httpx.post(url, json=body, timeout=30).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
    answer = httpx.post(url, json=body, headers={"X-Medops-Key": GATEWAY_KEY}, timeout=30)
    # the upstream's 401 echoes the key it got: the upstream key, never the gateway's
    assert answer.status_code == 401 and SECRET in answer.json()["error"]["message"]
    assert GATEWAY_KEY not in answer.text
    models = httpx.get(base + "/v1/models", headers={"Authorization": f"Bearer {GATEWAY_KEY}"}, timeout=30)
    assert models.status_code == 200 and json.loads(models.text)["object"] == "list"
