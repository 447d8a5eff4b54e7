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


# --- limits and faults (issue 19, items 9 and 10) ------------------------------------------------


def raw_post(base: str, headers: dict[str, str], parts: list[bytes], read_timeout: float = 10.0) -> tuple[int, dict]:
    """POST over a plain socket: send the head and ``parts`` (stopping if the server answers and
    closes), then read the answer without ever finishing the body. Returns (status, JSON body)."""
    host, port = base.removeprefix("http://").split(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": host, "Content-Type": "application/json", **headers}.items())
    with socket.create_connection((host, int(port)), timeout=read_timeout) as sock:
        sock.sendall(f"POST /v1/chat/completions HTTP/1.1\r\n{head}\r\n".encode())
        for part in parts:
            try:
                sock.sendall(part)
            except OSError:
                break
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + _length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head_bytes, _, body = answer.partition(b"\r\n\r\n")
    return int(head_bytes.split(b" ")[1]), json.loads(body)


def _length(answer: bytes) -> int:
    head = answer.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            return int(line.split(":")[1])
    return 0


def test_a_declared_body_over_the_limit_is_refused_413_before_it_is_read(gateway):
    base, _db = gateway
    # 100 MB announced, 64 KB sent: the answer comes now (the default limit is 16 MB), not after 100 MB
    started = time.monotonic()
    status, body = raw_post(base, {"Content-Length": str(100 * 2**20)}, [b'{"messages": [' + b" " * 65536])
    assert status == 413 and time.monotonic() - started < 5
    assert body["error"]["type"] == "request_too_large" and "16 MB" in body["error"]["message"]
    samples = metrics(base)
    assert total(samples["medops_gateway_requests"], "medops_gateway_requests_total", http_response_status_code="413")
    assert chat(base, "still serving after a refused body").status_code == 200


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams_in(procs, upstream):
    db = procs.tmp / "limit.db"
    base = procs.gateway(upstream, "--max-body-mb", "1", db=str(db))
    megabyte = b" " * 2**20
    chunk = f"{len(megabyte):x}\r\n".encode() + megabyte + b"\r\n"
    # 3 MB in 1 MB chunks and no final chunk: the body never ends, the 413 must come anyway
    status, body = raw_post(base, {"Transfer-Encoding": "chunked"}, [chunk, chunk, chunk])
    assert status == 413 and "1 MB" in body["error"]["message"]
    # a body under the limit is served, however it is sent
    small = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": "x" * 500_000}]}).encode()
    assert httpx.post(base + "/v1/chat/completions", content=iter([small]), timeout=30).status_code == 200
    # a whole 100 MB body from an ordinary client gets the 413 too (not a broken connection), and
    # the gateway does not grow by it
    pid = procs.running[-1].pid
    before = _rss_mb(pid)
    big = httpx.post(base + "/v1/chat/completions", content=b"{" + b" " * (100 * 2**20), timeout=60)
    assert big.status_code == 413 and big.json()["error"]["type"] == "request_too_large"
    assert _rss_mb(pid) - before < 30
    assert httpx.post(base + "/v1/embeddings", content=b" " * (2 * 2**20), timeout=60).status_code == 413


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_text_stored_per_exchange_is_capped_and_flagged(gateway):
    from medops.monitor.recorder import MAX_STORED_CHARS

    base, db = gateway
    words = "the patient reports a mild headache and some nausea " * (MAX_STORED_CHARS // 50 + 2000)
    answer = chat(base, words, headers={"X-Medops-Conversation": "conv-long"})
    assert answer.status_code == 200
    (row,) = recorded(db, 1, timeout=60, conversation_id="conv-long")
    stored = row.messages[0]["content"]
    assert len(stored) + len(row.response or "") <= MAX_STORED_CHARS
    assert words.startswith(stored) and words[len(stored)] == " "  # cut between words, nothing reordered
    assert row.notes["truncated"] == {
        "max_chars": MAX_STORED_CHARS,
        "messages_chars": len(words) + len("user"),  # every string of the messages
        "response_chars": len(answer.json()["choices"][0]["message"]["content"]),
    }
    short = chat(base, "a short one", headers={"X-Medops-Conversation": "conv-short"})
    assert short.status_code == 200
    (row,) = recorded(db, 1, conversation_id="conv-short")
    assert "truncated" not in row.notes


def test_an_upstream_200_that_is_not_json_is_a_failure(gateway):
    base, db = gateway
    answer = chat(base, "behind a captive portal {model-html:1}", headers={"X-Medops-Conversation": "conv-html"})
    assert answer.status_code == 502
    assert answer.json()["error"]["type"] == "upstream_error" and "not JSON" in answer.json()["error"]["message"]
    assert "Sign in" not in answer.text  # the upstream's page is not passed on
    (row,) = recorded(db, 1, conversation_id="conv-html")
    assert row.status == 200 and row.error and "not JSON" in row.error and row.response is None
    samples = metrics(base)
    assert total(samples["medops_gateway_errors"], "medops_gateway_errors_total", error_type="invalid_response") >= 1


def test_a_timeout_answered_504_is_counted_as_504(procs, upstream):
    db = procs.tmp / "timeout.db"
    base = procs.gateway(upstream, "--timeout", "1", db=str(db))
    answer = chat(base, "too slow {model-slow:1}", headers={"X-Medops-Conversation": "conv-slow"})
    assert answer.status_code == 504
    (row,) = recorded(db, 1, conversation_id="conv-slow")  # counted as it is recorded (a batch, ~50 ms)
    assert row.status is None and "timed out" in row.error
    requests = metrics(base)["medops_gateway_requests"]
    assert total(requests, "medops_gateway_requests_total", http_response_status_code="504") == 1
    assert total(requests, "medops_gateway_requests_total", http_response_status_code="502") == 0


def test_a_stream_that_ends_without_done_or_finish_reason_is_incomplete(gateway):
    base, db = gateway
    cut = chat(base, "cut short {model-cutoff:1}", stream=True, headers={"X-Medops-Conversation": "conv-cut"})
    assert cut.status_code == 200 and "[DONE]" not in cut.text  # the client got what the upstream sent
    (row,) = recorded(db, 1, conversation_id="conv-cut")
    assert row.error and "incomplete" in row.error and row.finish_reason is None
    assert row.response  # the words that did arrive are kept
    samples = metrics(base)
    assert total(samples["medops_gateway_errors"], "medops_gateway_errors_total", error_type="stream_incomplete") == 1
    whole = chat(base, "whole stream", stream=True, headers={"X-Medops-Conversation": "conv-whole"})
    (row,) = recorded(db, 1, conversation_id="conv-whole")
    assert whole.text.endswith("data: [DONE]\n\n") and row.error is None and row.finish_reason == "stop"


def test_requests_in_flight_gauge_follows_the_requests(gateway):
    base, _db = gateway

    def gauge() -> float:
        return total(metrics(base)["medops_gateway_requests_in_flight"], "medops_gateway_requests_in_flight")

    with ThreadPoolExecutor(20) as pool:
        # each waits 5 s for its first byte, then streams ~12 words 0.5 s apart: ~11 s in flight
        text = "in flight {i} {{model-slow:1}} {{token-delay:0.5}}"
        slow = [pool.submit(chat, base, text.format(i=i), stream=True) for i in range(20)]
        deadline = time.monotonic() + 9
        seen = 0.0
        while time.monotonic() < deadline and seen < 20:
            seen = gauge()
            time.sleep(0.1)
        assert seen == 20
        assert all(f.result().status_code == 200 for f in slow)
    assert gauge() == 0


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie has exited


def test_redaction_worker_exits_when_the_gateway_is_killed(procs, upstream):
    import signal

    db = procs.tmp / "worker.db"
    base = procs.gateway(upstream, "--phi-policy", "redact", db=str(db))
    gateway_proc = procs.running[-1]
    assert chat(base, "Dr. John Smith asks", headers={"X-Medops-Conversation": "conv-w"}).status_code == 200
    recorded(db, 1, conversation_id="conv-w")  # redacted by the worker process, so it is running
    workers = _children(gateway_proc.pid)
    assert workers and all(_alive(w) for w in workers)
    os.kill(gateway_proc.pid, signal.SIGKILL)
    gateway_proc.wait(10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)]


def test_the_record_queue_is_bounded_in_bytes_too(tmp_path):
    from medops.monitor.recorder import Recorder

    recorder = Recorder(str(tmp_path / "q.db"), max_queued_mb=1)  # not started: nothing is taken off
    row = {"source": "gateway", "route": "/v1/chat/completions"}
    assert recorder.submit(row, 600_000)
    assert not recorder.submit(row, 600_000)  # 1.2 MB would be queued
    assert recorder.submit(row, 100_000) and recorder.submit(row)
    assert recorder.dropped == 1 and recorder.queue.qsize() == 3
    samples = recorder.metrics.dropped.collect()[0].samples
    assert total(samples, "medops_gateway_record_dropped_total", reason="queue_full") == 1


def test_capping_keeps_order_roles_and_a_share_for_the_answer():
    from medops.monitor.recorder import _string_chars, cap_stored_text

    sent = [
        {"role": "system", "content": "be brief " * 50},
        {"role": "user", "content": [{"type": "text", "text": "word " * 200}]},
        {"role": "user", "content": "the last question " * 20},
        {"role": "user", "content": "never reached"},
    ]
    row = {"messages": sent, "response": "answer " * 200, "notes": {"phi": {"policy": "allow"}}}
    cap_stored_text(row, 1000)
    assert 490 <= len(row["response"]) <= 500 and row["response"].endswith("answer")  # half of the cap
    system, user, *rest = row["messages"]
    assert system == sent[0]  # kept whole, in order
    assert user["role"] == "user" and user["content"][0]["type"] == "text"
    assert sent[1]["content"][0]["text"].startswith(user["content"][0]["text"])
    assert len(rest) <= 1 and all(sent[2]["content"].startswith(m["content"]) for m in rest)  # the rest left out
    assert _string_chars(row["messages"]) + len(row["response"]) <= 1000 + 8  # roles and types are kept whole
    assert row["notes"] == {
        "phi": {"policy": "allow"},
        "truncated": {"max_chars": 1000, "messages_chars": 1845, "response_chars": 1400},
    }
    short = {"messages": [{"role": "user", "content": "hi"}], "response": "hello"}
    cap_stored_text(short, 1000)
    assert short == {"messages": [{"role": "user", "content": "hi"}], "response": "hello"}


def test_an_exchange_written_again_with_its_record_id_is_stored_once(tmp_path):
    """A write retried after an outage whose first attempt had committed stores nothing twice."""
    from medops.store.exchanges import count_exchanges, insert_exchanges

    store = Store.open(str(tmp_path / "again.db"))
    rows = [{"source": "gateway", "route": "/v1/chat/completions", "record_id": f"r{i}"} for i in range(3)]
    insert_exchanges(store, rows)
    insert_exchanges(store, [*rows, {"source": "gateway", "route": "/v1/chat/completions", "record_id": "r3"}])
    insert_exchanges(store, [{"source": "ingest", "route": "/v1/chat/completions"}] * 2)  # no id: always stored
    assert count_exchanges(store) == 6
