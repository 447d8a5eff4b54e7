"""Issue 19, items 5-8, on a real SQLite store: refusals aggregated per source and minute, no
typed name in the trail, tokens that belong to someone, and sign-in locks per account and
address (with backoff) that an attacker elsewhere cannot turn against the admin."""

from __future__ import annotations

import importlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from medops import api
from medops.audit import trail
from medops.errors import UserError
from medops.store import accounts as rows
from medops.store.schema import LoginAttempt

user_rules = importlib.import_module("medops.accounts.users")  # the package re-exports a function of that name
PASSWORD = "correct horse battery staple"
PATIENT = "김민수 900101-1234567"


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDOPS_AUDIT_KEY", raising=False)
    opened = api.open_store(tmp_path / "medops.db")
    yield opened
    opened.close()


def events(store, action: str) -> list[dict]:
    return [e for e in trail.events(store) if e["action"] == action]


def refuse(store, name: str, password: str, client: str) -> int:
    try:
        api.login(store, name, password, client=client)
    except api.AuthError as exc:
        return exc.status
    return 200


def age_attempts(store, seconds: float) -> None:
    """Every sign-in attempt as if made ``seconds`` earlier."""
    with store.session() as s:
        for attempt in s.scalars(select(LoginAttempt)):
            attempt.at = attempt.at - timedelta(seconds=seconds)


# --- 5: refusals cannot flood the trail -----------------------------------------------------------


def test_a_burst_of_bogus_tokens_is_a_bounded_number_of_events_with_the_right_count(store):
    """issue 19.5: 100 bogus bearer tokens added 100 events."""
    before = len(trail.events(store))
    for i in range(100):
        with pytest.raises(api.AuthError):
            api.token_principal(store, f"medops_bogus-{i}", route=f"/api/runs/{i}", client="203.0.113.9")
    assert len(trail.events(store)) - before <= 2  # at most one more when the burst straddles a minute
    trail.flush(store, everything=True)
    found = events(store, "token.refused")
    assert 2 <= len(found) <= 4, found  # the first at once, the rest as one event a minute
    assert sum(e["details"]["count"] for e in found) == 100
    assert {e["actor"] for e in found} == {"client:203.0.113.9"} and {e["target"] for e in found} == {"token:unknown"}
    assert found[0]["details"] == {"route": "/api/runs/0", "client": "203.0.113.9", "reason": "unknown", "count": 1}
    assert (
        found[-1]["details"]["minute"].endswith("Z") and found[-1]["details"]["last"] >= found[-1]["details"]["first"]
    )
    assert "bogus" not in json.dumps(trail.events(store))
    assert trail.verify(store).intact


def test_a_tally_is_written_by_the_next_event_once_its_minute_has_passed(store):
    for _ in range(3):
        assert refuse(store, "nobody", "a wrong guess!", "198.51.100.1") == 401
    assert [e["details"]["count"] for e in events(store, "user.login_failed")] == [1]
    with store.session() as s:  # as if the minute had passed
        s.execute(text("UPDATE audit_tallies SET minute = '2000-01-01T00:00Z'"))
    api.add_user(store, "dr.kim", "viewer", PASSWORD, actor="os:admin")
    assert [e["action"] for e in trail.events(store)][-2:] == ["user.login_failed", "user.created"]
    assert [e["details"]["count"] for e in events(store, "user.login_failed")] == [1, 2]
    assert trail.flush(store, everything=True) == 0  # nothing is written twice


# --- 6: a failed sign-in never records what was typed as the name -------------------------------


