"""Grouped grading and JSON-schema requests against the loopback server; logprob parsing."""

from __future__ import annotations

import json
import math

import pytest

from conftest import example, write_jsonl
from medops.grading.parse import p_met_from_choice_logprobs, p_met_from_token_logprobs, parse_group_verdicts


def export(cli, run_id):
    return {r["criterion"]: r for r in map(json.loads, cli.run("export", str(run_id), check=True).stdout.splitlines())}


def test_grouped_grading_maps_indices_back(cli, server, tmp_path):
    data = write_jsonl(
        tmp_path / "g.jsonl",
        [
            example(
                "a",
                [
                    ("A1 {met}", 5, ["axis:x"]),
                    ("A2 {unmet}", 3, ["axis:x"]),
                    ("A3 {met}", -2, ["axis:y"]),
                    ("A4 {unmet}", -4, ["axis:y"]),
                ],
                text="Qa",
            ),
            example("b", [("B1 {unmet}", 2, []), ("B2 {met}", 2, [])], text="Qb"),
        ],
    )
    summary = cli.run(*cli.eval_args(server, data, "--criteria-per-call", "4"), "--json", check=True).json()
    grader_calls = [c for c in server.server.log if c.model == "fake-grader"]
    assert len(grader_calls) == 2  # one per example
    assert summary["score"] == pytest.approx(((5 - 2) / 8 + 2 / 4) / 2)
    rows = export(cli, summary["run_id"])
    assert [rows[f"A{i}" + (" {met}" if i in (1, 3) else " {unmet}")]["criteria_met"] for i in (1, 2, 3, 4)] == [
        True,
        False,
        True,
        False,
    ]
    shown = cli.run("runs", "show", str(summary["run_id"]), "--json", check=True).json()
    assert shown["config"]["criteria_per_call"] == 4  # the run records that it was grouped


def test_grouped_missing_or_duplicated_index_is_retried_then_ungraded(cli, server, tmp_path):
    data = write_jsonl(
        tmp_path / "g.jsonl",
        [
            example(
                "a",
                [
                    ("A1 {met}", 5, []),
                    ("A2 {met} {grader-drop:1}", 3, []),
                    ("A3 {met} {grader-dup:all}", 2, []),
                    ("A4 {unmet}", 1, []),
                ],
            ),
        ],
    )
    result = cli.run(*cli.eval_args(server, data, "--criteria-per-call", "4", "--grader-parse-retries", "2"), "--json")
    assert result.returncode == 3  # A3 never got a single verdict: a failed call, so the run is incomplete
    summary = result.json()
    assert summary["status"] == "incomplete" and summary["usage"]["grader"]["failed"] == 1
    rows = export(cli, summary["run_id"])
    assert rows["A2 {met} {grader-drop:1}"]["criteria_met"] is True  # asked again alone, then answered
    dup = rows["A3 {met} {grader-dup:all}"]
    assert (
        dup["criteria_met"] is None
        and "no single verdict for criterion 3 in 3 grouped replies" in dup["ungraded_reason"]
    )
    assert rows["A1 {met}"]["criteria_met"] is True and rows["A4 {unmet}"]["criteria_met"] is False
    assert summary["n_ungraded_criteria"] == 1 and summary["n_excluded_examples"] == 1
    grader_calls = [c.messages[-1]["content"] for c in server.server.log if c.model == "fake-grader"]
    assert len(grader_calls) == 3
    assert "A1 {met}" in grader_calls[0] and "A1 {met}" not in grader_calls[1]  # only the unresolved are re-asked


