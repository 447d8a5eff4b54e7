"""The gate's `max` and `max_gap` rules as policy entries and flags (the runs: tests/cli/test_cli_counterfactual.py)."""

from __future__ import annotations

import pytest

from medops.errors import UserError
from medops.ops.gate import _max_gap_verdict, _metric_value, load_policy, parse_flag_rules


def test_policy_and_flags_spell_the_same_rules(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "rules:\n  - {metric: counterfactual.sex, max_gap: 0.03}\n  - {metric: counterfactual.flip_rate, max: 0.05}\n"
    )
    from_file = load_policy(policy)
    from_flags = parse_flag_rules(
        [], [], None, maxes=["counterfactual.flip_rate=0.05"], max_gaps=["counterfactual.sex=0.03"]
    )
    assert sorted(r.describe() for r in from_file) == sorted(r.describe() for r in from_flags)
    assert from_file[0].describe() == "counterfactual.sex largest gap <= 0.03 (significant gaps only)"
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {metric: overall_score, max_gap: 0.03}\n")
    with pytest.raises(UserError, match=r"bad.yaml: rules.0: a max_gap rule's metric is counterfactual.ATTRIBUTE"):
        load_policy(bad)
    with pytest.raises(UserError, match="--max 'flip=x': expected METRIC=NUMBER"):
        parse_flag_rules([], [], None, maxes=["flip=x"])
    with pytest.raises(UserError, match=r"--max-gap 'sex=0\.1': a max_gap rule's metric is"):
        parse_flag_rules([], [], None, max_gaps=["sex=0.1"])


def test_values_are_read_from_metrics_or_the_counterfactual_block():
    block = {"n_items": 9, "flip_rate": 0.25, "sex": {"n_items": 7, "flip_rate": 0.5, "pairs": [{}], "max_gap": None}}
    summary = {"metrics": {"accuracy": {"mean": 0.8, "n_samples": 10}}, "counterfactual": block}
    assert _metric_value(summary, "accuracy") == (0.8, "0.8000 (n=10)")
    assert _metric_value(summary, "counterfactual.flip_rate") == (0.25, "0.2500 (n=9 items with variants)")
    assert _metric_value(summary, "counterfactual.sex.flip_rate") == (0.5, "0.5000 (n=7 items with variants)")
    assert _metric_value(summary, "counterfactual.age.flip_rate") is None
    missing = _max_gap_verdict({"metrics": {}}, "rule", "counterfactual.sex", 0.03)
    assert not missing.passed and "evaluate it with --counterfactual sex" in missing.detail
    assert not _max_gap_verdict(summary, "rule", "counterfactual.sex", 0.03).passed  # nothing to compare
    gap = {"a": "male", "b": "female", "gap": 0.1, "p_holm": 0.2, "significant": False}
    block["sex"]["max_gap"] = gap
    assert _max_gap_verdict(summary, "rule", "counterfactual.sex", 0.03).passed  # large but not significant
    gap["p_holm"] = 0.01
    assert not _max_gap_verdict(summary, "rule", "counterfactual.sex", 0.03).passed
    assert _max_gap_verdict(summary, "rule", "counterfactual.sex", 0.1).passed  # significant but not larger
