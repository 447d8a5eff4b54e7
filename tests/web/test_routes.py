"""The dashboard in process (starlette's TestClient): every /api/ route answers 401 without
credentials, 403 to too low a role and 200 to the right one; pages redirect to /login or answer
403; sessions, CSRF, security headers, redaction by role, escaping, audit events, tokens from the
accounts page, and a canary round started by an operator."""

from __future__ import annotations

import re
import time

import pytest
from dashboard_store import EVIL, PASSWORD, PATIENT, build
from fastapi.testclient import TestClient

from medops import api
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread
from medops.web import create_app
from medops.web.app import CSP

RANK = {"viewer": 0, "reviewer": 1, "operator": 2, "admin": 3}
# (method, path, the least role it needs); every /api/ route must be here (checked below)
API_ROUTES = [
    ("GET", "/api/me", "viewer"),
    ("GET", "/api/runs?q=cand&status=completed&since=2000-01-01", "viewer"),
    ("GET", "/api/runs/candidate", "viewer"),
    ("GET", "/api/runs/candidate/examples?flag=failed", "viewer"),
    ("GET", "/api/runs/candidate/examples/0", "viewer"),
    ("GET", "/api/compare?baseline=baseline&candidate=candidate", "viewer"),
    ("GET", "/api/gates?run=candidate", "viewer"),
    ("GET", "/api/monitoring", "viewer"),
    ("GET", "/api/alerts", "viewer"),
    ("GET", "/api/datasets", "viewer"),
    ("GET", "/api/openapi.json", "viewer"),
    ("GET", "/api/canary", "operator"),
    ("GET", "/api/canary/999", "operator"),  # 404 for the right role: no such job
    ("POST", "/api/canary", "operator"),  # 422 for the right role without a body (tested for real below)
    ("POST", "/api/alerts/1/acknowledge", "operator"),
    ("GET", "/api/audit?action=user.", "admin"),
    ("GET", "/api/users", "admin"),
    ("GET", "/api/tokens", "admin"),
]
EXPECTED_OK = {("GET", "/api/canary/999"): 404, ("POST", "/api/canary"): 422}
PAGES = [
    ("/runs", "viewer"),
    ("/runs/candidate", "viewer"),
    ("/runs/candidate?flag=negative_met&page=1", "viewer"),
    ("/runs/candidate/examples/0", "viewer"),
    ("/runs/exam", "viewer"),
    ("/compare?baseline=baseline&candidate=candidate", "viewer"),
    ("/gates", "viewer"),
    ("/monitoring", "viewer"),
    ("/datasets", "viewer"),
    ("/reviews", "reviewer"),
    ("/reviews/dash-set", "reviewer"),
    ("/reviews/dash-set/queue", "reviewer"),
    ("/reviews/dash-set/queue?position=1", "reviewer"),
    ("/reviews/dash-set/adjudicate", "operator"),
    ("/audit", "admin"),
    ("/admin", "admin"),
]


