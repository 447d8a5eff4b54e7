"""Every row of the real HealthBench files loads and validates (skipped when ../shared is absent)."""

import warnings

import pytest

from conftest import needs_shared
from medops.datasets.healthbench import DuplicatePromptIdWarning, load_rubric_dataset


@pytest.mark.parametrize(
    ("name", "rows", "unique_ids"),
    [
        ("oss_eval_sample_500.jsonl", 500, 500),
        ("consensus_hard_context_seeking_104.jsonl", 104, 104),
        ("mixed_flagged_344.jsonl", 344, 183),
    ],
)
def test_real_healthbench_files_load(name, rows, unique_ids):
    path = needs_shared("healthbench", name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_rubric_dataset(path)
    assert len(data) == rows
    assert len({e.prompt_id for e in data.examples}) == unique_ids
    assert any(issubclass(w.category, DuplicatePromptIdWarning) for w in caught) == (unique_ids < rows)
    assert all(any(r.points > 0 for r in e.rubrics) for e in data.examples)
    assert all(t.startswith("theme:") for e in data.examples for t in e.example_tags if "theme" in t)


def test_oss_sample_has_every_theme_and_negative_points():
    data = load_rubric_dataset(needs_shared("healthbench", "oss_eval_sample_500.jsonl"))
    themes = {t for e in data.examples for t in e.example_tags if t.startswith("theme:")}
    assert len(themes) == 7
    assert any(r.points < 0 for e in data.examples for r in e.rubrics)
    criteria = sum(len(e.rubrics) for e in data.examples)
    assert criteria == 5116 + 849  # example-level plus cluster-level criteria (PROVENANCE.md)
