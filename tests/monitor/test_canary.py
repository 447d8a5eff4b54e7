"""Canary evaluations: each round is an ordinary run compared with a baseline by the paired tests of
``medops compare``; rows go to monitor_scores; exit 1 on a significant drop, 3 when incomplete."""

from __future__ import annotations

from pathlib import Path

from conftest import example, write_jsonl
from medops.store.repository import Store
from medops.store.scores import scores

N = 12


def canary_set(path: Path, *, extra: str = "") -> Path:
    """Every criterion met exactly when the graded answer says GOOD: the fake model never does."""
    rows = [
        example(
            f"q{i}",
            [(f"The answer is good {{met-if:GOOD}}{extra}", 10, ["axis:accuracy"])],
            text=f"Question {i}: what helps a tension headache?",
        )
        for i in range(N)
    ]
    return write_jsonl(path, rows)


def canary_args(server, data: Path, *extra: str) -> list[str]:
    return [
        "monitor",
        "canary",
        "--data",
        str(data),
        "--model",
        "openai:fake-model",
        "--model-base-url",
        server.base_url,
        "--grader",
        "openai:fake-grader",
        "--grader-base-url",
        server.base_url,
        "--retry-base-delay",
        "0.05",
        *extra,
    ]


def test_canary_rounds_compare_with_the_baseline(cli, server, tmp_path):
    data = canary_set(tmp_path / "canary.jsonl")
    first = cli.run(*canary_args(server, data), "--json")
    assert first.returncode == 0, first.stderr
    doc1 = first.json()
    assert doc1["status"] == "completed" and doc1["baseline_run_id"] is None and doc1["score"] == 0.0
    assert "no baseline yet" in first.stderr

    second = cli.run(*canary_args(server, data), "--json")
    assert second.returncode == 0, second.stderr
    doc2 = second.json()
    assert doc2["baseline_run_id"] == doc1["run_id"]  # the previous canary run, same data and model
    overall = doc2["comparison"]["metrics"]["overall_score"]
    assert overall["difference"] == 0.0 and not overall["significant"] and doc2["dropped"] == []

    store = Store.open(str(cli.db))
    rows = scores(store, source="canary", run_id=doc2["run_id"])
    assert {r.metric for r in rows} == set(doc2["comparison"]["metrics"])
    row = next(r for r in rows if r.metric == "overall_score")
    assert row.n == N and row.value == 0.0 and row.tag == "all"
    assert row.details["baseline_run_id"] == doc1["run_id"] and row.details["significant"] is False
    assert {"difference", "ci95_low", "ci95_high", "p_value", "p_holm"} <= set(row.details)

    # a good baseline (answers that say GOOD, graded on the same file): the live model dropped
    responses = write_jsonl(tmp_path / "good.jsonl", [{"index": i, "response": "GOOD: rest."} for i in range(N)])
    good = cli.run(*cli.eval_args(server, data, "--responses", str(responses), "--name", "good", "--json"))
    assert good.returncode == 0, good.stderr
    dropped = cli.run(*canary_args(server, data), "--baseline", "good")
    assert dropped.returncode == 1, dropped.stderr
    assert "DROP" in dropped.stdout and "significant drop" in dropped.stderr and "overall_score" in dropped.stderr
    latest = scores(store, source="canary", metric="overall_score")[-1]
    assert latest.details["significant"] is True and latest.details["difference"] == -1.0
    assert latest.details["mean_baseline"] == 1.0

    # the next default baseline is still a canary run (an eval run is never picked on its own)
    fourth = cli.run(*canary_args(server, data), "--json")
    assert fourth.returncode == 0 and fourth.json()["baseline_run_id"] not in (None, good.json()["run_id"])
    # another model label has no baseline of its own yet
    other = cli.run(*canary_args(server, data), "--model", "openai:fake-model-b", "--json")
    assert other.returncode == 0 and other.json()["baseline_run_id"] is None


def test_incomplete_canary_exits_3(cli, server, tmp_path):
    data = canary_set(tmp_path / "failing.jsonl", extra=" {grader-500:all}")
    result = cli.run(*canary_args(server, data, "--max-tries", "1", "--json"))
    assert result.returncode == 3, result.stderr
    document = result.json()
    assert document["status"] == "incomplete" and document["comparison"] is None
    rows = scores(Store.open(str(cli.db)), source="canary")
    assert len(rows) == 1 and rows[0].details["run_status"] == "incomplete"


def test_exam_canary(cli, server, tmp_path):
    exam = write_jsonl(
        tmp_path / "exam.jsonl",
        [
            {
                "question": f"Q{i}: which drug? {{model-answer:A}}",
                "options": {"A": "x", "B": "y", "C": "z", "D": "w"},
                "answer_idx": "A",
                "answer": "x",
            }
            for i in range(4)
        ],
    )
    args = ["monitor", "canary", "--task", "medqa", "--data", str(exam), "--model", "openai:fake-model"]
    args += ["--model-base-url", server.base_url, "--retry-base-delay", "0.05", "--json"]
    first = cli.run(*args)
    assert first.returncode == 0, first.stderr
    assert first.json()["score"] == 1.0
    second = cli.run(*args)
    assert second.returncode == 0, second.stderr
    accuracy = second.json()["comparison"]["metrics"]["accuracy"]
    assert accuracy["test"] == "mcnemar_exact" and accuracy["difference"] == 0.0

    refused = cli.run("monitor", "canary", "--data", str(exam), "--model", "openai:fake-model")
    assert refused.returncode == 2 and "--grader is required" in refused.stderr
