"""Exam confidence and calibration end to end: served runs against the stand-in server (token
logprobs, stated confidence, abstention) and an in-process run, each recomputed from the export."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import needs_shared, write_jsonl
from medops import api


def _bank(tmp_path, n=12, extra=lambda i: "", name="bank"):
    rows = [
        {
            "question": f"Q{i} {{model-answer:{'B' if i % 3 else 'A'}}}{extra(i)}",
            "options": {"A": "x", "B": "y", "C": "z"},
            "answer_idx": "B",
        }
        for i in range(n)
    ]
    return write_jsonl(tmp_path / f"{name}.jsonl", rows)


def _exam(cli, server, data, *flags):
    return cli.run(
        "eval", "mcqa", "--task", "generic", "--data", str(data), "--model", "openai:fake-model",
        "--model-base-url", server.base_url, "--json", *flags, check=True,
    ).json()  # fmt: skip


def _exported(cli, run_id):
    return [json.loads(line) for line in cli.run("export", str(run_id), check=True).stdout.splitlines()]


def recompute(rows):
    """ECE (15 equal-width bins, (i/15, (i+1)/15]) and Brier from exported answers, independently."""
    pairs = [(r["confidence"], float(r["correct"])) for r in rows if r["confidence"] is not None]
    confidence, outcome = np.array([c for c, _ in pairs]), np.array([o for _, o in pairs])
    ece = 0.0
    for i in range(15):
        inside = (confidence > i / 15) & (confidence <= (i + 1) / 15) | ((i == 0) & (confidence == 0))
        if inside.any():
            ece += inside.mean() * abs(confidence[inside].mean() - outcome[inside].mean())
    return ece, float(np.mean((confidence - outcome) ** 2))


def test_served_exam_confidence_from_logprobs(cli, server, tmp_path):
    data = _bank(tmp_path)
    result = _exam(cli, server, data)
    calibration = result["calibration"]
    assert set(calibration) == {"ece", "ece_adaptive", "brier", "auroc", "selective_accuracy"}
    assert set(calibration["selective_accuracy"]) == {"0.5", "0.8", "0.9"}
    assert result["n_with_confidence"] == 12 and result["n_missing_confidence"] == 0
    asked = [c.params for c in server.server.log if c.model == "fake-model"]
    assert all(p["logprobs"] is True and p["top_logprobs"] == 5 for p in asked)
    rows = _exported(cli, result["run_id"])
    assert len(rows) == 12 and all(0 < r["confidence"] < 1 for r in rows)
    ece, brier = recompute(rows)
    assert calibration["ece"] == pytest.approx(ece) and calibration["brier"] == pytest.approx(brier)
    assert result["score"] == 8 / 12  # accuracy as before

    # the reliability diagram, from the declared view, in the report and on the dashboard's run page
    page = cli.run("report", str(result["run_id"]), check=True).stdout
    assert 'class="plot reliability"' in page and f"ECE (15 bins) {calibration['ece']:.3f}" in page
    charts = api.run_detail(str(result["run_id"]), db=str(cli.db))["charts"]
    assert any(f"Brier {calibration['brier']:.3f}" in chart for chart in charts)

    # the letter's probability is what the server gave: {model-p:0.7}
    scripted = _exam(cli, server, _bank(tmp_path, 3, lambda i: " {model-p:0.7}", "scripted"))
    assert [r["confidence"] for r in _exported(cli, scripted["run_id"])] == pytest.approx([0.7] * 3)

    # asked for none: every confidence is missing and counted, no figure made up
    none = _exam(cli, server, data, "--no-logprobs", "--no-cache")
    assert none["n_missing_confidence"] == 12 and none["calibration"]["ece"] is None
    assert all(r["confidence"] is None for r in _exported(cli, none["run_id"]))
    assert "logprobs" not in server.server.log[-1].params

    # an endpoint that refuses logprobs (400) is asked again without them, then never asked for them:
    # the run completes with every confidence missing and counted, no call failed
    n_before = len(server.server.log)
    refused = _exam(cli, server, data, "--model", "openai:fake-nologprobs", "--no-cache", "--concurrency", "1")
    assert refused["n_missing_confidence"] == 12 and refused["n_failed_calls"] == 0 and refused["score"] == 8 / 12
    sent = [c for c in server.server.log[n_before:] if c.model == "fake-nologprobs"]
    assert [("logprobs" in c.params, c.status) for c in sent[:2]] == [(True, 400), (False, 200)]
    assert len(sent) == 13 and not any("logprobs" in c.params for c in sent[1:])


def test_stated_confidence_style(cli, server, tmp_path):
    data = _bank(tmp_path, 6, lambda i: f" {{model-confidence:{40 + 10 * i}}}")
    result = _exam(cli, server, data, "--style", "confidence", "--no-logprobs")
    assert result["rules"] == {"answer_colon": 6} and result["n_missing_confidence"] == 0
    rows = _exported(cli, result["run_id"])
    assert [r["confidence"] for r in rows] == pytest.approx([0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert "Confidence: N%" in server.server.log[0].messages[-1]["content"]
    ece, brier = recompute(rows)
    assert result["calibration"]["ece"] == pytest.approx(ece) and result["calibration"]["brier"] == pytest.approx(brier)
    summary = cli.run("report", str(result["run_id"]), "--format", "md", check=True).stdout
    assert f"ECE (15 bins) {ece:.3f}" in summary and "6 with a confidence, 0 without" in summary
    # with logprobs the token's probability is preferred to the stated one
    both_data = _bank(tmp_path, 2, lambda i: " {model-confidence:90} {model-p:0.55}", "both")
    both = _exam(cli, server, both_data, "--style", "confidence")
    assert [r["confidence"] for r in _exported(cli, both["run_id"])] == pytest.approx([0.55, 0.55])


def test_abstention(cli, server, tmp_path):
    data = _bank(tmp_path, 10, lambda i: " {model-abstain}" if i >= 8 else "")
    # not allowed: "I don't know" is an unparsed answer, scored wrong, as before
    plain = _exam(cli, server, data)
    assert plain["n_unparsed"] == 2 and plain["abstention"] is None
    allowed = _exam(cli, server, data, "--allow-abstain")
    assert "I don't know" in server.server.log[-1].messages[-1]["content"]
    assert allowed["n_unparsed"] == 0 and allowed["rules"]["abstain"] == 2
    # 8 answered: items 0, 3, 6 answered A (wrong), 5 right; abstentions score 0
    assert allowed["abstention"] == {
        "n_abstained": 2,
        "abstention_rate": 0.2,
        "coverage": 0.8,
        "accuracy_answered": 5 / 8,
        "score": pytest.approx((5 - 3) / 10),
    }
    assert allowed["score"] == plain["score"] == 5 / 10  # accuracy keeps its meaning
    assert allowed["n_with_confidence"] == 8 and allowed["n_missing_confidence"] == 0  # abstentions apart
    rows = _exported(cli, allowed["run_id"])
    assert [r["rule"] for r in rows[8:]] == ["abstain", "abstain"] and rows[8]["confidence"] is None


@pytest.mark.slow
def test_in_process_exam_calibration_matches_the_export(cli):
    medqa = needs_shared("mcqa", "medqa", "test.jsonl")
    for flags in (("--max-tokens", "4"), ("--scoring", "loglikelihood")):
        result = cli.run(
            "eval", "mcqa", "--task", "medqa", "--data", str(medqa), "--limit", "6", "--model", "local:smollm2",
            "--json", *flags, check=True, timeout=600,
        ).json()  # fmt: skip
        rows = _exported(cli, result["run_id"])
        parsed = [r for r in rows if r["predicted"] is not None]
        assert all(0 < r["confidence"] <= 1 for r in parsed), rows
        assert result["n_missing_confidence"] == len(rows) - len(parsed)
        ece, brier = recompute(rows)
        assert math.isclose(result["calibration"]["ece"], ece) and math.isclose(result["calibration"]["brier"], brier)
