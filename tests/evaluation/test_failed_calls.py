"""A call that fails for good never vanishes: the run is `incomplete` (exit 3), the failure is
counted by role, `--resume` retries exactly what failed, and the gate refuses the run."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from conftest import example, write_jsonl
from medops.testing.fake_openai import FakeOpenAIServer, ServerThread

AX = ["axis:completeness"]


def rubric_set(tmp_path, fault: str = ""):
    """Three examples; ``fault`` goes into p2's prompt, so only that example's calls misbehave."""
    return write_jsonl(
        tmp_path / "set.jsonl",
        [
            example("p1", [("Advises rest {met}", 5, AX), ("Asks about duration {unmet}", 3, AX)]),
            example("p2", [("Advises fluids {met}", 4, AX)], text=f"I feel dizzy. {fault}"),
            example(
                "p3",
                [("Refers to emergency care {met}", 10, AX)],
                text="Chest pain.",
                tags=["theme:emergency_referrals"],
            ),
        ],
    )


def ok_calls(server) -> Counter:
    return Counter(c.key for c in server.server.log if c.status == 200)


def test_failed_model_call_makes_the_run_incomplete_and_resume_finishes_it(cli, server, tmp_path):
    data = rubric_set(tmp_path, "{model-500:3}")
    first = cli.run(*cli.eval_args(server, data, "--max-tries", "3"), "--json", "--name", "r")
    assert first.returncode == 3, first.stderr
    summary = first.json()
    assert summary["status"] == "incomplete"
    assert summary["n_failed_calls"] == 1
    assert summary["usage"]["model"]["failed"] == 1 and summary["usage"]["grader"]["failed"] == 0
    assert summary["n_examples"] == 2  # the score is over what has an answer, and the status says so
    notice = [line for line in first.stderr.splitlines() if "failed for good" in line]
    assert len(notice) == 1 and "model: 1" in notice[0] and "medops eval healthbench --resume" in notice[0]
    assert cli.run("runs", "show", "r", "--json", check=True).json()["status"] == "incomplete"

    before = ok_calls(server)
    resumed = cli.run("eval", "healthbench", "--resume", "r", "--json")
    assert resumed.returncode == 0, resumed.stderr
    done = resumed.json()
    assert done["status"] == "completed" and done["n_failed_calls"] == 0
    new = ok_calls(server) - before
    # exactly p2's model call and its one criterion: nothing that had completed was asked again
    assert sum(new.values()) == 2 and max(ok_calls(server).values()) == 1

    # the same run without a lasting failure gives the same result
    with ServerThread(FakeOpenAIServer()) as clean:
        control = cli.run(
            *cli.eval_args(clean, data, "--max-tries", "4"), "--json", "--no-cache", "--db", str(tmp_path / "c.db")
        )
    assert control.returncode == 0, control.stderr
    assert done["score"] == control.json()["score"] and done["metrics"] == control.json()["metrics"]
    assert done["score"] == pytest.approx((5 / 8 + 1 + 1) / 3)


def test_unreadable_grader_reply_is_a_failed_call_until_resumed(cli, server, tmp_path):
    data = write_jsonl(
        tmp_path / "g.jsonl",
        [
            example("a", [("A {met} {grader-malformed:4}", 2, AX), ("B {met}", 2, AX)]),
            example("b", [("C {met}", 1, AX)]),
        ],
    )
    first = cli.run(*cli.eval_args(server, data), "--json")
    assert first.returncode == 3
    summary = first.json()
    assert summary["status"] == "incomplete" and summary["n_failed_calls"] == 1
    assert summary["usage"]["grader"]["failed"] == 1 and summary["n_ungraded_criteria"] == 1
    resumed = cli.run("eval", "healthbench", "--resume", str(summary["run_id"]), "--json")
    assert resumed.returncode == 0 and resumed.json()["status"] == "completed"
    assert resumed.json()["score"] == 1.0


def test_a_run_where_every_call_failed_is_failed(cli, server, tmp_path):
    data = write_jsonl(
        tmp_path / "x.jsonl", [example(f"p{i}", [("A {met}", 1, AX)], text=f"Q{i} {{model-500:all}}") for i in range(2)]
    )
    result = cli.run(*cli.eval_args(server, data, "--max-tries", "2"), "--json")
    assert result.returncode == 3
    summary = result.json()
    assert summary["status"] == "failed" and summary["n_failed_calls"] == 2 and summary["score"] is None
    assert cli.run("eval", "healthbench", "--resume", str(summary["run_id"]), "--json").returncode == 3


def test_null_content_is_a_failure_and_an_empty_answer_is_graded(cli, server, tmp_path):
    data = write_jsonl(
        tmp_path / "n.jsonl",
        [
            example("null", [("A {met}", 1, AX)], text="Q1 {model-null:all}"),
            example("empty", [("B {unmet}", 1, AX)], text="Q2 {model-empty:all}"),
        ],
    )
    result = cli.run(*cli.eval_args(server, data, "--max-tries", "2"), "--json")
    assert result.returncode == 3
    summary = result.json()
    assert summary["n_failed_calls"] == 1 and summary["usage"]["model"]["failed"] == 1
    assert summary["n_examples"] == 1 and summary["score"] == 0.0  # the empty answer was graded (unmet)
    assert len([c for c in server.server.log if "Q1" in json.dumps(c.messages)]) == 2  # retried, then failed
    rows = {r["prompt_id"]: r for r in map(json.loads, cli.run("export", str(summary["run_id"])).stdout.splitlines())}
    assert rows["empty"]["response"] == "" and rows["empty"]["criteria_met"] is False
    assert rows["null"]["response"] is None


def test_cached_calls_are_reported_beside_calls(cli, server, tmp_path):
    data = rubric_set(tmp_path)
    first = cli.run(*cli.eval_args(server, data), "--json", check=True).json()
    assert first["usage"]["model"]["cached"] == 0 and first["usage"]["model"]["calls"] == 3
    again = cli.run(*cli.eval_args(server, data), "--json", check=True).json()
    assert again["usage"]["model"] | {"prompt_tokens": 0, "completion_tokens": 0} == {
        "calls": 0,
        "rejected": 0,
        "cached": 3,
        "failed": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
    }
    assert again["usage"]["grader"]["cached"] == 4 and again["usage"]["grader"]["calls"] == 0
    assert again["score"] == first["score"]


def test_exam_run_with_a_failed_call_is_incomplete_not_a_smaller_denominator(cli, server, tmp_path):
    rows = [
        {
            "question": f"Q{i} {{model-answer:B}}{' {model-500:2}' if i == 0 else ''}",
            "options": {"A": "x", "B": "y"},
            "answer_idx": "B",
        }
        for i in range(4)
    ]
    data = write_jsonl(tmp_path / "bank.jsonl", rows)
    args = [
        "eval",
        "mcqa",
        "--task",
        "generic",
        "--data",
        str(data),
        "--model",
        "openai:fake-model",
        "--model-base-url",
        server.base_url,
        "--retry-base-delay",
        "0.01",
        "--max-tries",
        "2",
        "--json",
    ]
    first = cli.run(*args)
    assert first.returncode == 3, first.stderr
    summary = first.json()
    assert summary["status"] == "incomplete" and summary["n_failed_calls"] == 1
    assert "medops eval mcqa --resume" in first.stderr
    resumed = cli.run("eval", "mcqa", "--resume", str(summary["run_id"]), "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.json()["status"] == "completed" and resumed.json()["score"] == 1.0
    assert resumed.json()["n_examples"] == 4


def test_failed_calls_are_counted_by_cause_in_the_summary_runs_show_and_the_gate(cli, server, tmp_path):
    """A grader whose host does not resolve and a request the PHI policy blocks: the closing line,
    `runs show` (table and JSON) and the gate say which cause failed how many calls."""
    data = write_jsonl(
        tmp_path / "set.jsonl",
        [
            example("p1", [("Advises rest {met}", 5, AX), ("Asks about duration {unmet}", 3, AX)]),
            example("p2", [("Advises fluids {met}", 4, AX)], text="My resident number is 800101-1234567."),
        ],
    )
    args = ["eval", "healthbench", "--data", str(data), "--model", "openai:fake-model", "--grader", "openai:g"]
    args += ["--model-base-url", server.base_url, "--grader-base-url", "http://medops-test.invalid/v1"]
    first = cli.run(*args, "--max-tries", "1", "--phi-policy", "block", "--name", "r")
    assert first.returncode == 3, first.stderr
    notice = [line for line in first.stderr.splitlines() if "failed for good" in line]
    assert len(notice) == 1 and "by cause: DNS error 2, PHI block 1" in notice[0], first.stderr
    shown = cli.run("runs", "show", "r", check=True).stdout
    assert "by cause: DNS error 2, PHI block 1" in shown
    document = cli.run("runs", "show", "r", "--json", check=True).json()
    assert document["failed_by_cause"] == {"DNS error": 2, "PHI block": 1}
    gate = cli.run("gate", "r", "--min", "overall_score=0", "--json").json()["rules"][0]
    assert "calls failed for good (model 1, grader 2), by cause: DNS error 2, PHI block 1" in gate["detail"]