def test_a_failed_sign_in_records_the_account_or_a_keyed_hash_never_the_typed_text(store, monkeypatch):
    """issue 19.6: a password typed into the name field, or a patient's name, stayed in the trail."""
    api.add_user(store, "dr.kim", "viewer", PASSWORD, actor="os:admin")
    for typed in (PASSWORD, PATIENT, PASSWORD):
        assert refuse(store, typed, "whatever it is", "10.0.0.1") == 401
    assert refuse(store, "dr.kim", "wrong password!", "10.0.0.1") == 401
    trail.flush(store, everything=True)
    failed = events(store, "user.login_failed")
    unknown = [e for e in failed if e["target"] == "user:unknown"]
    assert {e["details"]["reason"] for e in unknown} == {"unknown user"}
    known = next(e for e in failed if e["target"] == "user:dr.kim")
    assert known["details"]["user_id"] == rows.user(store, "dr.kim").id
    hashes = {user_rules.name_hmac(store, typed) for typed in (PASSWORD, PATIENT)}
    assert unknown[0]["details"]["name_hmac"] in hashes and len(hashes) == 2
    monkeypatch.setenv("MEDOPS_AUDIT_KEY", "a site key")  # keyed by the audit key when there is one
    assert user_rules.name_hmac(store, PASSWORD) not in hashes
    with store.session() as s:
        attempts = [r[0] for r in s.execute(text("SELECT name FROM login_attempts"))]
    assert set(attempts) == {"unknown", "dr.kim"}
    store.engine.dispose()
    raw = Path(store.engine.url.database).read_bytes()
    assert PASSWORD.encode() not in raw and "김민수".encode() not in raw and b"900101" not in raw


# --- 7: tokens belong to someone ------------------------------------------------------------------


def test_tokens_die_with_their_owners_account(store):
    """issue 19.7: a token made in the dashboard by a user still worked after that user was disabled."""
    api.add_user(store, "it.park", "admin", PASSWORD, actor="os:admin")
    api.add_user(store, "dr.lee", "operator", PASSWORD, actor="os:admin")
    service, _ = api.create_token(store, "ci-gate", "viewer", actor="user:it.park", owner="it.park")
    personal, _ = api.create_token(store, "lee-notebook", "operator", actor="os:admin", user="dr.lee")
    site, _ = api.create_token(store, "site-ci", "viewer", actor="os:admin")
    listed = {t["name"]: (t["kind"], t["owner"]) for t in api.tokens(store)}
    assert listed == {
        "ci-gate": ("service", "it.park"),
        "lee-notebook": ("user", "dr.lee"),
        "site-ci": ("service", None),
    }
    assert api.token_principal(store, personal, route="/api/runs").account == "dr.lee"
    with pytest.raises(UserError, match="cannot have the admin role"):
        api.create_token(store, "too-high", "admin", actor="os:admin", user="dr.lee")
    with pytest.raises(UserError, match="owned by an admin"):
        api.create_token(store, "svc", "viewer", actor="os:admin", owner="dr.lee")

    api.set_password(store, "dr.lee", PASSWORD + "2", actor="os:admin")  # a new password revokes them too
    with pytest.raises(api.AuthError):
        api.token_principal(store, personal, route="/api/runs")
    api.disable_user(store, "it.park", actor="os:admin")
    with pytest.raises(api.AuthError):
        api.token_principal(store, service, route="/api/runs")
    assert api.token_principal(store, site, route="/api/runs").role == "viewer"  # the site's stays
    revoked = [e for e in trail.events(store) if e["action"] == "token.revoked"]
    assert [e["details"]["reason"] for e in revoked] == ["owner's password changed: dr.lee", "owner disabled: it.park"]
    assert events(store, "user.disabled")[0]["details"] == {"tokens_revoked": 1}


def test_a_user_token_never_acts_above_its_account(store):
    api.add_user(store, "dr.choi", "operator", PASSWORD, actor="os:admin")
    token, _ = api.create_token(store, "choi", "operator", actor="os:admin", user="dr.choi")
    with store.session() as s:  # the account's role was lowered since
        s.execute(text("UPDATE users SET role = 'viewer' WHERE name = 'dr.choi'"))
    assert api.token_principal(store, token, route="/api/runs").role == "viewer"
    with store.session() as s:  # disabled behind medops's back (no revocation ran): still refused
        s.execute(text("UPDATE users SET disabled = 1 WHERE name = 'dr.choi'"))
    with pytest.raises(api.AuthError):
        api.token_principal(store, token, route="/api/runs")
    trail.flush(store, everything=True)
    assert events(store, "token.refused")[-1]["details"]["reason"] == "owner disabled or removed"