def test_json_schema_is_requested_and_dropped_where_refused(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "s.jsonl", [example("a", [("A {met}", 1, []), ("B {unmet}", 1, [])])])
    summary = cli.run(*cli.eval_args(server, data, "--grader-json-schema"), "--json", check=True).json()
    formats = [c.params.get("response_format") for c in server.server.log if c.model == "fake-grader"]
    assert (
        all(
            f["type"] == "json_schema" and f["json_schema"]["schema"]["required"] == ["explanation", "criteria_met"]
            for f in formats
        )
        and len(formats) == 2
    )
    assert summary["score"] == 0.5

    server.server.log.clear()
    args = cli.eval_args(server, data, "--grader-json-schema", "--no-cache")
    args[args.index("openai:fake-grader")] = "openai:fake-grader-noschema"
    fallback = cli.run(*args, "--json", check=True).json()
    assert fallback["score"] == 0.5 and fallback["n_ungraded_criteria"] == 0
    statuses = [(c.status, "response_format" in c.params) for c in server.server.log if "grader" in c.model]
    assert statuses[0] == (400, True) and statuses[-1] == (200, False)


def test_group_parser_rejects_ambiguity():
    reply = json.dumps(
        {
            "grades": [
                {"index": 2, "criteria_met": True},
                {"index": 1, "criteria_met": "false"},
                {"index": 3, "criteria_met": True},
                {"index": 3, "criteria_met": False},
                {"index": 9, "criteria_met": True},
                {"index": "4", "criteria_met": True},
            ]
        }
    )
    verdicts = parse_group_verdicts(reply, {1, 2, 3, 4, 5})
    assert {k: v.criteria_met for k, v in verdicts.items()} == {1: False, 2: True, 4: True}
    assert parse_group_verdicts('[{"index": 1, "criteria_met": true}]', {1})[1].criteria_met is True
    assert parse_group_verdicts("no json", {1}) == {}


def test_logprob_parsing():
    assert p_met_from_choice_logprobs({" true": math.log(0.3), " false": math.log(0.1)}) == pytest.approx(0.75)
    assert p_met_from_choice_logprobs({" true": -1.0}) is None
    tokens = {
        "content": [
            {"token": '{"', "logprob": 0.0, "top_logprobs": []},
            {"token": "criteria_met", "logprob": 0.0, "top_logprobs": []},
            {"token": '":', "logprob": 0.0, "top_logprobs": []},
            {
                "token": " false",
                "logprob": math.log(0.6),
                "top_logprobs": [
                    {"token": " false", "logprob": math.log(0.6)},
                    {"token": " true", "logprob": math.log(0.2)},
                    {"token": " maybe", "logprob": math.log(0.1)},
                ],
            },
        ]
    }
    assert p_met_from_token_logprobs(tokens) == pytest.approx(0.25)
    assert p_met_from_token_logprobs({"content": [{"token": "true", "logprob": 0.0}]}) is None  # no criteria_met yet
    assert p_met_from_token_logprobs(None) is None


def test_logprob_verdicts_through_an_openai_compatible_endpoint(cli, server, tmp_path):
    data = write_jsonl(
        tmp_path / "lp.jsonl",
        [
            example(
                "a", [("A {met} {p-met:0.8}", 1, []), ("B {unmet} {p-met:0.3}", 1, []), ("C {met} {p-met:0.45}", 1, [])]
            ),
        ],
    )
    summary = cli.run(*cli.eval_args(server, data, "--grader-verdict", "logprob"), "--json", check=True).json()
    assert summary["n_ungraded_criteria"] == 0
    params = [c.params for c in server.server.log if c.model == "fake-grader"]
    assert all(p["logprobs"] is True and p["top_logprobs"] == 20 for p in params)
    import sqlite3

    with sqlite3.connect(cli.db) as connection:
        rows = dict(connection.execute("select criterion_index, p_met from grades"))
        verdicts = dict(connection.execute("select criterion_index, criteria_met from grades"))
    assert rows == {0: pytest.approx(0.8), 1: pytest.approx(0.3), 2: pytest.approx(0.45)}
    # The verdict follows P >= 0.5, not the reply's text ("C" said true with P(true) = 0.45).
    assert verdicts == {0: 1, 1: 0, 2: 0} and summary["score"] == pytest.approx(1 / 3)
