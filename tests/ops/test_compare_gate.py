"""Paired comparison and release gates, checked against statistics computed independently here."""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
from xml.etree import ElementTree

import numpy as np
import pytest
from scipy import stats

from conftest import REPO, example, run_on_responses, write_jsonl
from medops.scoring.paired import holm
from medops.store.repository import Store
from medops.store.schema import Run

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
    a = run_on_responses(cli, server, data, good, "baseline")
    b = run_on_responses(cli, server, data, worse, "candidate")
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
    run_on_responses(cli, server, other, ["REST"], "other")
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
    assert next(iter(verdicts)) == "complete"  # always evaluated, always first
    assert verdicts == {
        "complete": True,
        "overall_score >= 0.99": False,
        "theme:hedging >= 0": True,
        "cost <= $1": True,
        "overall_score drops by at most 0.01 (significant drops only)": False,
    }
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("tests") == "5" and suite.get("failures") == "2"
    assert len(suite.findall("testcase/failure")) == 2
    assert suite.find("testcase").get("name") == "complete"
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


# ----- the `complete` rule ----------------------------------------------------------------------


def run_with_failures(cli, server, tmp_path, name, n=20, failing=1) -> tuple[int, str, dict]:
    """A real run where the first ``failing`` grader calls get HTTP 500 on every try (for good);
    its id, status and stored summary (run.summary)."""
    rows = [
        example(f"p{i}", [(f"Criterion {{met}} #{i}{' {grader-500:all}' if i < failing else ''}", 1, [])], text=f"Q{i}")
        for i in range(n)
    ]
    data = write_jsonl(tmp_path / f"{name}.jsonl", rows)
    result = cli.run(*cli.eval_args(server, data, "--max-tries", "2", "--name", name), "--json")
    assert result.returncode == (3 if failing else 0), result.stderr
    run = Store.open(str(cli.db)).find_run(name)
    return run.id, run.status, run.summary


def complete_rule(result) -> dict:
    rules = result.json()["rules"]
    assert rules[0]["rule"] == "complete"  # always evaluated, always first
    return rules[0]


def test_gate_complete_rule_on_a_real_incomplete_run(cli, server, tmp_path):
    run_id, status, summary = run_with_failures(cli, server, tmp_path, "partial")
    failed, recorded = summary["n_failed_calls"], summary["n_calls_recorded"]
    assert status == "incomplete" and failed == 1 and summary["usage"]["grader"]["failed"] == 1
    share = failed / recorded  # 1 of 40 (20 answers and 20 verdicts)

    refused = cli.run("gate", "partial", "--min", "overall_score=0", "--json")
    assert refused.returncode == 1 and refused.json()["passed"] is False
    rule = complete_rule(refused)
    assert rule["passed"] is False
    assert f"candidate run {run_id} is incomplete: 1 of {recorded} calls failed for good (grader 1)" in rule["detail"]
    assert f"`medops eval healthbench --resume {run_id}`" in rule["detail"]
    assert [v["passed"] for v in refused.json()["rules"][1:]] == [True]  # the other rules are still reported

    junit = tmp_path / "gate.xml"
    too_many = cli.run(
        "gate", "partial", "--min", "overall_score=0", "--max-failed-call-share", f"{share / 2}", "--junit", str(junit)
    )
    assert too_many.returncode == 1 and f"> allowed {share / 2:g}" in too_many.stdout
    assert too_many.stdout.splitlines()[0].startswith("FAIL complete: candidate run")
    first = ElementTree.parse(junit).getroot().find("testcase")
    assert first.get("name") == "complete" and "--resume" in first.find("failure").get("message")

    policy = tmp_path / "gate.yaml"
    policy.write_text(f"rules:\n  - {{metric: overall_score, min: 0}}\n  - {{max_failed_call_share: {share * 2}}}\n")
    allowed = cli.run("gate", "partial", "--policy", str(policy), "--json")
    assert allowed.returncode == 0, allowed.stdout
    assert f"share {share:.4f} <= allowed {share * 2:g}" in complete_rule(allowed)["detail"]
    assert [v["rule"] for v in allowed.json()["rules"]] == ["complete", "overall_score >= 0"]
    # Policy and flag together: every rule holds, so the stricter share decides.
    stricter = cli.run("gate", "partial", "--policy", str(policy), "--max-failed-call-share", f"{share / 2}")
    assert stricter.returncode == 1

    # A finished candidate compared with a partial baseline is misleading: the baseline must be complete too.
    run_with_failures(cli, server, tmp_path, "whole", failing=0)
    against = cli.run("gate", "whole", "--min", "overall_score=0", "--baseline", "partial", "--json")
    assert against.returncode == 1
    detail = complete_rule(against)["detail"]
    assert "candidate run" in detail and "completed" in detail and f"baseline run {run_id} is incomplete" in detail


