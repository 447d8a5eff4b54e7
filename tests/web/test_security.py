"""The dashboard attacked: each test is a finding of the security review (docs/DASHBOARD.md),
reproduced with real requests against the app, and kept so that it stays fixed."""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest
from dashboard_store import PASSWORD, build, start_server
from fastapi.testclient import TestClient

from medops.audit import flush
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread
from medops.web import create_app


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("security")
    with ServerThread(FakeOpenAIServer(FakeBehaviour())) as fake:
        found = build(tmp, fake.base_url)
        found.fake_base_url = fake.base_url  # type: ignore[attr-defined]
        found.app = create_app(str(found.db))  # type: ignore[attr-defined]
        yield found


def bearer(dash, role: str) -> TestClient:
    return TestClient(dash.app, follow_redirects=False, headers={"Authorization": f"Bearer {dash.tokens[role]}"})


def signed_in(dash, name: str) -> tuple[TestClient, str]:
    c = TestClient(dash.app, follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"name": name, "password": PASSWORD, "csrf": token, "next": "/runs"})
    assert r.status_code == 303, r.text
    return c, re.search(r'name="csrf" value="([^"]+)"', c.get("/runs").text).group(1)


class Catcher:
    """An endpoint an attacker runs: records what is sent to it (and answers 500)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                catcher.seen.append((self.path, self.headers.get("Authorization")))
                self.send_response(500)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- canary rounds: an operator's input decides what the server reads and where it sends it ---


def test_an_operator_cannot_send_the_servers_api_key_and_data_to_an_endpoint_of_their_choice(dash, monkeypatch):
    """HIGH: the canary's base URL was taken as given, so the server sent its OPENAI_API_KEY (and
    the evaluation's prompts) to any URL an operator typed. Only configured endpoints are allowed."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-hospital-SECRET")
    monkeypatch.setenv("MEDOPS_CANARY_DATA_DIRS", str(dash.tmp))
    catcher = Catcher()
    try:
        body = {
            "data": str(dash.tmp / "set.jsonl"),
            "model": "openai:m",
            "grader": "openai:g",
            "grader_base_url": dash.fake_base_url,
            "limit": 1,
        }
        operator = bearer(dash, "operator")
        for role in ("model", "grader"):
            r = operator.post("/api/canary", json={**body, f"{role}_base_url": catcher.url})
            assert r.status_code == 400, r.text
            assert "not one this server is configured for" in r.json()["detail"]
        page, csrf = signed_in(dash, "ope-user")
        r = page.post("/monitoring/canary", data={**body, "csrf": csrf, "model_base_url": catcher.url})
        assert r.status_code == 400
        assert operator.get("/api/canary").json() == []  # nothing was started
        assert catcher.seen == []
    finally:
        catcher.close()


def test_canary_endpoints_the_server_names_are_allowed(dash, monkeypatch):
    from medops.api import check_canary

    monkeypatch.setenv("MEDOPS_CANARY_DATA_DIRS", str(dash.tmp))
    monkeypatch.setenv("MEDOPS_CANARY_BASE_URLS", "http://vllm.internal:8000/v1, http://grader.internal/v1/")
    monkeypatch.setenv("MEDOPS_MODEL_BASE_URL", "http://model.internal/v1")
    monkeypatch.delenv("MEDOPS_GRADER_BASE_URL", raising=False)
    given = {"data": "demo", "model": "openai:m", "grader": "openai:g"}
    for url in ("http://vllm.internal:8000/v1/", "http://grader.internal/v1", "http://model.internal/v1"):
        check_canary({**given, "model_base_url": url, "grader_base_url": url})
    with pytest.raises(Exception, match="not one this server is configured for"):
        check_canary({**given, "model_base_url": "http://vllm.internal:8000/v1.evil.example"})


def test_an_operator_cannot_make_the_server_read_files_outside_the_canary_folders(dash, monkeypatch, tmp_path):
    """MEDIUM: ``data`` was any path on the server's disk: an operator could feed any file the
    server can read (another department's patient export) to a canary round, and learn from the
    answer whether a path exists. Only built-in set names and files under MEDOPS_CANARY_DATA_DIRS."""
    allowed = tmp_path / "canary"
    allowed.mkdir()
    (allowed / "set.jsonl").write_bytes((dash.tmp / "set.jsonl").read_bytes())
    outside = tmp_path / "patients.jsonl"
    outside.write_text('{"prompt": "John Smith"}\n')
    (allowed / "link.jsonl").symlink_to(outside)
    monkeypatch.setenv("MEDOPS_CANARY_DATA_DIRS", str(allowed))
    monkeypatch.setenv("MEDOPS_CANARY_BASE_URLS", dash.fake_base_url)
    operator = bearer(dash, "operator")
    body = {"model": "openai:m", "grader": "openai:g", "grader_base_url": dash.fake_base_url}
    refused = [
        "/etc/passwd",
        str(outside),
        str(allowed / ".." / "patients.jsonl"),
        str(allowed / "link.jsonl"),
        str(allowed / "missing.jsonl"),
        str(allowed),
    ]
    details = set()
    for data in refused:
        r = operator.post("/api/canary", json={**body, "data": data})
        assert r.status_code == 400, (data, r.text)
        details.add(r.json()["detail"].replace(data, "DATA"))
    assert len(details) == 1 and "MEDOPS_CANARY_DATA_DIRS" in details.pop()  # exists or not: one answer
    from medops.api import check_canary

    assert check_canary({**body, "data": "demo"})["data"] == "demo"
    assert check_canary({**body, "data": str(allowed / "set.jsonl")})["data"] == str((allowed / "set.jsonl").resolve())
    monkeypatch.delenv("MEDOPS_CANARY_DATA_DIRS")
    with pytest.raises(Exception, match="MEDOPS_CANARY_DATA_DIRS"):
        check_canary({**body, "data": str(allowed / "set.jsonl")})