def test_users_remove_revokes_tokens_and_keeps_the_history(cli):
    cli.run("users", "add", "dr.han", "--role", "admin", "--password-stdin", input=PASSWORD + "\n", check=True)
    store = api.open_store(cli.db)
    api.login(store, "dr.han", PASSWORD, client="127.0.0.1")
    created = cli.run("tokens", "create", "--name", "han-ci", "--role", "viewer", "--owner", "dr.han", "--json")
    token = json.loads(created.stdout)["token"]
    both = cli.run("tokens", "create", "--name", "x", "--role", "viewer", "--owner", "dr.han", "--user", "dr.han")
    assert both.returncode == 2 and "not both" in both.stderr
    assert cli.run("users", "remove", "dr.han", check=True).returncode == 0
    assert json.loads(cli.run("users", "list", "--json").stdout) == []
    [listed] = json.loads(cli.run("tokens", "list", "--json").stdout)
    assert listed["revoked_at"] is not None
    with pytest.raises(api.AuthError):
        api.token_principal(store, token, route="/api/runs")
    actions = [e["action"] for e in trail.events(store)]
    assert actions[:2] == ["user.created", "user.login"]  # what the account did stays
    assert actions[-3:] == ["token.revoked", "user.removed", "token.refused"]
    assert events(store, "user.removed")[0]["details"] == {"role": "admin", "tokens_revoked": 1}
    missing = cli.run("users", "remove", "dr.han")
    assert missing.returncode == 2 and "no user named 'dr.han'" in missing.stderr
    assert trail.verify(store).intact


# --- 8: locks per account and address, with backoff ------------------------------------------------


def test_an_attacker_elsewhere_cannot_lock_the_admin_out(store, tmp_path):
    """issue 19.8: six wrong passwords from anywhere locked the account for everyone."""
    api.add_user(store, "it.park", "admin", PASSWORD, actor="os:admin")
    assert api.login(store, "it.park", PASSWORD, client="10.0.0.2").role == "admin"  # the admin's workstation
    codes = [refuse(store, "it.park", f"guess number {i}", "203.0.113.66") for i in range(12)]
    assert codes == [401] * 5 + [429] * 7
    assert api.login(store, "it.park", PASSWORD, client="10.0.0.2").role == "admin"  # not locked out
    assert refuse(store, "it.park", PASSWORD, "10.0.0.3") == 429  # a new address, while the guessing goes on
    other_server = api.open_store(tmp_path / "medops.db")  # the limits live in the store: every server sees them
    assert refuse(other_server, "it.park", PASSWORD, "203.0.113.66") == 429
    other_server.close()


def test_the_lock_of_an_address_backs_off(store):
    api.add_user(store, "dr.yoon", "viewer", PASSWORD, actor="os:admin")
    api.login(store, "dr.yoon", PASSWORD, client="10.1.1.1")  # their own workstation
    assert [refuse(store, "dr.yoon", "wrong password!", "10.1.1.1") for _ in range(5)] == [401] * 5
    with pytest.raises(api.AuthError, match="try again in 1 minute") as locked:
        api.login(store, "dr.yoon", PASSWORD, client="10.1.1.1")
    assert locked.value.status == 429
    age_attempts(store, 61)  # a minute later: one more try is checked
    assert refuse(store, "dr.yoon", "wrong password!", "10.1.1.1") == 401
    with pytest.raises(api.AuthError, match="try again in 2 minutes"):  # then 4, 8, 15
        api.login(store, "dr.yoon", PASSWORD, client="10.1.1.1")
    age_attempts(store, 5 * 60)
    assert api.login(store, "dr.yoon", PASSWORD, client="10.1.1.1").name == "dr.yoon"