def test_gate_never_passes_interrupted_failed_or_running_runs(cli, server, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "openai:fake-model: {input: 1000, output: 1000}\nopenai:fake-grader: {input: 1000, output: 1000}\n"
    )
    data = write_jsonl(
        tmp_path / "b.jsonl",
        [example(f"p{i}", [(f"A{i} {{met}}", 1, [])], text=f"Question {i}") for i in range(10)],
    )
    stopped = cli.run(
        *cli.eval_args(server, data, "--concurrency", "2", "--budget-usd", "3", "--name", "stopped"),
        "--json",
        env={"MEDOPS_PRICES": str(prices)},
    )
    assert stopped.returncode == 130 and stopped.json()["status"] == "interrupted"
    args = ["--min", "overall_score=0", "--max-failed-call-share", "1", "--json"]  # even allowing every call to fail
    result = cli.run("gate", "stopped", *args)
    assert result.returncode == 1
    detail = complete_rule(result)["detail"]
    assert "interrupted" in detail and "`medops eval healthbench --resume 1`" in detail

    fatal = cli.run(
        "eval",
        "healthbench",
        "--data",
        str(data),
        "--model",
        "openai:fake-unauthorized",
        "--model-base-url",
        server.base_url,
        "--grader",
        "openai:fake-grader",
        "--grader-base-url",
        server.base_url,
        "--name",
        "refused",
        "--json",
    )
    assert fatal.returncode == 2 and fatal.json()["status"] == "failed"
    result = cli.run("gate", "refused", *args)
    assert result.returncode == 1
    detail = complete_rule(result)["detail"]
    assert detail.startswith("candidate run 2 failed") and "--resume 2" in detail

    # A run another live process still holds (no real run can be kept mid-flight for the length of a
    # gate call cheaply, so the store says so: this process's pid, this host).
    store = Store.open(str(cli.db))
    with store.session() as s:
        run = s.get(Run, 1)
        run.status, run.pid, run.hostname = "running", os.getpid(), socket.gethostname()
    result = cli.run("gate", "stopped", *args)
    assert result.returncode == 1 and "still running" in complete_rule(result)["detail"]


def test_gate_passes_runs_recorded_before_failed_calls_were_counted(cli, two_runs):
    store = Store.open(str(cli.db))
    with store.session() as s:  # a run as an older medops stored it: completed, no failed-call counts
        run = s.get(Run, two_runs[1]["run_id"])
        run.summary = {k: v for k, v in run.summary.items() if k not in ("n_failed_calls", "n_calls_recorded")}
    result = cli.run("gate", "candidate", "--min", "overall_score=0", "--json")
    assert result.returncode == 0
    assert complete_rule(result) == {"rule": "complete", "passed": True, "detail": "candidate run 2 completed"}


# ----- max_drop: Holm over the gated metrics only ----------------------------------------------------


def test_gate_max_drop_corrects_only_across_gated_metrics(cli, server, tmp_path):
    """A real overall drop (p = 0.011) among 34 breakdowns: Holm over all 35 metrics masks it, the gate does not."""
    n = 64
    rows = [
        example(
            f"p{i}",
            [(f"Recommends the right care {{met-if:GOOD}} #{i}", 1, ["axis:accuracy" if i % 2 else "axis:context"])],
            text=f"Question {i}",
            tags=[f"theme:t{i // 2:02d}"],  # 32 themes of two examples each
        )
        for i in range(n)
    ]
    data = write_jsonl(tmp_path / "set.jsonl", rows)
    # 12 examples get worse (1 -> 0), 2 get better (0 -> 1), 50 stay at 1.
    good = ["GOOD care." if i not in (12, 13) else "Some care." for i in range(n)]
    worse = ["Some care." if i < 12 else "GOOD care." for i in range(n)]
    run_on_responses(cli, server, data, good, "baseline")
    run_on_responses(cli, server, data, worse, "candidate")
    a, b = per_example_scores(cli, "baseline"), per_example_scores(cli, "candidate")
    assert (b - a).tolist() == [-1.0] * 12 + [1.0] * 2 + [0.0] * 50

    report = cli.run("compare", "baseline", "candidate", "--json", check=True).json()["metrics"]
    assert len(report) - 1 >= 30  # overall_score plus 32 themes and 2 axes
    overall = report["overall_score"]
    expected_p = stats.permutation_test(
        (b - a,), np.mean, permutation_type="samples", n_resamples=9999, alternative="two-sided", random_state=0
    ).pvalue
    assert overall["p_value"] == pytest.approx(expected_p) and 0.005 < expected_p < 0.02
    assert overall["p_holm"] >= 0.05 and overall["significant"] is False  # the all-metric family masks the drop

    policy = tmp_path / "gate.yaml"
    policy.write_text(
        "rules:\n  - {metric: overall_score, max_drop: 0.02}\n  - {metric: 'axis:accuracy', max_drop: 0.5}\n"
    )
    gated = cli.run("gate", "candidate", "--policy", str(policy), "--baseline", "baseline", "--json")
    assert gated.returncode == 1
    verdicts = {v["rule"]: v for v in gated.json()["rules"]}
    drop = verdicts["overall_score drops by at most 0.02 (significant drops only)"]
    axis = verdicts["axis:accuracy drops by at most 0.5 (significant drops only)"]
    assert drop["passed"] is False and axis["passed"] is True and verdicts["complete"]["passed"] is True
    found = re.search(r"p=([\d.e-]+), Holm p=([\d.e-]+) over 2 max_drop metrics, significant\)$", drop["detail"])
    assert found, drop["detail"]
    p, p_holm = float(found.group(1)), float(found.group(2))
    axis_p = report["axis:accuracy"]["p_value"]
    assert axis_p > overall["p_value"]  # so Holm over the two gated metrics multiplies overall's p by 2
    assert p == pytest.approx(overall["p_value"], rel=5e-3) and p_holm == pytest.approx(2 * p, rel=5e-3)
    assert p_holm < 0.05 <= overall["p_holm"]
    assert f"change {-12 / n + 2 / n:+.4f}" in drop["detail"]
    # Alone in its family, the overall rule's Holm p is its own p.
    alone = cli.run("gate", "candidate", "--max-drop", "overall_score=0.02", "--baseline", "baseline", "--json")
    assert alone.returncode == 1 and "over 1 max_drop metric, significant" in alone.json()["rules"][1]["detail"]