@pytest.fixture(scope="module")
def dash(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash")
    with ServerThread(FakeOpenAIServer(FakeBehaviour())) as fake:
        found = build(tmp, fake.base_url)
        found.fake_base_url = fake.base_url  # type: ignore[attr-defined]
        found.app = create_app(str(found.db))  # type: ignore[attr-defined]
        yield found


def client(dash, role: str | None = None) -> TestClient:
    c = TestClient(dash.app, follow_redirects=False)
    if role is not None:
        c.headers["Authorization"] = f"Bearer {dash.tokens[role]}"
    return c


def signed_in(dash, name: str, *, base_url: str = "http://testserver") -> tuple[TestClient, str]:
    """A browser-like client with a session; returns it and the session's CSRF token."""
    c = TestClient(dash.app, follow_redirects=False, base_url=base_url)
    form = c.get("/login")
    login_csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    r = c.post("/login", data={"name": name, "password": PASSWORD, "csrf": login_csrf, "next": "/runs"})
    assert r.status_code == 303 and r.headers["location"] == "/runs", r.text
    page = c.get("/runs")
    return c, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_every_api_route_is_in_the_table(dash):
    listed = {path.split("?")[0] for _m, path, _r in API_ROUTES}
    templates = {re.sub(r"\{[^}]+\}", "X", p) for p in listed}
    routes = {
        (method, re.sub(r"\{[^}]+\}", "X", route.path))
        for route in dash.app.routes
        if getattr(route, "path", "").startswith("/api")
        for method in getattr(route, "methods", ())
    }
    normalised = {(m, re.sub(r"/(candidate|0|1|999)(?=/|$)", "/X", p.split("?")[0])) for m, p, _r in API_ROUTES}
    missing = {r for r in routes if r not in normalised}
    assert not missing, f"routes without 401/403/200 checks: {missing}"
    assert templates


@pytest.mark.parametrize(("method", "path", "least"), API_ROUTES)
def test_api_401_403_200(dash, method, path, least):
    assert client(dash).request(method, path).status_code == 401
    assert client(dash).request(method, path).headers["www-authenticate"] == "Bearer"
    for role, rank in RANK.items():
        r = client(dash, role).request(method, path)
        if rank < RANK[least]:
            assert r.status_code == 403, (role, r.text)
            assert "needs the" in r.json()["detail"]
        else:
            assert r.status_code == EXPECTED_OK.get((method, path), 200), (role, r.text)
    bad = TestClient(dash.app, headers={"Authorization": "Bearer medops_not-a-token"})
    assert bad.request(method, path).status_code == 401


@pytest.mark.parametrize(("path", "least"), PAGES)
def test_pages_redirect_to_login_403_or_200(dash, path, least):
    r = client(dash).get(path)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2F")
    for name, role in (
        ("vie-user", "viewer"),
        ("rev-user", "reviewer"),
        ("ope-user", "operator"),
        ("adm-user", "admin"),
    ):
        c, _csrf = signed_in(dash, name)
        r = c.get(path)
        expected = 200 if RANK[role] >= RANK[least] else 403
        assert r.status_code == expected, (name, path, r.text[:300])


def test_security_headers_on_pages_api_and_login(dash):
    c, _ = signed_in(dash, "vie-user")
    for r in (c.get("/runs"), c.get("/api/runs"), client(dash).get("/login"), c.get("/static/medops.css")):
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
    assert c.get("/runs/candidate").headers["cache-control"] == "no-store"
    page = c.get("/runs/candidate").text
    assert "<script>" not in page and " on" + "error=" not in page.replace("onerror=&#34;", "")
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/medops.js" defer>']
    assert "style=" not in page  # style-src 'self': no inline styles either
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


def test_model_output_is_escaped(dash):
    c, _ = signed_in(dash, "adm-user")
    for path in ("/runs/candidate", "/runs/candidate/examples/0"):
        page = c.get(path).text
        assert "<script>window.__pwned" not in page and "<img src=x" not in page
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=" in page
    assert EVIL in client(dash, "admin").get("/api/runs/candidate/examples/0").json()["response"]


def test_examples_are_redacted_below_admin_and_unredacted_views_are_audited(dash):
    for role in ("viewer", "operator"):
        e = client(dash, role).get("/api/runs/candidate/examples/0").json()
        text = e["prompt"][0]["content"]
        assert PATIENT not in text and "[PERSON_1]" in text and e["redacted"] is True
        page = signed_in(dash, "vie-user")[0].get("/runs/candidate").text
        assert PATIENT not in page and "[PERSON_1]" in page
    e = client(dash, "admin").get("/api/runs/candidate/examples/0").json()
    assert PATIENT in e["prompt"][0]["content"] and e["redacted"] is False
    events = api.audit_events(db=str(dash.db), action="examples.viewed")["events"]
    # the admin token is the fourth (viewer, reviewer, operator, admin)
    assert events and events[0]["actor"] == "token:4" and events[0]["details"]["examples"] == [[0, 0]]


def test_sign_in_failures_csrf_rate_limit_and_sign_out(dash):
    c = TestClient(dash.app, follow_redirects=False)
    form = c.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    cookie = form.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    r = c.post("/login", data={"name": "vie-user", "password": "wrong password!", "csrf": token})
    assert r.status_code == 401 and "wrong user name or password" in r.text
    r = c.post("/login", data={"name": "vie-user", "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 403 and "medops_session" not in r.headers.get("set-cookie", "")
    assert c.post("/login", data={"name": "vie-user", "password": PASSWORD, "csrf": "위조"}).status_code == 403
    fresh = TestClient(dash.app, follow_redirects=False)  # no login-form cookie: a cross-site post
    assert fresh.post("/login", data={"name": "vie-user", "password": PASSWORD, "csrf": "x"}).status_code == 403
    actions = [e["action"] for e in api.audit_events(db=str(dash.db), action="user.login")["events"]]
    assert "user.login_failed" in actions

    for _ in range(6):  # a name under attack is locked for a while
        form = c.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
        r = c.post("/login", data={"name": "nobody-here", "password": "wrong password!", "csrf": token})
    assert r.status_code == 429

    s, csrf = signed_in(dash, "vie-user")
    session_cookie = s.cookies.get("medops_session")
    assert s.post("/logout", data={}).status_code == 403  # no CSRF token: refused
    assert s.post("/logout", data={"csrf": "위조"}).status_code == 403  # not ASCII: refused, not a 500
    assert s.post("/logout", data={"csrf": csrf}).status_code == 303
    after = TestClient(dash.app, follow_redirects=False, cookies={"medops_session": session_cookie})
    assert after.get("/runs").status_code == 303  # the session is gone on the server too
    assert after.get("/api/runs").status_code == 401


def test_cookies_are_secure_over_https_and_next_never_leaves_the_site(dash):
    c = TestClient(dash.app, follow_redirects=False, base_url="https://dashboard.example")
    form = c.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    r = c.post("/login", data={"name": "vie-user", "password": PASSWORD, "csrf": token, "next": "//evil.example/x"})
    assert r.status_code == 303 and r.headers["location"] == "/runs"
    cookie = r.headers["set-cookie"]
    assert "medops_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_api_writes_by_session_need_the_csrf_header(dash):
    s, csrf = signed_in(dash, "ope-user")
    assert s.post("/api/alerts/1/acknowledge").status_code == 403
    assert s.post("/api/alerts/1/acknowledge", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert s.post("/monitoring/alerts/1/acknowledge", data={"csrf": "forged"}).status_code == 403


def test_token_use_is_audited_and_openapi_documents_the_api(dash):
    schema = client(dash, "viewer").get("/api/openapi.json").json()
    assert {"/api/runs", "/api/users", "/api/runs/{ref}/examples"} <= set(schema["paths"])
    events = api.audit_events(db=str(dash.db), action="token.used")["events"]
    assert events and any(e["details"].get("route") == "/api/openapi.json" for e in events)


def test_accounts_page_creates_a_token_once_and_revokes_it(dash):
    s, csrf = signed_in(dash, "adm-user")
    r = s.post("/admin/tokens", data={"csrf": csrf, "name": "ci-gate", "role": "viewer"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    token = re.search(r'id="new-token">([^<]+)<', r.text).group(1)
    assert token not in s.get("/admin").text  # shown once
    ok = TestClient(dash.app, headers={"Authorization": f"Bearer {token}"})
    assert ok.get("/api/runs").status_code == 200 and ok.get("/api/users").status_code == 403
    assert s.post("/admin/tokens/ci-gate/revoke", data={"csrf": csrf}).status_code == 303
    assert ok.get("/api/runs").status_code == 401
    r = s.post("/admin/users", data={"csrf": csrf, "name": "dr-lee", "role": "viewer", "password": "a long enough one"})
    assert r.status_code == 303 and "dr-lee" in s.get("/admin").text
    assert any(u["name"] == "dr-lee" for u in client(dash, "admin").get("/api/users").json())
    assert s.post("/admin/users/dr-lee/disable", data={"csrf": csrf}).status_code == 303
    assert [u["disabled"] for u in api.users(api.open_store(str(dash.db))) if u["name"] == "dr-lee"] == [True]


def test_an_operator_starts_a_canary_round_through_the_api(dash, monkeypatch):
    monkeypatch.setenv("MEDOPS_CANARY_DATA_DIRS", str(dash.tmp))  # what the server lets operators run
    monkeypatch.setenv("MEDOPS_CANARY_BASE_URLS", dash.fake_base_url)
    body = {
        "data": str(dash.tmp / "set.jsonl"),
        "model": "openai:fake-model",
        "model_base_url": dash.fake_base_url,
        "grader": "openai:fake-grader",
        "grader_base_url": dash.fake_base_url,
        "limit": 2,
    }
    operator = client(dash, "operator")
    r = operator.post("/api/canary", json=body)
    assert r.status_code == 202, r.text
    job = r.json()
    deadline = time.monotonic() + 60
    while job["state"] in ("starting", "running") and time.monotonic() < deadline:
        time.sleep(0.3)
        job = operator.get(f"/api/canary/{job['id']}").json()
    assert job["state"] == "done", job
    run = client(dash, "viewer").get(f"/api/runs/{job['run_id']}").json()["run"]
    assert run["model"] == "openai:fake-model" and run["n_examples"] == 2
    started = api.audit_events(db=dash.app.state.store, action="run.started")["events"]
    assert started[0]["actor"] == "token:3" and started[0]["details"]["run_id"] == job["run_id"]
    assert client(dash, "viewer").post("/api/canary", json=body).status_code == 403


def test_what_does_not_exist_is_404_and_bad_input_400(dash):
    api_client, (page_client, _) = client(dash, "viewer"), signed_in(dash, "vie-user")
    assert api_client.get("/api/runs/no-such-run").status_code == 404
    assert api_client.get("/api/runs/candidate/examples/999").status_code == 404
    assert api_client.get("/api/runs/candidate/examples?flag=bogus").status_code == 400
    missing = page_client.get("/runs/no-such-run")
    assert missing.status_code == 404 and "no run &#39;no-such-run&#39;" in missing.text