def test_an_operator_cannot_load_an_in_process_model_on_the_server(dash, monkeypatch):
    """MEDIUM: ``model`` could name an in-process backend (``hf:`` downloads weights from the hub
    and loads them in the dashboard's host); the dashboard's canary rounds call HTTP endpoints."""
    operator = bearer(dash, "operator")
    for spec in ("hf:some-org/some-model", "local:smollm2"):
        r = operator.post("/api/canary", json={"data": "demo", "model": spec, "grader": "openai:g"})
        assert r.status_code == 400 and "HTTP endpoints only" in r.json()["detail"], r.text
        r = operator.post("/api/canary", json={"data": "demo", "model": "openai:m", "grader": spec})
        assert r.status_code == 400 and "HTTP endpoints only" in r.json()["detail"], r.text


# --- sign-in -----------------------------------------------------------------------------------


def test_concurrent_wrong_passwords_cannot_outrun_the_sign_in_limit(dash):
    """MEDIUM: the failures were counted before the (slow, Argon2) password check and recorded
    after it, so 40 sign-ins sent at once were all checked: 40 guesses where 5 are allowed."""
    from medops import api
    from medops.accounts.users import MAX_FAILURES_PER_NAME

    store = api.open_store(str(dash.db))
    api.add_user(store, "race-target", "viewer", PASSWORD, actor="os:test")
    forms = []
    for i in range(40):  # every attacker from its own address: only the per-name limit applies
        c = TestClient(dash.app, follow_redirects=False, client=(f"198.51.100.{i}", 40000))
        forms.append((c, re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)))
    start = threading.Barrier(len(forms))
    codes: list[int] = []

    def guess(c: TestClient, csrf: str) -> None:
        start.wait()
        r = c.post("/login", data={"name": "race-target", "password": "a wrong guess!", "csrf": csrf})
        codes.append(r.status_code)

    threads = [threading.Thread(target=guess, args=form) for form in forms]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flush(store, everything=True)  # refusals are counted per client and minute (issue 19.5)
    events = api.audit_events(db=store, action="user.login_failed")["events"]
    checked = [e for e in events if e["target"] == "user:race-target" and e["details"]["reason"] == "wrong password"]
    checked_count = sum(e["details"]["count"] for e in checked)
    assert checked_count <= MAX_FAILURES_PER_NAME, f"{checked_count} passwords checked"
    assert codes.count(429) >= len(forms) - MAX_FAILURES_PER_NAME


# --- API tokens --------------------------------------------------------------------------------


def test_a_refused_token_is_audited_without_the_token(dash):
    """LOW: only accepted tokens were audited; a revoked token still in use (a leaked CI secret)
    or a guessed one left no trace. Now ``token.refused`` with the route and client, never the token."""
    from medops import api

    store = api.open_store(str(dash.db))
    secret, row = api.create_token(store, "leaked-ci", "viewer", actor="os:test")
    api.revoke_token(store, "leaked-ci", actor="os:test")
    for presented in (secret, "medops_guessed-not-a-token", "not even the prefix"):
        c = TestClient(dash.app, client=("203.0.113.7", 50000), headers={"Authorization": f"Bearer {presented}"})
        assert c.get("/api/runs").status_code == 401
    flush(store, everything=True)  # the second unknown token of the minute is counted, then written
    events = [
        e for e in api.audit_events(db=store, action="token.refused")["events"] if e["actor"] == "client:203.0.113.7"
    ]
    assert len(events) == 3 and sum(e["details"]["count"] for e in events) == 3, events
    revoked = [e for e in events if e["target"] == f"token:{row['id']}"]
    assert len(revoked) == 1 and revoked[0]["details"] == {
        "route": "/api/runs",
        "client": "203.0.113.7",
        "reason": "revoked",
        "count": 1,
    }
    trail = str(api.audit_events(db=store)["events"])
    assert secret not in trail and "guessed-not-a-token" not in trail and "not even the prefix" not in trail


