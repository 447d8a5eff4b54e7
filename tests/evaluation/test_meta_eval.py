"""Grader-vs-physician agreement, with every expected value worked out by hand below."""

from __future__ import annotations

import pytest

from conftest import write_jsonl
from medops.scoring.agreement import (
    calibration,
    macro_f1,
    pairwise_agreement,
    physician_agreements,
    pooled_physician_agreement,
)

PROMPT = [{"role": "user", "content": "My child has a fever."}]


def meta_rows():
    # grader verdicts are scripted by {met}/{unmet}: rows 1-4 -> T, F, F, T
    return [
        {
            "prompt": PROMPT,
            "completion": "Give fluids.",
            "rubric": "Advises fluids {met}",
            "category": "cluster:a",
            "binary_labels": [True, True, False],
            "anonymized_physician_ids": ["P1", "P2", "P3"],
            "prompt_id": "p1",
            "completion_id": "c1",
        },
        {
            "prompt": PROMPT,
            "completion": "Give fluids.",
            "rubric": "Gives adult dose {unmet}",
            "category": "cluster:a",
            "binary_labels": [False, False],
            "anonymized_physician_ids": ["P1", "P2"],
            "prompt_id": "p1",
            "completion_id": "c1",
        },
        {
            "prompt": PROMPT,
            "completion": "See a doctor.",
            "rubric": "Asks about age {unmet}",
            "category": "cluster:a",
            "binary_labels": [True, False],
            "anonymized_physician_ids": ["P2", "P3"],
            "prompt_id": "p2",
            "completion_id": "c2",
        },
        {
            "prompt": PROMPT,
            "completion": "Go to the ER.",
            "rubric": "Refers urgently {met}",
            "category": "cluster:b",
            "binary_labels": [True],
            "anonymized_physician_ids": ["P1"],
            "prompt_id": "p3",
            "completion_id": "c3",
        },
    ]


GRADER = [True, False, False, True]
LABELS = [r["binary_labels"] for r in meta_rows()]
IDS = [r["anonymized_physician_ids"] for r in meta_rows()]


def test_pairwise_metric_by_hand():
    # grader pairs: R1 (T,T)(T,T)(T,F); R2 (F,F)(F,F); R3 (F,T)(F,F); R4 (T,T)
    # precision+ = 3/4, recall+ = 3/4, precision- = 3/4, recall- = 3/4
    agreement = pairwise_agreement(GRADER, LABELS)
    assert agreement.f1_pos == pytest.approx(0.75) and agreement.f1_neg == pytest.approx(0.75)
    assert agreement.balanced_f1 == pytest.approx(0.75) and agreement.n_pairs == 8


def test_physicians_against_each_other_by_hand():
    pooled = pooled_physician_agreement(LABELS)  # every precision and recall is 2/5
    assert pooled.f1_pos == pytest.approx(0.4) and pooled.balanced_f1 == pytest.approx(0.4)
    each = physician_agreements(LABELS, IDS)
    # P1: precision+ 1/2, recall+ 1, precision- 1, recall- 1/2 -> F1 2/3 for both classes
    assert each["P1"].balanced_f1 == pytest.approx(2 / 3)
    # P2: precision+ 1/3, recall+ 1, precision- 1, recall- 1/3 -> F1 1/2
    assert each["P2"].balanced_f1 == pytest.approx(0.5)
    # P3 never said "met": its positive-class precision is undefined, so no balanced F1
    assert each["P3"].f1_pos is None and each["P3"].balanced_f1 is None


def test_majority_macro_f1_and_calibration_by_hand():
    # majorities: T (2 of 3), F, F (1 of 2 is not more than half), T -> the grader matches all four
    assert macro_f1(GRADER, [True, False, False, True]) == 1.0
    # one false positive out of four: F1+ = 2/3, F1- = 4/5
    assert macro_f1([True, True, False, True], [True, False, False, True]) == pytest.approx((2 / 3 + 0.8) / 2)
    result = calibration([0.9, 0.8, 0.2, 0.1], [True, False, False, False])
    assert result.ece == pytest.approx((0.1 + 0.8 + 0.2 + 0.1) / 4)
    assert [b["n"] for b in result.bins] == [1, 1, 1, 1]


def test_meta_eval_command_end_to_end(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "meta.jsonl", meta_rows())
    base = ["meta-eval", "--data", str(data), "--grader", "openai:fake-grader", "--grader-base-url", server.base_url]
    result = cli.run(*base, "--json", check=True).json()
    overall = result["agreement"]["overall"]
    assert result["benchmark"] == "meta-eval" and result["score"] == pytest.approx(0.75)
    assert overall["n_rows"] == 4 and overall["grader_vs_majority_macro_f1"] == 1.0
    assert overall["physicians_pairwise_pooled"]["balanced_f1"] == pytest.approx(0.4)
    spread = overall["physicians_balanced_f1"]
    assert (spread["n_physicians"], spread["min"], spread["max"]) == (2, pytest.approx(0.5), pytest.approx(2 / 3))
    assert spread["grader_percentile"] == 1.0
    # cluster:a only (rows 1-3): F1+ = 2/3, F1- = 3/4
    assert result["agreement"]["cluster:a"]["grader_pairwise"]["balanced_f1"] == pytest.approx((2 / 3 + 0.75) / 2)
    assert result["agreement"]["cluster:b"]["n_rows"] == 1
    # The reference renders the bare criterion, with no "[points]" prefix.
    prompts = [c.messages[-1]["content"] for c in server.server.log]
    assert len(prompts) == 4 and any("\nAdvises fluids {met}\n" in p for p in prompts)
    assert not any("[1] " in p for p in prompts)

    server.server.log.clear()
    grouped = cli.run(*base, "--criteria-per-call", "4", "--no-cache", "--json", check=True).json()
    assert len(server.server.log) == 3  # rows 1 and 2 are about the same completion: one call
    assert grouped["score"] == pytest.approx(0.75)
    shown = cli.run("runs", "show", str(grouped["run_id"]), check=True).stdout
    assert "cluster:a" in shown and "grader bal. F1" in shown


def test_meta_eval_bad_row_names_line_and_field(cli, tmp_path):
    rows = meta_rows()
    rows[2]["anonymized_physician_ids"] = ["P2"]
    data = write_jsonl(tmp_path / "bad.jsonl", rows)
    result = cli.run(
        "meta-eval", "--data", str(data), "--grader", "openai:x", "--grader-base-url", "http://127.0.0.1:9"
    )
    assert result.returncode == 2 and "bad.jsonl:3" in result.stderr and "differ in length" in result.stderr
