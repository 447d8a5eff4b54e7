"""The PHI policy at the call boundary: what reaches an endpoint, what is stored, what is refused."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from conftest import SECRET, example, write_jsonl
from medops import api
from medops.errors import UserError
from medops.privacy.guard import PhiGuard, chosen_policy, is_internal
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread

RRN = "800101-1234567"
PATIENT = "김철수"
PHONE = "010-1234-5678"
PROMPT = f"환자 {PATIENT}님 (주민등록번호 {RRN}, 연락처 {PHONE})이 메트포르민 500mg 복용 후 어지럽다고 합니다."


@pytest.fixture
def endpoint(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("MEDOPS_PHI_POLICY", raising=False)
    monkeypatch.delenv("MEDOPS_INTERNAL_HOSTS", raising=False)
    with ServerThread(FakeOpenAIServer(FakeBehaviour(slow_s=3.0))) as running:
        yield running


def config(endpoint, data, **extra):
    return api.healthbench_config(
        data=str(data),
        model="openai:fake-model",
        grader="openai:fake-grader",
        model_base_url=endpoint.base_url,
        grader_base_url=endpoint.base_url,
        retry_base_delay=0.05,
        **extra,
    )


def korean_set(tmp_path):
    return write_jsonl(
        tmp_path / "ko.jsonl",
        [
            example(
                "k1",
                [("메트포르민 용량을 확인한다 {met}", 5, []), ("응급실 방문을 권한다 {unmet}", 3, [])],
                text=PROMPT,
            ),
            example("k2", [("Advises rest {met}", 2, [])], text="I have a mild headache since this morning."),
        ],
    )


def sent_text(endpoint) -> str:
    return "\n".join(m["content"] or "" for call in endpoint.server.log for m in call.messages)


def test_endpoints_are_internal_only_in_process_on_loopback_private_or_declared():
    assert is_internal({}, in_process=True)
    for url in ("http://127.0.0.1:8000/v1", "http://localhost/v1", "http://10.1.2.3/v1", "http://192.168.0.9/v1"):
        assert is_internal({"endpoint": url}, in_process=False, declared=set()), url
    for url in ("https://api.openai.com/v1", "http://8.8.8.8/v1", "http://gpu1.hospital.example/v1"):
        assert not is_internal({"endpoint": url}, in_process=False, declared=set()), url
    assert is_internal({"endpoint": "http://gpu1.hospital.example/v1"}, False, {"gpu1.hospital.example"})
    assert is_internal({"endpoint": "http://203.0.113.7/v1"}, False, {"203.0.113.0/24"})
    with pytest.raises(UserError, match="--phi-policy must be one of redact, block, allow"):
        chosen_policy("scrub")


def test_redact_sends_no_identifier_to_model_or_grader_and_stores_counts_only(endpoint, tmp_path):
    db = tmp_path / "medops.db"
    outcome = api.evaluate(config(endpoint, korean_set(tmp_path)), db=db, name="redacted", phi_policy="redact")
    assert outcome.status == "completed"
    sent = sent_text(endpoint)
    for value in (RRN, PATIENT, PHONE, "1234567"):
        assert value not in sent
    assert "메트포르민 500mg" in sent and "[PERSON_1]" in sent and "[KR_RRN_1]" in sent
    grader_prompts = [c.messages[-1]["content"] for c in endpoint.server.log if c.model == "fake-grader"]
    assert any("[PERSON_1]" in p for p in grader_prompts)  # the conversation inside the grader prompt too
    phi = outcome.summary["phi"]
    assert phi["calls"] == {"redact:internal": 5} and phi["blocked"] == 0
    assert phi["redacted"]["KR_RRN"] == 3 and phi["redacted"]["PERSON"] == 3  # the model's call and two grader calls
    # what came back and what is stored of the calls (responses, verdicts, cache) holds no value;
    # the items table keeps the data set as the hospital gave it, like the file itself
    for table in ("responses", "grades", "call_cache"):
        stored = json.dumps(connection_rows(db, f"SELECT * FROM {table}"), ensure_ascii=False)
        assert RRN not in stored and PATIENT not in stored and PHONE not in stored, table
    notes = [json.loads(n) for (n,) in connection_rows(db, "SELECT notes FROM responses WHERE notes IS NOT NULL")]
    assert {"policy": "redact", "endpoint": "internal", "entities": {"KR_RRN": 1, "PERSON": 1, "PHONE_NUMBER": 1}} in [
        n["phi"] for n in notes
    ]


def connection_rows(db, sql):
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def test_the_cache_keys_on_what_was_sent(endpoint, tmp_path):
    db = tmp_path / "medops.db"
    data = korean_set(tmp_path)
    api.evaluate(config(endpoint, data), db=db, name="plain", phi_policy="allow")
    calls = len(endpoint.server.log)
    api.evaluate(config(endpoint, data), db=db, name="redacted", phi_policy="redact")
    made = endpoint.server.log[calls:]
    # the PHI-free example is answered from the cache; the redacted one is a different request
    assert made and all("I have a mild headache" not in c.messages[-1]["content"] for c in made)
    assert all(PATIENT not in m["content"] for c in made for m in c.messages)


def test_block_refuses_the_call_counts_it_and_resume_with_another_policy_finishes(endpoint, tmp_path):
    db = tmp_path / "medops.db"
    outcome = api.evaluate(config(endpoint, korean_set(tmp_path)), db=db, name="blocked", phi_policy="block")
    assert (outcome.status, outcome.exit_code) == ("incomplete", 3)
    assert outcome.summary["phi"]["blocked"] == 1 and outcome.summary["usage"]["model"]["failed"] == 1
    assert PATIENT not in sent_text(endpoint) and RRN not in sent_text(endpoint)
    rows = [r for r in api.export("blocked", db=db) if r["prompt_id"] == "k1"]
    assert all("PHI in the request (1 KR_RRN, 1 PERSON, 1 PHONE_NUMBER)" in r["ungraded_reason"] for r in rows)
    assert RRN not in json.dumps(api.run("blocked", db=db))
    resumed = api.resume("blocked", db=db, phi_policy="redact")
    assert resumed.status == "completed" and RRN not in sent_text(endpoint)


def test_an_explicit_allow_sends_as_given(endpoint, tmp_path):
    outcome = api.evaluate(config(endpoint, korean_set(tmp_path)), db=tmp_path / "m.db", phi_policy="allow")
    assert outcome.status == "completed" and RRN in sent_text(endpoint)
    assert outcome.summary["phi"]["calls"] == {"allow:internal": 5}


def test_detection_missing_fails_closed_with_one_line_naming_what_to_install(endpoint, tmp_path):
    data = korean_set(tmp_path)
    code = f"""