def test_a_burst_of_bogus_tokens_and_sign_ins_cannot_flood_the_trail(dash):
    """issue 19.5: 100 bogus bearer tokens added 100 events in 0.3 s, and each rate-limited sign-in
    one more. Against a real ``medops serve``: refusals are one event per client, reason and minute."""
    from medops import api

    store = api.open_store(str(dash.db))
    api.add_user(store, "burst-target", "viewer", PASSWORD, actor="os:test")
    server = start_server(dash, {})
    try:
        before = max(e["seq"] for e in api.audit_events(db=store, last=100000)["events"])
        with httpx.Client(base_url=dash.base_url, timeout=30) as c:
            for i in range(100):
                assert c.get("/api/runs", headers={"Authorization": f"Bearer medops_bogus{i}"}).status_code == 401
            codes = []
            for _ in range(30):
                csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
                r = c.post("/login", data={"name": "burst-target", "password": "a wrong guess!", "csrf": csrf})
                codes.append(r.status_code)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert codes == [401] * 5 + [429] * 25
    added = [e for e in api.audit_events(db=store, last=100000)["events"] if e["seq"] > before]
    assert len(added) <= 6, [e["action"] for e in added]  # the first of each kind at once (a minute boundary: more)
    flush(store, everything=True)
    mine = [e for e in api.audit_events(db=store, last=100000)["events"] if e["actor"] == "client:127.0.0.1"]
    refused = [e for e in mine if e["action"] == "token.refused"]
    failed = [e for e in mine if e["action"] == "user.login_failed" and e["target"] == "user:burst-target"]
    assert len(refused) <= 4 and sum(e["details"]["count"] for e in refused) == 100
    by_reason: dict[str, int] = {}
    for e in failed:
        by_reason[e["details"]["reason"]] = by_reason.get(e["details"]["reason"], 0) + e["details"]["count"]
    assert by_reason == {"wrong password": 5, "rate limited": 25} and len(failed) <= 8


def test_a_token_made_in_the_dashboard_dies_with_its_maker(dash):
    """issue 19.7: a token an admin made in the dashboard still worked after the admin was disabled."""
    from medops import api

    store = api.open_store(str(dash.db))
    api.add_user(store, "leaving-admin", "admin", PASSWORD, actor="os:test")
    c, csrf = signed_in(dash, "leaving-admin")
    page = c.post("/admin/tokens", data={"csrf": csrf, "name": "made-in-dashboard", "role": "viewer"})
    token = re.search(r'id="new-token">([^<]+)<', page.text).group(1)
    made = [t for t in api.tokens(store) if t["name"] == "made-in-dashboard"]
    assert made[0]["owner"] == "leaving-admin" and made[0]["kind"] == "service"
    as_token = TestClient(dash.app, headers={"Authorization": f"Bearer {token}"})
    assert as_token.get("/api/runs").status_code == 200
    api.disable_user(store, "leaving-admin", actor="os:test")
    assert as_token.get("/api/runs").status_code == 401


def test_an_operator_cannot_start_canary_rounds_without_end(dash, monkeypatch):
    """LOW: each canary round is a child process of the server; an operator (or a script with an
    operator token) could start any number at once and take the server's memory and CPU from
    everyone. At most MAX_RUNNING at once per server; a finished round frees its place."""
    from medops.web import jobs as jobs_module

    release = threading.Event()

    def held(self, job):  # a round that runs until released (no child process needed)
        job.state = "running"
        job.started.set()
        release.wait(timeout=30)
        job.state = "done"

    monkeypatch.setattr(jobs_module.Jobs, "_run", held)
    monkeypatch.setenv("MEDOPS_CANARY_BASE_URLS", dash.fake_base_url)
    app = create_app(str(dash.db))
    operator = TestClient(app, headers={"Authorization": f"Bearer {dash.tokens['operator']}"})
    body = {"data": "demo", "model": "openai:m", "grader": "openai:g", "grader_base_url": dash.fake_base_url}
    try:
        for _ in range(jobs_module.MAX_RUNNING):
            assert operator.post("/api/canary", json=body).status_code == 202
        r = operator.post("/api/canary", json=body)
        assert r.status_code == 400 and "already running" in r.json()["detail"]
    finally:
        release.set()
    deadline = time.monotonic() + 10
    while any(j["state"] == "running" for j in operator.get("/api/canary").json()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert operator.post("/api/canary", json=body).status_code == 202
    release.set()


def test_extreme_dates_are_answered_not_a_server_error(dash):
    """LOW: ``until=9999-12-31`` overflowed (500, a traceback in the server's log)."""
    viewer = TestClient(
        dash.app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {dash.tokens['viewer']}"}
    )
    for query in ("until=9999-12-31", "since=0001-01-01", "since=0001-01-01T00:00:00%2B14:00", "until=0001-01-01"):
        r = viewer.get(f"/api/runs?{query}")
        assert r.status_code in (200, 400), (query, r.status_code)
    assert len(viewer.get("/api/runs?until=9999-12-31").json()) == len(viewer.get("/api/runs").json())
