"""Paired comparison and release gates, checked against statistics computed independently here."""

from __future__ import annotations

import json
import sqlite3
from xml.etree import ElementTree

import numpy as np
import pytest
from scipy import stats

from conftest import example, write_jsonl
from medops.scoring.paired import holm

N = 40


def rubric_set(tmp_path):
    rows = [
        example(
            f"p{i}",
            [
                (f"Mentions rest {{met-if:REST}} #{i}", 2, ["axis:completeness"]),
                (f"Mentions fluids {{met-if:FLUIDS}} #{i}", 2, ["axis:accuracy"]),
                (f"Recommends antibiotics {{met-if:ANTIBIOTIC}} #{i}", -2, ["axis:accuracy"]),
            ],
            text=f"Question {i}",
            tags=["theme:global_health" if i % 2 else "theme:hedging"],
        )
        for i in range(N)
    ]
    return write_jsonl(tmp_path / "set.jsonl", rows)


def responses(tmp_path, name, texts):
    return write_jsonl(tmp_path / f"{name}.jsonl", [{"index": i, "response": t} for i, t in enumerate(texts)])


def run_given(cli, server, data, path, name):
    return cli.run(
        "eval",
        "healthbench",
        "--data",
        str(data),
        "--responses",
        str(path),
        "--grader",
        "openai:fake-grader",
        "--grader-base-url",
        server.base_url,
        "--name",
        name,
        "--json",
        check=True,
    ).json()


def per_example_scores(cli, run):
    rows = [json.loads(x) for x in cli.run("export", run, check=True).stdout.splitlines()]
    scores = {}
    for index in sorted({r["example_index"] for r in rows}):
        items = [r for r in rows if r["example_index"] == index]
        scores[index] = sum(r["points"] for r in items if r["criteria_met"]) / sum(
            r["points"] for r in items if r["points"] > 0
        )
    return np.array([scores[i] for i in sorted(scores)])


@pytest.fixture
def two_runs(cli, server, tmp_path):
    data = rubric_set(tmp_path)
    rng = np.random.default_rng(3)
    good = ["REST and FLUIDS." if rng.random() < 0.9 else "REST only." for _ in range(N)]  # scores 1 or 0.5
    worse = ["REST. ANTIBIOTIC now." if rng.random() < 0.6 else "REST and FLUIDS." for _ in range(N)]  # 0 or 1
    a = run_given(cli, server, data, responses(tmp_path, "a", good), "baseline")
    b = run_given(cli, server, data, responses(tmp_path, "b", worse), "candidate")
    return a, b


def test_compare_matches_independent_statistics(cli, two_runs):
    report = cli.run("compare", "baseline", "candidate", "--json", check=True).json()
    a, b = per_example_scores(cli, "baseline"), per_example_scores(cli, "candidate")
    overall = report["metrics"]["overall_score"]
    assert report["n_shared"] == N and overall["n"] == N
    assert overall["mean_a"] == pytest.approx(np.clip(a.mean(), 0, 1))
    assert overall["mean_b"] == pytest.approx(np.clip(b.mean(), 0, 1))
    assert overall["difference"] == pytest.approx(np.clip(b.mean(), 0, 1) - np.clip(a.mean(), 0, 1))
    expected_p = stats.permutation_test(
        (b - a,), np.mean, permutation_type="samples", n_resamples=9999, alternative="two-sided", random_state=0
    ).pvalue
    assert overall["p_value"] == pytest.approx(expected_p)
    assert overall["ci95_low"] < overall["difference"] < overall["ci95_high"] < 0
    assert (overall["better"], overall["worse"], overall["unchanged"]) == (
        int((b > a).sum()),
        int((b < a).sum()),
        int((b == a).sum()),
    )
    ps = {name: r["p_value"] for name, r in report["metrics"].items()}
    ordered = sorted(ps.values())
    assert min(r["p_holm"] for r in report["metrics"].values()) == pytest.approx(min(1, ordered[0] * len(ps)))
    assert overall["significant"] is True
    human = cli.run("compare", "baseline", "candidate", check=True).stdout
    assert "overall_score" in human and "significant" in human


def test_holm_by_hand():
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adjusted == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})


def test_compare_refuses_different_datasets(cli, server, tmp_path, two_runs):
    other = write_jsonl(
        tmp_path / "other.jsonl", [example("p0", [("Mentions rest {met-if:REST} #0", 2, [])], text="Question 0")]
    )
    run_given(cli, server, other, responses(tmp_path, "o", ["REST"]), "other")
    refused = cli.run("compare", "baseline", "other")
    assert refused.returncode == 2 and "different datasets" in refused.stderr
    partial = cli.run("compare", "baseline", "other", "--allow-partial", "--json", check=True).json()
    assert partial["n_shared"] == 1


def test_mcnemar_for_exam_runs(cli, server, tmp_path):
    rows = [
        {
            "id": f"q{i}",
            "question": f"Question {i}?",
            "options": {"A": "a", "B": "b", "C": "c", "D": "d"},
            "answer_idx": "ABCD"[i % 4],
        }
        for i in range(60)
    ]
    data = write_jsonl(tmp_path / "exam.jsonl", rows)
    for name, style in (("direct", "direct"), ("cot", "cot")):  # different prompts: different scripted answers
        cli.run(
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
            "--style",
            style,
            "--name",
            name,
            check=True,
        )
    with sqlite3.connect(cli.db) as connection:
        correct = {
            run: dict(connection.execute("select item_index, correct from answers where run_id = ?", (run,)))
            for run in (1, 2)
        }
    a = np.array([correct[1][i] for i in range(60)], dtype=bool)
    b = np.array([correct[2][i] for i in range(60)], dtype=bool)
    report = cli.run("compare", "direct", "cot", "--json", check=True).json()["metrics"]["accuracy"]
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    expected = stats.binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    assert report["test"] == "mcnemar_exact" and report["p_value"] == pytest.approx(expected)
    assert report["difference"] == pytest.approx(b.mean() - a.mean())
    assert (report["better"], report["worse"]) == (only_b, only_a)


