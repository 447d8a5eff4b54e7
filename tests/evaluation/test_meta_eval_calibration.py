"""Grader confidence: P(met) from logprob verdicts (the stand-in server's token logprobs) scored
for calibration against the physicians' labels of `medops meta-eval`, each figure worked out by hand
(physician review labels: tests/review/test_grader_calibration.py)."""

from __future__ import annotations

import pytest
from test_meta_eval import meta_rows

from conftest import write_jsonl

# P(met) per row; the physicians' majority is T, F, F (a tie), T
P_MET = [0.9, 0.3, 0.6, 0.2]


def test_meta_eval_calibration_of_logprob_verdicts(cli, server, tmp_path):
    rows = meta_rows()
    for row, p in zip(rows, P_MET, strict=True):
        row["rubric"] += f" {{p-met:{p}}}"
    data = write_jsonl(tmp_path / "meta.jsonl", rows)
    result = cli.run(
        "meta-eval", "--data", str(data), "--grader", "openai:fake-grader", "--grader-base-url", server.base_url,
        "--grader-verdict", "logprob", "--json", check=True,
    ).json()  # fmt: skip
    # verdicts P >= 0.5: T, F, T, F -> right, right, wrong, wrong; confidence in the verdict .9 .7 .6 .8
    got = result["calibration"]
    assert result["n_with_confidence"] == 4 and result["n_missing_confidence"] == 0
    assert got["brier"] == pytest.approx((0.01 + 0.09 + 0.36 + 0.64) / 4)  # = P(met) against the majority
    assert got["ece"] == pytest.approx((0.1 + 0.3 + 0.6 + 0.8) / 4)  # four bins of one
    assert got["auroc"] == pytest.approx(3 / 4)  # .9 > .6, .9 > .8, .7 > .6, not .7 > .8
    assert got["selective_accuracy"] == {"0.5": 0.5, "0.8": 0.5, "0.9": 0.5}
    assert got["ece_adaptive"] == pytest.approx(got["ece"])
    assert "calibration" in result["agreement"]["overall"]  # the per-category block is as before

    text = cli.run(
        "meta-eval", "--data", str(data), "--grader", "openai:fake-grader", "--grader-base-url", server.base_url,
        "--json", check=True,
    ).json()  # fmt: skip
    assert text["calibration"]["ece"] is None and text["n_missing_confidence"] == 4  # text verdicts: no P(met)