import sys, json
sys.modules["presidio_analyzer"] = None
from medops import api
config = api.healthbench_config(data={str(data)!r}, model="openai:fake-model", grader="openai:fake-grader",
    model_base_url={endpoint.base_url!r}, grader_base_url={endpoint.base_url!r}, retry_base_delay=0.05)
outcome = api.evaluate(config, db={str(tmp_path / "m.db")!r}, phi_policy="redact")
print(json.dumps([outcome.status, outcome.exit_code, outcome.summary["n_failed_calls"]]))
print(api.export(outcome.run_id and str(outcome.run_id), db={str(tmp_path / "m.db")!r})[0]["ungraded_reason"])
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    lines = result.stdout.splitlines()
    assert json.loads(lines[0]) == ["failed", 3, 2], result.stderr
    assert "PHI detection is unavailable" in lines[1] and "pip install" in lines[1]
    assert len(endpoint.server.log) == 0  # nothing left the process


def test_a_policy_given_to_the_guard_applies_to_in_process_models_too():
    from medops.events import BeforeCall
    from medops.models.base import SamplingParams

    event = BeforeCall(1, "model", "local:smollm2", {}, [{"role": "user", "content": PROMPT}], SamplingParams(), True)
    PhiGuard(None).before_call(event)
    assert event.notes["phi"] == {"policy": "allow", "endpoint": "internal"} and event.messages[0]["content"] == PROMPT
    PhiGuard("redact").before_call(event)
    assert PATIENT not in event.messages[0]["content"] and event.notes["phi"]["entities"]["PERSON"] == 1


def test_the_cli_flag_and_the_environment_choose_the_policy(cli, server, tmp_path):
    data = korean_set(tmp_path)
    blocked = cli.run(*cli.eval_args(server, data, "--phi-policy", "block", "--json"))
    assert blocked.returncode == 3 and blocked.json()["phi"]["blocked"] == 1
    assert "1 call failed for good (model: 1)" in blocked.stderr
    from_env = cli.run(*cli.eval_args(server, data, "--json", "--name", "env"), env={"MEDOPS_PHI_POLICY": "redact"})
    assert from_env.returncode == 0 and from_env.json()["phi"]["redacted"]["KR_RRN"] == 3
    bad = cli.run(*cli.eval_args(server, data, "--phi-policy", "scrub"))
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--phi-policy must be one of" in bad.stderr
    audit = cli.run("audit", "list", "--json", check=True).json()
    summaries = [e for e in (audit if isinstance(audit, list) else audit["events"]) if e["action"] == "phi.summary"]
    assert summaries and all(RRN not in json.dumps(e, ensure_ascii=False) for e in summaries)