def test_gate_exit_codes_junit_and_baseline(cli, two_runs, tmp_path):
    _, b = two_runs
    ok = cli.run("gate", "candidate", "--min", f"overall_score={b['score'] - 0.01}", "--max-ungraded-share", "0")
    assert ok.returncode == 0 and "gate passed" in ok.stdout
    policy = tmp_path / "gate.yaml"
    policy.write_text(
        "rules:\n  - {metric: overall_score, min: 0.99}\n  - {metric: 'theme:hedging', min: 0}\n"
        "  - {max_cost_usd: 1}\n  - {metric: overall_score, max_drop: 0.01}\n"
    )
    junit = tmp_path / "gate.xml"
    unpriced = cli.run("gate", "candidate", "--policy", str(policy), "--baseline", "baseline", "--json")
    cost_rule = next(v for v in unpriced.json()["rules"] if v["rule"] == "cost <= $1")
    assert not cost_rule["passed"] and "no price for openai:fake-grader" in cost_rule["detail"]  # never guessed
    prices = tmp_path / "prices.yaml"
    prices.write_text("openai:fake-grader: {input: 3.0, output: 15.0}\n")
    failed = cli.run(
        "gate",
        "candidate",
        "--policy",
        str(policy),
        "--baseline",
        "baseline",
        "--junit",
        str(junit),
        "--json",
        env={"MEDOPS_PRICES": str(prices)},
    )
    usage = b["usage"]["grader"]
    expected_cost = (usage["prompt_tokens"] * 3.0 + usage["completion_tokens"] * 15.0) / 1e6
    cost_rule = next(v for v in failed.json()["rules"] if v["rule"] == "cost <= $1")
    assert cost_rule["detail"] == f"${expected_cost:.4f}"
    shown = cli.run("runs", "show", "candidate", "--json", env={"MEDOPS_PRICES": str(prices)}, check=True).json()
    assert shown["cost"]["usd"]["grader"] == pytest.approx(expected_cost)
    assert shown["cost"]["per_example_usd"] == pytest.approx(expected_cost / b["n_examples"])
    assert failed.returncode == 1
    verdicts = {v["rule"]: v["passed"] for v in failed.json()["rules"]}
    assert verdicts == {
        "overall_score >= 0.99": False,
        "theme:hedging >= 0": True,
        "cost <= $1": True,
        "overall_score drops by at most 0.01 (significant drops only)": False,
    }
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("tests") == "4" and suite.get("failures") == "2"
    assert len(suite.findall("testcase/failure")) == 2
    # The same drop is not held against the baseline itself (no change), and a non-significant rule passes.
    same = cli.run("gate", "baseline", "--max-drop", "overall_score=0.01", "--baseline", "baseline")
    assert same.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min", "overall_score"], "expected METRIC=NUMBER"),
        ([], "no rules"),
        (["--max-drop", "overall_score=0.1"], "max-drop rules need --baseline"),
        (["--policy", "{bad}"], "gate.yaml: rules.0: each rule sets exactly one of"),
    ],
)
def test_gate_usage_errors_exit_2(cli, two_runs, tmp_path, args, message):
    bad = tmp_path / "gate.yaml"
    bad.write_text("rules:\n  - {metric: overall_score, min: 0.5, max_drop: 0.1}\n")
    result = cli.run("gate", "candidate", *[a.format(bad=bad) for a in args])
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_budget_stops_cleanly_and_resumes(cli, server, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "openai:fake-model: {input: 1000, output: 1000}\nopenai:fake-grader: {input: 1000, output: 1000}\n"
    )
    env = {"MEDOPS_PRICES": str(prices)}
    data = write_jsonl(
        tmp_path / "b.jsonl",
        [
            example(f"p{i}", [(f"A{i} {{met}}", 1, []), (f"B{i} {{unmet}}", 1, [])], text=f"Question {i}")
            for i in range(10)
        ],
    )
    stopped = cli.run(*cli.eval_args(server, data, "--concurrency", "2", "--budget-usd", "3"), "--json", env=env)
    assert stopped.returncode == 130 and "budget of $3 is reached" in stopped.stderr and "--resume 1" in stopped.stderr
    partial = stopped.json()
    usage = partial["usage"]
    spent = sum(u["prompt_tokens"] + u["completion_tokens"] for u in usage.values()) * 1000 / 1e6
    assert partial["status"] == "interrupted" and 0 < spent <= 3
    assert partial["n_examples"] < 10
    unpriced = cli.run(*cli.eval_args(server, data, "--budget-usd", "3"))
    assert unpriced.returncode == 2 and "needs a price for openai:fake-model" in unpriced.stderr
    done = cli.run("eval", "healthbench", "--resume", "1", "--budget-usd", "100", "--json", env=env, check=True).json()
    assert done["status"] == "completed" and done["n_examples"] == 10
    ok = [c.key for c in server.server.log if c.status == 200]
    assert len(ok) == len(set(ok)) == 30  # no completed call was paid for twice