def test_unpriced_models_fail_a_cost_rule_unless_the_policy_lets_them_pass(cli, two_runs, tmp_path):
    """The grader here (openai:fake-grader, like a self-hosted vLLM model) has no price."""
    strict = tmp_path / "strict.yaml"
    strict.write_text("rules:\n  - {max_cost_usd: 1}\n")
    failed = cli.run("gate", "candidate", "--policy", str(strict), "--json").json()["rules"][-1]
    assert not failed["passed"] and "no price for openai:fake-grader" in failed["detail"]
    assert "MEDOPS_PRICES=FILE" in failed["detail"] and "unpriced: pass" in failed["detail"]
    assert "--prices" not in failed["detail"]  # no such flag
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text("rules:\n  - {max_cost_usd: 1, unpriced: pass}\n")
    passed = cli.run("gate", "candidate", "--policy", str(lenient), "--json", check=True).json()["rules"][-1]
    assert passed == {
        "rule": "cost <= $1 (unpriced models pass)",
        "passed": True,
        "detail": "$0.0000 for priced models; unpriced, passed by the policy: openai:fake-grader",
    }
    # The documented CI policy: a self-hosted candidate passes its cost rule, said so.
    docs = cli.run("gate", "candidate", "--policy", str(REPO / "docs" / "ci" / "gate.yaml"), "--baseline", "baseline")
    assert "PASS cost <= $50 (unpriced models pass)" in docs.stdout
    misplaced = tmp_path / "misplaced.yaml"
    misplaced.write_text("rules:\n  - {metric: overall_score, min: 0.5, unpriced: pass}\n")
    refused = cli.run("gate", "candidate", "--policy", str(misplaced))
    assert refused.returncode == 2
    assert "misplaced.yaml: rules.0: unpriced applies to a max_cost_usd rule only" in refused.stderr


def test_compare_through_a_pipe_keeps_names_and_intervals_whole_in_the_columns_order(cli, two_runs):
    """At 80 columns (a pipe, a CI log) nothing is cut; the title names baseline then candidate,
    as the columns do; the pair is called baseline / candidate everywhere."""
    report = cli.run("compare", "baseline", "candidate", "--json", check=True).json()
    text = cli.run("compare", "baseline", "candidate", env={"COLUMNS": "80"}, check=True).stdout
    assert "…" not in text
    title, header = text.splitlines()[0], text.splitlines()[1]
    a, b = report["run_a"], report["run_b"]
    assert title.startswith(f"baseline run {a['run_id']} ({a['model']}), candidate run {b['run_id']} ({b['model']})")
    assert header.index("baseline") < header.index("candidate") < header.index("change")
    lines = [line for line in text.splitlines()[3:] if line.strip()]
    rows = {line.split()[0]: line for line in lines if line.split()[0] in report["metrics"]}
    assert set(rows) == set(report["metrics"])  # every metric name whole, on its own row
    for name, r in report["metrics"].items():
        assert f"{r['ci95_low']:+.3f}..{r['ci95_high']:+.3f}" in rows[name]
    assert "change = candidate - baseline" in text
    # report: --baseline names the pair as gate does; --vs still works
    via_baseline = cli.run("report", "candidate", "--baseline", "baseline", "--format", "md", check=True).stdout
    via_vs = cli.run("report", "candidate", "--vs", "baseline", "--format", "md", check=True).stdout
    assert via_baseline == via_vs and "baseline" in via_baseline
    # runs list sorts as /api/runs and the dashboard do: newest first
    listed = cli.run("runs", "list", "--json", check=True).json()
    assert [r["name"] for r in listed] == ["candidate", "baseline"]
    table = cli.run("runs", "list", check=True).stdout
    assert table.index("candidate") < table.index("baseline")
