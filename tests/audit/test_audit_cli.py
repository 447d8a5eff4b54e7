"""`medops audit list / verify / export` and what the other commands leave in the trail: exit 0
for an intact chain, 1 naming the first edited, deleted or reordered event, 2 for what cannot be
checked; runs, gates, exports, reports and pulls recorded with ids and counts, never prompt text."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

from conftest import SECRET, example, write_jsonl
from medops.audit import record
from medops.evaluation.results import export_rows
from medops.ops.gate import Rule, evaluate_gate
from medops.reports.export import render_rows
from medops.store.repository import Store

AX = ["axis:completeness"]
PROMPTS = ("I have a headache.", "I feel dizzy.", "Chest pain.")
CRITERIA = ("Advises rest", "Asks about duration", "Advises fluids", "Refers to emergency care")


def seed_events(cli, n: int = 5) -> None:
    store = Store.open(str(cli.db))
    for i in range(n):
        record(store, "test.event", f"run:{i}", {"run_id": i, "rows": i * 10})
    store.engine.dispose()


def sql(cli, *statements: str) -> None:
    with sqlite3.connect(cli.db) as connection:
        for statement in statements:
            connection.execute(statement)


def audit_rows(cli) -> list[dict]:
    return cli.run("audit", "list", "--json", check=True).json()


@pytest.fixture(autouse=True)
def no_key(monkeypatch):
    monkeypatch.delenv("MEDOPS_AUDIT_KEY", raising=False)


def test_verify_intact_then_edited_details_name_the_event(cli):
    seed_events(cli)
    ok = cli.run("audit", "verify")
    assert ok.returncode == 0 and "intact: 5 events" in ok.stdout
    assert cli.run("audit", "verify", "--json", check=True).json()["intact"] is True
    sql(cli, """UPDATE audit_events SET details = '{"run_id": 2, "rows": 999}' WHERE id = 3""")
    broken = cli.run("audit", "verify")
    assert broken.returncode == 1
    assert "broken at event 3" in broken.stdout and "details were changed" in broken.stdout
    as_json = cli.run("audit", "verify", "--json")
    assert as_json.returncode == 1 and as_json.json()["broken_seq"] == 3 and as_json.json()["intact"] is False


def test_edited_field_with_recomputed_details_hash_is_caught(cli):
    seed_events(cli)
    sql(cli, "UPDATE audit_events SET actor = 'os:someone-else' WHERE id = 2")
    broken = cli.run("audit", "verify")
    assert broken.returncode == 1 and "broken at event 2" in broken.stdout and "hash does not match" in broken.stdout


def test_deleted_middle_event_breaks_the_chain(cli):
    seed_events(cli)
    sql(cli, "DELETE FROM audit_events WHERE id = 3")
    broken = cli.run("audit", "verify")
    assert broken.returncode == 1
    assert "broken at event 4" in broken.stdout and "event 3 before it is missing" in broken.stdout


def test_deleted_and_renumbered_events_break_the_chain(cli):
    seed_events(cli)
    sql(cli, "DELETE FROM audit_events WHERE id = 3", "UPDATE audit_events SET id = id - 1 WHERE id > 3")
    broken = cli.run("audit", "verify")
    assert broken.returncode == 1 and "broken at event 3" in broken.stdout


def test_swapped_sequence_breaks_the_chain(cli):
    seed_events(cli)
    sql(
        cli,
        "UPDATE audit_events SET id = -1 WHERE id = 2",
        "UPDATE audit_events SET id = 2 WHERE id = 4",
        "UPDATE audit_events SET id = 4 WHERE id = -1",
    )
    broken = cli.run("audit", "verify")
    assert broken.returncode == 1 and "broken at event 2" in broken.stdout


def test_keyed_trail_needs_its_key(cli):
    key = {"MEDOPS_AUDIT_KEY": "k-0123456789abcdef"}
    seed_events(cli, 2)
    assert cli.run("audit", "export", "-o", str(cli.db.parent / "a.jsonl"), env=key).returncode == 0  # keyed event
    undeclared = cli.run("audit", "verify", "--json", env=key)  # nothing says events 1-2 predate the key
    assert undeclared.returncode == 1 and undeclared.json()["broken_seq"] == 1, undeclared.stdout
    assert "--unkeyed-before" in undeclared.json()["reason"]
    declared = cli.run("audit", "verify", "--unkeyed-before", "3", "--json", env=key)
    assert declared.returncode == 0, declared.stdout + declared.stderr
    assert declared.json()["keyed"] == 2 and declared.json()["unkeyed_before"] == 3  # the export and the declaration
    with_key = cli.run("audit", "verify", "--json", env=key)  # the declaration is in the trail now
    assert with_key.returncode == 0 and with_key.json()["keyed"] == 2, with_key.stderr
    without = cli.run("audit", "verify")
    assert without.returncode == 2 and without.stdout == ""
    assert without.stderr.strip().count("\n") == 0 and "MEDOPS_AUDIT_KEY" in without.stderr
    unkeyed_declaration = cli.run("audit", "verify", "--unkeyed-before", "2")  # it would count for nothing
    assert unkeyed_declaration.returncode == 2 and "needs MEDOPS_AUDIT_KEY" in unkeyed_declaration.stderr
    wrong = cli.run("audit", "verify", env={"MEDOPS_AUDIT_KEY": "guess"})  # its declaration does not count either
    assert wrong.returncode == 1 and "broken at event 1" in wrong.stdout
    assert key["MEDOPS_AUDIT_KEY"] not in cli.db.read_bytes().decode("latin-1")


def test_list_export_and_usage_errors(cli, tmp_path):
    missing = cli.run("audit", "verify")  # a reader: a missing store is an error, not "no events yet"
    assert missing.returncode == 2 and f"no medops store at {cli.db}" in missing.stderr and not cli.db.exists()
    Store.open(str(cli.db)).engine.dispose()  # a writer creates the store
    empty = cli.run("audit", "verify")
    assert empty.returncode == 0 and "no events yet" in empty.stdout
    seed_events(cli, 4)
    assert [e["seq"] for e in audit_rows(cli)] == [1, 2, 3, 4]
    assert [e["seq"] for e in cli.run("audit", "list", "--json", "--limit", "2", check=True).json()] == [3, 4]
    table = cli.run("audit", "list", check=True).stdout
    assert "test.event" in table and "run:3" in table
    out = tmp_path / "audit.jsonl"
    exported = cli.run("audit", "export", "-o", str(out))
    assert exported.returncode == 0 and "wrote 4 audit events" in exported.stderr
    assert [json.loads(line)["seq"] for line in out.read_text().splitlines()] == [1, 2, 3, 4]
    assert audit_rows(cli)[-1]["action"] == "audit.export"
    missing = cli.run("audit", "export", "-o", str(tmp_path / "no" / "such" / "dir" / "a.jsonl"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    assert cli.run("audit", "list", "--limit", "0").returncode == 2


def run_set(tmp_path):
    return write_jsonl(
        tmp_path / "set.jsonl",
        [
            example("p1", [("Advises rest {met}", 5, AX), ("Asks about duration {unmet}", 3, AX)], text=PROMPTS[0]),
            example("p2", [("Advises fluids {met}", 4, AX)], text=PROMPTS[1]),
            example("p3", [("Refers to emergency care {met}", 10, AX)], text=PROMPTS[2]),
        ],
    )


def test_cli_run_gate_export_report_leave_events_without_prompt_text(cli, server, tmp_path):
    data = run_set(tmp_path)
    first = cli.run(*cli.eval_args(server, data), "--json", "--name", "r1")
    assert first.returncode == 0, first.stderr
    run_id = first.json()["run_id"]
    gate = cli.run("gate", "r1", "--min", "overall_score=0.1", "--min", "overall_score=0.99", "--json")
    assert gate.returncode == 1
    export_file, report_file = tmp_path / "rows.csv", tmp_path / "r1.html"
    exported = cli.run("export", "r1", "--format", "csv", "-o", str(export_file), check=True)
    assert exported.stdout == ""
    stdout_rows = cli.run("export", "r1", check=True).stdout
    cli.run("report", "r1", "-o", str(report_file), check=True)

    found = audit_rows(cli)
    actions = [e["action"] for e in found]
    assert actions == [
        "run.started",
        "run.ended",
        "phi.summary",
        "gate.decision",
        "run.export",
        "run.export",
        "run.report",
    ]
    started, ended, phi, decision, to_file, to_stdout, report = found
    # loopback is internal: the default policy sent everything as it was, and says so
    assert phi["target"] == f"run:{run_id}" and phi["details"]["calls"] == {
        "allow:internal": first.json()["usage"]["model"]["calls"] + first.json()["usage"]["grader"]["calls"]
    }
    assert started["target"] == ended["target"] == f"run:{run_id}"
    assert started["details"]["model"] == "openai:fake-model" and started["details"]["data_file"] == "set.jsonl"
    assert ended["details"]["status"] == "completed" and ended["details"]["n_failed_calls"] == 0
    assert ended["details"]["score"] == first.json()["score"]
    assert decision["details"]["passed"] is False and decision["details"]["run_id"] == run_id
    verdicts = {r["rule"]: r["passed"] for r in decision["details"]["rules"]}
    assert verdicts == {"complete": True, "overall_score >= 0.1": True, "overall_score >= 0.99": False}
    assert to_file["details"] == {"run_id": run_id, "format": "csv", "rows": 4, "file": "rows.csv"}
    assert to_stdout["details"]["file"] is None and len(stdout_rows.splitlines()) == 4
    assert report["details"]["file"] == "r1.html" and report["details"]["format"] == "html"
    assert all(e["actor"].startswith("os:") for e in found)

    assert cli.run("audit", "verify").returncode == 0
    with sqlite3.connect(cli.db) as connection:
        stored = json.dumps(connection.execute("SELECT * FROM audit_events").fetchall(), ensure_ascii=False)
    listed = json.dumps(found, ensure_ascii=False)
    for text in (*PROMPTS, *CRITERIA, SECRET, str(tmp_path)):
        assert text not in stored and text not in listed


def test_gate_and_export_output_is_what_the_library_gives(cli, server, tmp_path):
    """The commands now go through medops.api (which records the event): same bytes as before."""
    data = run_set(tmp_path)
    cli.run(*cli.eval_args(server, data), "--json", "--name", "r1", check=True)
    shown = cli.run("gate", "r1", "--min", "overall_score=0.1", "--min", "overall_score=0.99")
    store = Store.open(str(cli.db))
    rules = [Rule(metric="overall_score", min=0.1), Rule(metric="overall_score", min=0.99)]
    verdicts = evaluate_gate(store, "r1", rules)
    expected = "".join(f"{'PASS' if v.passed else 'FAIL'} {v.rule}: {v.detail}\n" for v in verdicts)
    assert shown.returncode == 1 and shown.stdout == expected + "gate failed\n"
    assert cli.run("export", "r1", check=True).stdout == render_rows(export_rows(store, "r1"), "jsonl")
    cli.run("export", "r1", "--format", "csv", "-o", str(tmp_path / "rows.csv"), check=True)
    assert (tmp_path / "rows.csv").read_bytes() == render_rows(export_rows(store, "r1"), "csv").encode()
    store.engine.dispose()


def test_data_pull_is_recorded(cli):
    body = json.dumps(example("a", [("ok {met}", 1, [])])).encode() + b"\n"
    cache = cli.db.parent / "cache"
    cache.mkdir()
    (cache / "2025-05-07-06-14-12_oss_eval.jsonl").write_bytes(body)  # placed by hand: no download
    pulled = cli.run("data", "pull", "healthbench", check=True)
    assert "already cached" in pulled.stdout
    (event,) = audit_rows(cli)
    assert event["action"] == "data.pull" and event["target"] == "dataset:healthbench"
    assert event["details"] == {
        "name": "healthbench",
        "file": "2025-05-07-06-14-12_oss_eval.jsonl",
        "sha256": hashlib.sha256(body).hexdigest(),
        "size_bytes": len(body),
        "downloaded": False,
    }
