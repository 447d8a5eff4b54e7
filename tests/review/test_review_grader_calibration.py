"""Grader confidence against physician review labels: a rubric run graded with logprob verdicts, a
random review set labelled by two physicians, and `runs show --json` `calibration` equal to the
figures recomputed from the set's verdicts and labels; a run with text verdicts shows none."""

from __future__ import annotations

import pytest
from labelled_run import REVIEWERS, label_random_set, physician_met, rows

from conftest import write_jsonl
from medops.scoring.calibration import calibration


@pytest.mark.slow  # ten commands: two graded runs, two labelled review sets
def test_grader_calibration_against_physician_labels(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "rubrics.jsonl", rows())
    cli.run(*cli.eval_args(server, data, "--name", "graded", "--grader-verdict", "logprob"), check=True)
    sampled = label_random_set(cli, tmp_path)
    shown = cli.run("runs", "show", "graded", "--json", check=True).json()
    verdicts, truth = [], []
    for e in sampled:
        for c, criterion in enumerate(e.criteria):
            verdicts.append(criterion.p_met if criterion.grader else 1 - criterion.p_met)
            truth.append(criterion.grader == all(physician_met(e.example_index, c, r) for r in REVIEWERS))
    assert shown["n_with_confidence"] == len(verdicts) == 24
    assert shown["calibration"] == calibration(verdicts, truth)  # the same figures, from the labels directly

    cli.run(*cli.eval_args(server, data, "--name", "text"), check=True)  # no P(met): no calibration
    label_random_set(cli, tmp_path, run="text", name="text-set")
    assert "calibration" not in cli.run("runs", "show", "text", "--json", check=True).json()
