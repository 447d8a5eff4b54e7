"""`calibrated` in `runs show --json` for a run with physician labels (the PPI++ estimate, equal to
ppi_py called directly on the same scores), and the gate's `min` on `calibrated_score` testing the
interval's lower bound (flag and policy)."""

from __future__ import annotations

import json

import numpy as np
import ppi_py
import pytest
from labelled_run import REVIEWERS, label_random_set, physician_met, rows

from conftest import write_jsonl
from medops.store import reviews
from medops.store.repository import Store


def test_calibrated_score_in_runs_show_and_the_gate(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "rubrics.jsonl", rows())
    cli.run(*cli.eval_args(server, data, "--name", "graded"), check=True)
    no_labels = cli.run("gate", "graded", "--min", "calibrated_score=0.1", "--json")
    assert no_labels.returncode == 1 and "no physician labels" in no_labels.stdout
    assert "calibrated" not in cli.run("runs", "show", "graded", "--json", check=True).json()

    sampled = label_random_set(cli, tmp_path)
    store = Store.open(str(cli.db), create=False)
    # a set chosen for disagreement is not a sample of the run: its labels do not count (stored as
    # `review create --strategy disagreement` stores a set of a jury run)
    anchor = reviews.find_set(store, "anchor")
    fields = {"name": "hard", "run_id": anchor.run_id, "strategy": "disagreement", "seed": 0, "reviewers": 1}
    copied = [
        {
            "position": e.position,
            "example_index": e.example_index,
            "repeat": e.repeat,
            "prompt_id": e.prompt_id,
            "content": e.content,
        }
        for e in reviews.examples(store, anchor.id)
    ]
    reviews.create_set(store, {**fields, "n_examples": len(copied), "n_criteria": 3 * len(copied)}, copied)
    contrary = [{"example_index": p, "criterion_index": c, "met": False} for p in range(8) for c in range(3)]
    path = write_jsonl(tmp_path / "contrary.jsonl", contrary)
    cli.run("review", "import", "hard", str(path), "--reviewer", "dr-c", check=True)

    document = cli.run("runs", "show", "graded", "--json", check=True).json()
    anchored = document["calibrated"]
    assert set(anchored) >= {"score", "ci_low", "ci_high", "n_labels", "method"}
    assert anchored["n_labels"] == 8 * 3 * 2 and anchored["method"] == "ppi++"

    # the same estimate from ppi_py directly: physicians' majority (ties: not met) vs the grader
    def score(met):  # points 5, 3, -2 over 8 positive points
        return (5 * met[0] + 3 * met[1] - 2 * met[2]) / 8

    grader = {i: score([True, i % 2 == 0, False]) for i in range(12)}
    labelled = [e.example_index for e in sampled]
    y = np.array([score([all(physician_met(i, c, r) for r in REVIEWERS) for c in range(3)]) for i in labelled])
    yhat = np.array([grader[i] for i in labelled])
    rest = np.array([grader[i] for i in range(12) if i not in labelled])
    low, high = ppi_py.ppi_mean_ci(y, yhat, rest, alpha=0.05)
    assert anchored["score"] == pytest.approx(float(ppi_py.ppi_mean_pointestimate(y, yhat, rest)[0]))
    assert (anchored["ci_low"], anchored["ci_high"]) == (pytest.approx(float(low[0])), pytest.approx(float(high[0])))
    assert anchored["ci_low"] < anchored["score"] < anchored["ci_high"]

    below, above = anchored["ci_low"] - 0.01, anchored["ci_low"] + 0.01
    passed = cli.run("gate", "graded", "--min", f"calibrated_score={below}", "--json")
    assert passed.returncode == 0, passed.stdout
    failed = cli.run("gate", "graded", "--min", f"calibrated_score={above}", "--json")
    assert failed.returncode == 1
    rule = json.loads(failed.stdout)["rules"][1]
    assert rule["rule"] == f"calibrated_score 95% lower bound >= {above:g}" and "lower bound" in rule["detail"]
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"rules:\n  - {{metric: calibrated_score, min: {below}}}\n", encoding="utf-8")
    assert cli.run("gate", "graded", "--policy", str(policy)).returncode == 0
