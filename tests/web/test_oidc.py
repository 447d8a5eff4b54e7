"""Single sign-on through OpenID Connect against a real provider (tests/web/oidc_provider.py, its
own loopback process: discovery, JWKS, code flow with PKCE, RS256 id_tokens). The dashboard runs
in process (TestClient, redirects followed by hand) and once as a real ``medops serve``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from dashboard_store import Dashboard, start_server
from fastapi.testclient import TestClient

from medops import api
from medops.errors import UserError
from medops.web import create_app, oidc

pytest.importorskip("authlib")

HERE = Path(__file__).resolve().parent
CLIENT_ID = "medops-dashboard"
SECRET = "s3cret-for-tests"
PASSWORD = "correct horse battery staple"
ROLE_MAP = "medops-admin=admin,medops-operator=operator,medops-viewer=viewer"


@pytest.fixture(scope="module")
def provider():
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "oidc_provider.py"), "--client-id", CLIENT_ID, "--client-secret", SECRET],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("port "), f"the provider did not start: {line!r}"
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def env(issuer: str, **more: str) -> dict[str, str]:
    values = {
        "MEDOPS_OIDC_ISSUER": issuer,
        "MEDOPS_OIDC_CLIENT_ID": CLIENT_ID,
        "MEDOPS_OIDC_CLIENT_SECRET": SECRET,
        "MEDOPS_OIDC_ROLE_MAP": ROLE_MAP,
    }
    values.update({f"MEDOPS_OIDC_{k.upper()}": v for k, v in more.items()})
    return values


@pytest.fixture(scope="module")
def dash(provider, tmp_path_factory):
    db = tmp_path_factory.mktemp("sso") / "medops.db"
    store = api.open_store(str(db))
    api.add_user(store, "local.admin", "admin", PASSWORD, actor="os:test")
    app = create_app(str(db), oidc=oidc.configure(env(provider)))
    return app


def events(app, action: str) -> list[dict]:
    return api.audit_events(db=app.state.store, action=action, last=None)["events"]


def sso(app, user: str, *, mode: str = "", tamper=None, client: TestClient | None = None):
    """One single sign-on as a browser would: /login/oidc -> the provider -> the callback."""
    c = client or TestClient(app, follow_redirects=False)
    r = c.get("/login/oidc?next=/gates")
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "medops_oidc=" in cookie and "HttpOnly" in cookie and "Path=/login/oidc" in cookie
    assert "samesite=lax" in cookie.lower()
    authorize = r.headers["location"]
    params = parse_qs(urlsplit(authorize).query)
    assert params["code_challenge_method"] == ["S256"] and params["nonce"] and params["state"]
    assert params["redirect_uri"] == ["http://testserver/login/oidc/callback"]
    hint = {"login_hint": user, **({"mode": mode} if mode else {})}
    back = httpx.get(f"{authorize}&{urlencode(hint)}", follow_redirects=False)
    assert back.status_code == 302, back.text
    target = urlsplit(back.headers["location"])
    assert target.path == "/login/oidc/callback"
    query = tamper(target.query) if tamper else target.query
    return c, c.get(f"{target.path}?{query}")


def me(c: TestClient) -> int | dict:
    r = c.get("/api/me")
    return r.json() if r.status_code == 200 else r.status_code


def test_operator_signs_in_with_a_session_and_an_audited_login(dash, provider):
    before = len(events(dash, "user.login"))
    c, r = sso(dash, "op.sso")
    assert r.status_code == 303 and r.headers["location"] == "/gates", r.text
    assert "medops_session=" in r.headers["set-cookie"]
    assert 'medops_oidc=""' in r.headers["set-cookie"]  # the pending state is gone
    who = me(c)
    assert who["name"] == "op.sso" and who["role"] == "operator", who
    assert c.get("/gates").status_code == 200 and c.get("/audit").status_code == 403
    login = events(dash, "user.login")[0]
    assert len(events(dash, "user.login")) == before + 1
    assert login["target"] == "user:op.sso" and login["actor"] == "user:op.sso"
    assert login["details"] == {"client": "testclient", "via": "oidc", "issuer": provider}
    created = [e for e in events(dash, "user.created") if e["target"] == "user:op.sso"]
    assert len(created) == 1 and created[0]["details"]["role"] == "operator"
    # the same session machinery as the password sign-in: CSRF on forms, sign-out ends it
    page = c.get("/gates").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert c.post("/logout", data={"csrf": csrf}).status_code == 303
    assert me(c) == 401
    # a second sign-in finds the account; an SSO account has no usable password
    c2, r2 = sso(dash, "op.sso")
    assert r2.status_code == 303 and me(c2)["role"] == "operator"
    assert len([e for e in events(dash, "user.created") if e["target"] == "user:op.sso"]) == 1
    form = TestClient(dash, follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', form.get("/login").text).group(1)
    refused = form.post("/login", data={"name": "op.sso", "password": "anything at all", "csrf": token})
    assert refused.status_code == 401


def test_the_highest_mapped_role_wins_and_a_lower_one_is_applied_later(dash):
    c, r = sso(dash, "adm.sso")
    assert r.status_code == 303 and me(c)["role"] == "admin"
    c, r = sso(dash, "viewer.sso")  # "roles" as one string
    assert r.status_code == 303 and me(c)["role"] == "viewer"


def test_no_mapped_role_is_refused_403_and_audited(dash):
    c, r = sso(dash, "nobody.sso")
    assert r.status_code == 403
    assert "no medops role" in r.text and "Sign in with single sign-on" in r.text
    assert "medops_session" not in r.headers.get("set-cookie", "") and me(c) == 401
    failed = events(dash, "user.login_failed")[0]
    assert failed["target"] == "user:nobody.sso"
    assert failed["details"]["via"] == "oidc" and "no mapped role" in failed["details"]["reason"]
    assert not [u for u in api.users(dash.state.store) if u["name"] == "nobody.sso"]


def _other_state(query: str) -> str:
    return re.sub(r"state=[^&]+", "state=forged-st%C3%A4te", query)  # non-ASCII: still a clean refusal


@pytest.mark.parametrize(
    ("mode", "tamper", "status", "reason"),
    [
        ("", _other_state, 400, "state mismatch"),
        ("wrong_nonce", None, 401, "id token refused: InvalidClaimError*nonce"),
        ("other_key", None, 401, "id token refused: BadSignatureError"),  # same kid, another key
        ("expired", None, 401, "id token refused: ExpiredTokenError"),
        ("wrong_aud", None, 401, "id token refused: InvalidClaimError*aud"),
        ("wrong_aud_azp", None, 401, "id token refused: InvalidClaimError*aud"),  # azp alone does not do
        ("wrong_iss", None, 401, "id token refused: InvalidClaimError*iss"),
        ("hs256", None, 401, "id token refused: UnsupportedAlgorithmError"),  # keyed with the client secret
        ("no_id_token", None, 401, "id token refused"),
        ("deny", None, 401, "provider error: access_denied"),
    ],
)
def test_a_bad_answer_is_refused_and_audited(dash, mode, tamper, status, reason):
    before = len(events(dash, "user.login_failed"))
    c, r = sso(dash, "op.sso", mode=mode, tamper=tamper)
    assert r.status_code == status, r.text
    assert "Sign in to medops" in r.text  # the sign-in page, saying why
    assert "medops_session" not in r.headers.get("set-cookie", "") and me(c) == 401
    failed = events(dash, "user.login_failed")
    assert len(failed) == before + 1
    head, _, tail = reason.partition("*")
    given = failed[0]["details"]["reason"]
    assert given.startswith(head) and tail in given, given
    assert failed[0]["details"]["via"] == "oidc"


def test_a_callback_without_the_pending_cookie_is_refused(dash):
    fresh = TestClient(dash, follow_redirects=False)  # another browser: no medops_oidc cookie
    r = fresh.get("/login/oidc/callback?code=abc&state=def")
    assert r.status_code == 400 and me(fresh) == 401
    forged = TestClient(dash, follow_redirects=False, cookies={"medops_oidc": "AAAA" * 20})
    assert forged.get("/login/oidc/callback?code=abc&state=def").status_code == 400
    assert events(dash, "user.login_failed")[0]["details"]["reason"].startswith("no pending sign-in")


def test_a_disabled_user_is_refused(dash):
    c, r = sso(dash, "adm.sso")
    assert r.status_code == 303
    api.disable_user(dash.state.store, "adm.sso", actor="os:test")
    assert me(c) == 401  # the session ended
    c, r = sso(dash, "adm.sso")
    assert r.status_code == 403 and "disabled" in r.text and me(c) == 401
    failed = events(dash, "user.login_failed")[0]
    assert failed["target"] == "user:adm.sso" and failed["details"]["reason"] == "account disabled"


def test_an_unusable_user_name_is_refused(dash):
    c, r = sso(dash, "bad name!")
    assert r.status_code == 403 and me(c) == 401
    assert "user name" in events(dash, "user.login_failed")[0]["details"]["reason"]


def test_a_nested_role_claim_keycloak_realm_roles(provider, tmp_path):
    app = create_app(str(tmp_path / "kc.db"), oidc=oidc.configure(env(provider, role_claim="realm_access.roles")))
    c, r = sso(app, "kc.sso")
    assert r.status_code == 303 and me(c)["role"] == "operator"


def test_login_page_link_and_no_routes_without_an_issuer(dash, tmp_path):
    page = TestClient(dash).get("/login?next=/runs/x").text
    assert 'href="/login/oidc?next=/runs/x"' in page and "Sign in with single sign-on" in page
    plain = create_app(str(tmp_path / "plain.db"))
    c = TestClient(plain, follow_redirects=False)
    assert c.get("/login/oidc").status_code == 404
    assert c.get("/login/oidc/callback?code=a&state=b").status_code == 404
    page = c.get("/login").text
    assert "single sign-on" not in page and "/login/oidc" not in page
    assert oidc.configure({}) is None


def test_configuration_errors_are_one_line(provider, monkeypatch):
    cases = [
        ({"MEDOPS_OIDC_CLIENT_ID": ""}, "MEDOPS_OIDC_CLIENT_ID is not set"),
        ({"MEDOPS_OIDC_CLIENT_SECRET": ""}, "MEDOPS_OIDC_CLIENT_SECRET is not set"),
        ({"MEDOPS_OIDC_ROLE_MAP": "medops-admin=root"}, "is not provider-role=medops-role"),
        ({"MEDOPS_OIDC_ROLE_MAP": " , "}, "ROLE_MAP is empty"),
        ({"MEDOPS_OIDC_ISSUER": "http://idp.example.org/realms/x"}, "must be an https:// URL"),
        ({"MEDOPS_OIDC_ISSUER": provider + "/realms/none"}, "cannot read"),
        ({"MEDOPS_OIDC_ISSUER": "http://127.0.0.1:9"}, "cannot read"),
    ]
    for change, message in cases:
        with pytest.raises(UserError, match=re.escape(message)) as caught:
            oidc.configure({**env(provider), **change})
        assert "\n" not in str(caught.value)
    monkeypatch.setitem(sys.modules, "authlib.integrations.base_client", None)  # authlib not installed
    with pytest.raises(UserError, match=re.escape("pip install 'medops[sso]'")):
        oidc.configure(env(provider))


def test_medops_serve_exits_2_on_a_bad_configuration_and_signs_in_with_a_good_one(provider, tmp_path):
    db = tmp_path / "serve.db"
    api.add_user(api.open_store(str(db)), "local.admin", "admin", PASSWORD, actor="os:test")
    bad = {**env(provider), "MEDOPS_OIDC_ROLE_MAP": "x=superuser"}
    done = subprocess.run(
        [sys.executable, "-m", "medops.cli.app", "serve", "--port", "0", "--db", str(db)],
        env={**_base_env(), **bad},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "MEDOPS_OIDC_ROLE_MAP" in done.stderr
    dashboard = Dashboard(db, tmp_path)
    server = start_server(dashboard, env(provider))
    try:
        with httpx.Client(base_url=dashboard.base_url, follow_redirects=False) as browser:
            assert "Sign in with single sign-on" in browser.get("/login").text
            r = browser.get("/login/oidc")
            back = httpx.get(r.headers["location"] + "&login_hint=op.sso", follow_redirects=False)
            assert back.headers["location"].startswith(dashboard.base_url + "/login/oidc/callback?")
            done_ = browser.get(back.headers["location"])
            assert done_.status_code == 303 and done_.headers["location"] == "/runs", done_.text
            assert browser.get("/api/me").json()["role"] == "operator"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("MEDOPS_OIDC_")}
