"""Accounts: users with Argon2 passwords, API tokens, sessions, sign-in rate limits and the audit
events each leaves, on a real SQLite store (and PostgreSQL with MEDOPS_TEST_POSTGRES_URL); the
``medops users`` / ``medops tokens`` commands as a user runs them."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from sqlalchemy import text

from medops import api
from medops.accounts import sessions as session_rules
from medops.audit import trail
from medops.errors import UserError
from medops.store import accounts as rows

PASSWORD = "correct horse battery staple"
POSTGRES = os.environ.get("MEDOPS_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "postgresql":
        if not POSTGRES:
            pytest.skip("MEDOPS_TEST_POSTGRES_URL not set (scripts/start-test-postgres)")
        from sqlalchemy import create_engine

        engine = create_engine(POSTGRES)
        with engine.begin() as c:
            c.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        opened = api.open_store(POSTGRES)
    else:
        opened = api.open_store(tmp_path / "medops.db")
    yield opened
    opened.close()


def actions(store) -> list[str]:
    return [event["action"] for event in trail.events(store)]


def test_users_sign_in_and_what_the_store_keeps(store):
    api.add_user(store, "dr.kim", "viewer", PASSWORD, actor="os:admin")
    principal = api.login(store, "dr.kim", PASSWORD, client="10.0.0.5")
    assert (principal.kind, principal.name, principal.role) == ("user", "dr.kim", "viewer")
    assert principal.actor == "user:dr.kim"
    assert principal.can("viewer") and not principal.can("operator")
    [listed] = api.users(store)
    assert listed["role"] == "viewer" and listed["last_login_at"] and listed["created_by"] == "os:admin"
    stored = rows.user(store, "dr.kim").password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    with pytest.raises(UserError, match="already exists"):
        api.add_user(store, "dr.kim", "admin", PASSWORD, actor="os:admin")
    with pytest.raises(UserError, match="at least 10"):
        api.add_user(store, "nurse", "viewer", "short", actor="os:admin")
    with pytest.raises(UserError, match="unknown role"):
        api.add_user(store, "nurse", "root", PASSWORD, actor="os:admin")
    assert actions(store) == ["user.created", "user.login"]
    dump = json.dumps(trail.events(store))
    assert PASSWORD not in dump and "10.0.0.5" in dump


def test_refusals_look_alike_and_are_rate_limited(store):
    api.add_user(store, "dr.lee", "operator", PASSWORD, actor="os:admin")
    messages = set()
    for name, password in [("dr.lee", "wrong password!"), ("nobody", PASSWORD)]:
        with pytest.raises(api.AuthError) as refused:
            api.login(store, name, password, client="10.0.0.9")
        assert refused.value.status == 401
        messages.add(str(refused.value))
    assert len(messages) == 1  # a wrong name and a wrong password read the same
    for _ in range(4):  # five failures for the name in all
        with pytest.raises(api.AuthError):
            api.login(store, "dr.lee", "wrong password!", client="10.0.0.9")
    with pytest.raises(api.AuthError) as limited:
        api.login(store, "dr.lee", PASSWORD, client="10.0.0.10")  # right password, locked name
    assert limited.value.status == 429
    trail.flush(store, everything=True)
    failed = [e for e in trail.events(store) if e["action"] == "user.login_failed"]
    reasons = [e["details"]["reason"] for e in failed]
    # the first of each (client, account, reason) at once, the other four wrong passwords as one event
    assert reasons == ["wrong password", "unknown user", "rate limited", "wrong password"]
    assert [e["details"]["count"] for e in failed] == [1, 1, 1, 4]
    assert failed[0]["actor"] == "client:10.0.0.9" and failed[2]["actor"] == "client:10.0.0.10"
    # the lock lifts when the window has passed
    with store.session() as s:
        s.execute(text("UPDATE login_attempts SET at = :at"), {"at": rows.utcnow() - timedelta(minutes=16)})
    assert api.login(store, "dr.lee", PASSWORD, client="10.0.0.10").role == "operator"


def test_disabled_users_and_new_passwords_end_sessions(store):
    api.add_user(store, "dr.park", "admin", PASSWORD, actor="os:admin")
    principal = api.login(store, "dr.park", PASSWORD, client="127.0.0.1")
    session = api.open_session(store, principal)
    found, csrf = api.session_principal(store, session.id)
    assert found == principal and csrf == session.csrf and len(csrf) == 64
    assert api.session_principal(store, session.id + "x") is None
    api.set_password(store, "dr.park", PASSWORD + "2", actor="os:admin")
    assert api.session_principal(store, session.id) is None  # a new password ends open sessions
    with pytest.raises(api.AuthError):
        api.login(store, "dr.park", PASSWORD, client="127.0.0.1")
    second = api.open_session(store, api.login(store, "dr.park", PASSWORD + "2", client="127.0.0.1"))
    api.disable_user(store, "dr.park", actor="os:admin")
    assert api.session_principal(store, second.id) is None
    with pytest.raises(api.AuthError) as refused:
        api.login(store, "dr.park", PASSWORD + "2", client="127.0.0.1")
    assert refused.value.status == 401
    assert [e["details"].get("reason") for e in trail.events(store) if e["action"] == "user.login_failed"] == [
        "wrong password",
        "account disabled",
    ]
    assert "user.password_changed" in actions(store) and "user.disabled" in actions(store)


def test_sessions_end_on_sign_out_and_when_idle(store):
    api.add_user(store, "dr.choi", "viewer", PASSWORD, actor="os:admin")
    principal = api.login(store, "dr.choi", PASSWORD, client="127.0.0.1")
    one, two = api.open_session(store, principal), api.open_session(store, principal)
    assert one.id != two.id and one.csrf != two.csrf
    api.close_session(store, one.id)
    assert api.session_principal(store, one.id) is None and api.session_principal(store, two.id) is not None
    idle = rows.utcnow() - session_rules.IDLE_LIMIT - timedelta(seconds=1)
    rows.update_session(store, rows.session_by_sha256(store, session_rules._sha256(two.id)).id, last_seen_at=idle)
    assert api.session_principal(store, two.id) is None
    with store.session() as s:  # the store has only hashes of session ids
        stored = [r[0] for r in s.execute(text("SELECT session_sha256 FROM web_sessions"))]
    assert one.id not in stored and two.id not in stored and len(stored) == 2
    assert actions(store)[-1] == "user.logout"


def test_tokens_are_shown_once_stored_hashed_and_audited_on_use(store):
    token, row = api.create_token(store, "ci-gate", "operator", actor="os:admin")
    assert token.startswith("medops_") and len(token) > 40 and row["role"] == "operator"
    with store.session() as s:
        stored = s.execute(text("SELECT token_sha256 FROM api_tokens")).scalar_one()
    assert token not in stored
    principal = api.token_principal(store, token, route="/api/runs")
    assert (principal.kind, principal.name, principal.actor) == ("token", "ci-gate", f"token:{row['id']}")
    assert api.tokens(store)[0]["last_used_at"] is not None
    with pytest.raises(api.AuthError):
        api.token_principal(store, token[:-1] + ("B" if token.endswith("A") else "A"), route="/api/runs")
    api.revoke_token(store, "ci-gate", actor="os:admin")
    with pytest.raises(api.AuthError) as refused:
        api.token_principal(store, token, route="/api/runs")
    assert refused.value.status == 401
    events = trail.events(store)
    actions_seen = [e["action"] for e in events]
    assert actions_seen == ["token.created", "token.used", "token.refused", "token.revoked", "token.refused"]
    assert events[4]["details"]["reason"] == "revoked" and events[4]["target"] == f"token:{row['id']}"
    assert events[1]["details"] == {"route": "/api/runs"} and events[1]["actor"] == principal.actor
    assert token not in json.dumps(events)
    assert trail.verify(store).intact


def test_users_and_tokens_commands(cli):
    added = cli.run("users", "add", "dr.han", "--role", "admin", "--password-stdin", input=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    no_terminal = cli.run("users", "add", "dr.yoon", "--role", "viewer")
    assert no_terminal.returncode == 2 and "--password-stdin" in no_terminal.stderr
    bad_role = cli.run("users", "add", "dr.yoon", "--role", "superuser", "--password-stdin", input=PASSWORD)
    assert bad_role.returncode == 2 and "unknown role 'superuser'" in bad_role.stderr
    [user] = json.loads(cli.run("users", "list", "--json", check=True).stdout)
    assert (user["name"], user["role"], user["disabled"]) == ("dr.han", "admin", False)
    assert cli.run("users", "passwd", "dr.han", "--password-stdin", input=PASSWORD + "!\n", check=True).returncode == 0
    assert cli.run("users", "disable", "dr.han", check=True).returncode == 0
    assert json.loads(cli.run("users", "list", "--json").stdout)[0]["disabled"] is True
    missing = cli.run("users", "disable", "nobody")
    assert missing.returncode == 2 and "no user named 'nobody'" in missing.stderr

    created = json.loads(cli.run("tokens", "create", "--name", "ci", "--role", "viewer", "--json", check=True).stdout)
    assert set(created) == {"token"} and created["token"].startswith("medops_")
    duplicate = cli.run("tokens", "create", "--name", "ci", "--role", "viewer")
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr
    [listed] = json.loads(cli.run("tokens", "list", "--json", check=True).stdout)
    assert listed["name"] == "ci" and created["token"] not in json.dumps(listed)
    cli.run("tokens", "revoke", "ci", check=True)
    assert json.loads(cli.run("tokens", "list", "--json").stdout)[0]["revoked_at"] is not None
    store = api.open_store(cli.db)
    assert actions(store) == [
        "user.created",
        "user.password_changed",
        "user.disabled",
        "token.created",
        "token.revoked",
    ]
    assert PASSWORD not in cli.db.read_bytes().decode("latin-1")
