import numpy as np
import pytest

from medops.datasets.healthbench import RubricItem
from medops.scoring.healthbench import (
    aggregate,
    bootstrap_std,
    example_metrics,
    length_adjusted_per_500_chars,
    points_score,
)


def item(points, *tags):
    return RubricItem(criterion=f"c{points}", points=points, tags=list(tags))


def test_points_score_counts_negative_criteria_and_is_not_clipped():
    items = [item(5), item(3), item(-4), item(-8)]
    assert points_score(items, [True, False, False, False]) == 5 / 8
    assert points_score(items, [True, True, True, False]) == (5 + 3 - 4) / 8
    assert points_score(items, [False, False, True, True]) == -12 / 8  # below zero, kept
    assert points_score([item(-2)], [True]) is None


def test_example_and_rubric_tags():
    items = [
        item(4, "axis:accuracy", "level:example"),
        item(2, "axis:completeness"),
        item(-3, "axis:completeness"),
        item(-5, "axis:safety"),
    ]
    metrics = example_metrics(["theme:hedging", "physician_agreed_category:x"], items, [True, False, True, True])
    overall = (4 - 3 - 5) / 6
    assert metrics["overall_score"] == overall
    assert metrics["theme:hedging"] == overall and metrics["physician_agreed_category:x"] == overall
    assert metrics["axis:accuracy"] == 1.0 and metrics["level:example"] == 1.0
    assert metrics["axis:completeness"] == (0 - 3) / 2
    assert "axis:safety" not in metrics  # no positive points for that tag in this example


def test_aggregate_means_are_clipped_like_the_reference():
    per_example = [
        {"overall_score": -0.5, "theme:a": -0.5},
        {"overall_score": 0.2, "theme:a": 0.2},
        {"overall_score": 1.0, "axis:x": 1.5},
    ]
    out = aggregate(per_example, seed=0)
    # reference: np.clip(np.mean(values), 0, 1) per metric over the examples that report it
    assert out["overall_score"].mean == pytest.approx(float(np.clip(np.mean([-0.5, 0.2, 1.0]), 0, 1)))
    assert out["theme:a"].mean == 0.0 and out["theme:a"].n_samples == 2
    assert out["axis:x"].mean == 1.0 and out["axis:x"].n_samples == 1
    assert next(iter(out)) == "overall_score"


def test_bootstrap_is_seeded_and_statistically_right():
    rng = np.random.default_rng(123)
    values = rng.uniform(0, 1, size=2000)
    first = bootstrap_std(values, np.random.default_rng(7))
    assert first == bootstrap_std(values, np.random.default_rng(7))
    assert first != bootstrap_std(values, np.random.default_rng(8))
    # The standard error of a mean of n uniform(0,1) draws is sqrt(1/12/n).
    assert first == pytest.approx(np.sqrt(1 / 12 / 2000), rel=0.1)


def test_bootstrap_clips_each_resample_mean():
    # All resample means are below zero, so each clips to 0 and the std is exactly 0.
    assert bootstrap_std(np.array([-1.0, -0.5, -0.2]), np.random.default_rng(0)) == 0.0


def test_bootstrap_matches_a_loop_over_the_same_draws():
    values = np.array([0.1, 0.9, 0.4, -0.3, 1.2])
    draws = np.random.default_rng(5).integers(0, len(values), size=(1000, len(values)))
    expected = np.std([np.clip(values[row].mean(), 0, 1) for row in draws])
    assert bootstrap_std(values, np.random.default_rng(5)) == pytest.approx(expected)


def test_length_adjustment():
    adjusted = length_adjusted_per_500_chars
    assert adjusted(0.5, "x" * 1500, penalty_per_500_chars=0.1, center=1000) == pytest.approx(0.5 - 0.1 * 500 / 500)
    assert adjusted(0.5, "x" * 500, penalty_per_500_chars=0.1, center=1000) == pytest.approx(0.6)
