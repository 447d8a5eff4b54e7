"""From a recorded rubric run to a training set: `runs weak` ranks its slices, `rl prepare
--from-run` draws the weakest from a pool (never the evaluated items) and traces every row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import example, run_on_responses, write_jsonl
from medops.scoring.paired import paired_bootstrap_ci

N = 16


def criteria(i):
    return [
        (f"Mentions rest {{met-if:REST}} #{i}", 2, ["axis:completeness"]),
        (f"Mentions fluids {{met-if:FLUIDS}} #{i}", 2, ["axis:accuracy"]),
        (f"Recommends antibiotics {{met-if:ANTIBIOTIC}} #{i}", -2, ["axis:accuracy"]),
    ]


def theme(i):
    return "theme:hedging" if i % 2 else "theme:global_health"


def rubric_set(tmp_path):
    rows = [example(f"p{i}", criteria(i), text=f"Question {i}", tags=[theme(i)]) for i in range(N)]
    return write_jsonl(tmp_path / "set.jsonl", rows)


@pytest.fixture
def recorded(cli, server, tmp_path):
    """A baseline that answers everything well, and a run weak on hedging (odd items)."""
    data = rubric_set(tmp_path)
    run_on_responses(cli, server, data, ["REST and FLUIDS."] * N, "baseline")
    weak = ["REST only." if i % 2 else "REST and FLUIDS." for i in range(N)]  # hedging: 0.5, else 1.0
    weak[1] = "REST. ANTIBIOTIC now."  # one hedging item at 0
    run_on_responses(cli, server, data, weak, "weak")
    return data


def test_runs_weak_ranks_slices_with_intervals_and_missed_criteria(cli, recorded):
    document = cli.run("runs", "weak", "weak", "--json", check=True).json()
    assert document["by"] == "theme" and document["mode"] == "absolute"
    top, second = document["slices"]
    scores = np.array([0.0] + [0.5] * (N // 2 - 1))
    assert top["slice"] == "theme:hedging" and top["n"] == N // 2
    assert top["shortfall"] == pytest.approx(1 - scores.mean())
    low, high = paired_bootstrap_ci(scores, np.ones_like(scores), 0, True)  # compare's own bootstrap
    assert (top["ci95_low"], top["ci95_high"]) == (pytest.approx(low), pytest.approx(high))
    assert second["slice"] == "theme:global_health" and second["shortfall"] == pytest.approx(0.0)
    missed = top["missed_criteria"][0]
    assert "Mentions fluids" in missed["criterion"] and missed["examples"][0]["item_id"].startswith("p")
    assert document["missed_criteria"][0]["missed"] == 1  # criteria are per example here

    by_axis = cli.run("runs", "weak", "weak", "--by", "axis", "--json", check=True).json()
    assert [s["slice"] for s in by_axis["slices"]] == ["axis:completeness", "axis:accuracy"] or {
        s["slice"] for s in by_axis["slices"]
    } == {"axis:accuracy", "axis:completeness"}

    paired = cli.run("runs", "weak", "weak", "--vs", "baseline", "--json", check=True).json()
    assert paired["mode"] == "paired" and paired["baseline"]["name"] == "baseline"
    hedging = paired["slices"][0]
    assert hedging["slice"] == "theme:hedging" and hedging["shortfall"] == pytest.approx(1 - scores.mean())
    assert hedging["p_holm"] >= hedging["p_value"] and hedging["test"] == "paired_sign_flip_permutation"
    assert "ci95_low" in hedging and hedging["ci95_low"] <= hedging["shortfall"] <= hedging["ci95_high"]

    wrong = cli.run("runs", "weak", "weak", "--by", "subject")
    assert wrong.returncode == 2 and "no subject slices" in wrong.stderr and "theme" in wrong.stderr
    table = cli.run("runs", "weak", "weak", check=True).stdout
    assert "theme:hedging" in table


def test_prepare_from_run_draws_the_weakest_slice_and_traces_every_row(cli, recorded, tmp_path):
    evaluated = [json.loads(x) for x in recorded.read_text().splitlines()]
    pool_rows = [
        *(example(f"new{i}", criteria(i), text=f"New question {i}", tags=["theme:hedging"]) for i in range(6)),
        *(
            example(f"other{i}", criteria(i), text=f"Other question {i}", tags=["theme:global_health"])
            for i in range(3)
        ),
        {**evaluated[1], "prompt_id": "renamed"},  # an evaluated item under another id: excluded by its content
        example("new0-again", criteria(9), text="New question 0", tags=["theme:hedging"]),  # repeated in the pool
    ]
    pool = write_jsonl(tmp_path / "pool.jsonl", pool_rows)
    out = tmp_path / "weak-set"
    cli.run(
        "rl",
        "prepare",
        "--from-run",
        "weak",
        "--weak",
        "1",
        "--data",
        str(pool),
        "--heldout",
        "0.34",
        "-o",
        str(out),
        check=True,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    train = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    held = [json.loads(x) for x in (out / "heldout.jsonl").read_text().splitlines()]
    assert manifest["from_run"]["weak_slices"][0]["slice"] == "theme:hedging"
    assert (len(train), len(held)) == (4, 2)
    assert {r["prompt_id"] for r in train + held} == {f"new{i}" for i in range(6)}
    assert not {r["prompt_id"] for r in train} & {r["prompt_id"] for r in held}
    # every row traced: split and line, pool file and line, the run and the slice it was drawn for
    assert len(manifest["rows"]) == 6
    for entry in manifest["rows"]:
        rows = train if entry["split"] == "train" else held
        row = rows[entry["line"] - 1]
        assert pool_rows[entry["source"]["line"] - 1]["prompt_id"] == row["prompt_id"]
        assert entry["run"] == 2 and entry["slices"] == ["theme:hedging"]
    reasons = sorted((e["source"]["line"], e["reason"]) for e in manifest["excluded"])
    assert reasons == [(10, "evaluated in run 2"), (11, "repeated in the pool")]
    assert manifest["not_in_weak_slices"] == 3
    # held-out rubric rows are an ordinary rubric set
    assert set(held[0]) >= {"prompt", "prompt_id", "rubrics", "example_tags"}

    refused = cli.run("rl", "prepare", "--from-run", "weak", "--data", str(pool), "-o", str(tmp_path / "x"))
    assert refused.returncode == 2 and "--weak" in refused.stderr and not (tmp_path / "x").exists()


def test_evaluate_reports_weak_and_other_slices_paired_and_feeds_the_gate(cli, server, recorded, tmp_path):
    pool = write_jsonl(
        tmp_path / "pool.jsonl",
        [example(f"new{i}", criteria(i), text=f"New question {i}", tags=["theme:hedging"]) for i in range(4)],
    )
    out = tmp_path / "weak-set"
    cli.run("rl", "prepare", "--from-run", "weak", "--weak", "1", "--data", str(pool), "-o", str(out), check=True)
    exam = write_jsonl(
        tmp_path / "exam.jsonl",
        [{"question": f"Case {i}?", "options": {"A": "x", "B": "y"}, "answer_idx": "A"} for i in range(4)],
    )
    common = ["--model-base-url", server.base_url, "--grader", "openai:fake-grader", "--grader-base-url"]
    document = cli.run(
        "rl",
        "evaluate",
        "--base",
        "openai:fake-model",
        "--tuned",
        "openai:fake-model-v2",
        "--data",
        str(exam),
        "--healthbench-data",
        str(recorded),
        "--weak-from",
        str(out / "heldout.jsonl"),
        *common,
        server.base_url,
        check=True,
    ).json()
    slices = document["healthbench"]["slices"]
    assert [s["slice"] for s in slices["weak"]] == ["theme:hedging"]
    assert [s["slice"] for s in slices["other"]] == ["theme:global_health"]
    assert all({"difference", "ci95_low", "ci95_high", "p_value", "p_holm", "change"} <= set(s) for s in slices["weak"])
    assert slices["missing_weak"] == [] and isinstance(slices["hurt_elsewhere"], bool)
    runs = document["runs"]["healthbench"]
    gate_entry = next(g for g in document["gate"] if g["benchmark"] == "healthbench")
    assert (gate_entry["run"], gate_entry["baseline"]) == (runs["tuned"]["run_id"], runs["base"]["run_id"])
    gated = cli.run(
        "gate",
        str(gate_entry["run"]),
        "--baseline",
        str(gate_entry["baseline"]),
        "--max-drop",
        "overall_score=0.5",
        "--json",
    )
    assert gated.returncode == 0 and gated.json()["passed"] is True

    not_prepared = cli.run(
        "rl",
        "evaluate",
        "--base",
        "openai:fake-model",
        "--tuned",
        "openai:fake-model-v2",
        "--data",
        str(exam),
        "--weak-from",
        str(exam),
        "--model-base-url",
        server.base_url,
    )
    assert not_prepared.returncode == 2 and "not a file written by `rl prepare --from-run`" in not_prepared.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from-exchanges"], "--from-exchanges needs --below SCORE"),
        (["--below", "0.3", "--task", "generic", "--data", "x.jsonl"], "--below applies to --from-exchanges only"),
        (["--weak", "2", "--task", "generic", "--data", "x.jsonl"], "--weak applies to --from-run only"),
        (["--from-run", "1", "--from-exchanges", "--below", "0.3"], "choose one"),
    ],
)
def test_prepare_from_evidence_usage_errors(cli, tmp_path, args, message):
    result = cli.run("rl", "prepare", *args, "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and message in result.stderr and not (tmp_path / "out").exists()
