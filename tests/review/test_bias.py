"""Where the grader departs from physicians (the bias table) and the physician-anchored score, shown
where a run has physician labels: `review status --json` (`bias`), `runs show --json`, the HTML and
Markdown reports and the dashboard's run page; a run without labels shows neither. The table's
rates equal a direct count on the same labels."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from labelled_run import REVIEWERS, label_random_set, physician_met, rows

from conftest import write_jsonl
from medops import api
from medops.review.bias import length_band
from medops.web import create_app

HEADING = "Where the grader departs from physicians"


def grader_met(i: int, c: int) -> bool:  # what the fake server's markers make the grader say
    return c == 0 or (c == 1 and i % 2 == 0)


@pytest.fixture
def labelled(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "rubrics.jsonl", rows())
    cli.run(*cli.eval_args(server, data, "--name", "graded"), check=True)
    cli.run(*cli.eval_args(server, data, "--name", "unlabelled"), check=True)
    sampled = label_random_set(cli, tmp_path)
    return cli, sampled


def expected(sampled, keep=lambda i, c: True) -> tuple[int, float, float]:
    """n criteria, grader's and physicians' (majority of two: both) rates of met, counted directly."""
    chosen = [(e.example_index, c) for e in sampled for c in range(3) if keep(e.example_index, c)]
    grader = sum(grader_met(i, c) for i, c in chosen) / len(chosen)
    physicians = sum(all(physician_met(i, c, r) for r in REVIEWERS) for i, c in chosen) / len(chosen)
    return len(chosen), grader, physicians


def test_bias_table_in_review_status_and_runs_show(labelled):
    cli, sampled = labelled
    status = cli.run("review", "status", "anchor", "--json", check=True).json()
    table = {r["group"]: r for r in status["bias"]["rows"]}
    assert next(iter(table)) == "overall"
    n, grader, physicians = expected(sampled)
    overall = table["overall"]
    assert overall["n_criteria"] == n == 24 and overall["n_examples"] == 8
    assert overall["grader_met_rate"] == pytest.approx(grader)
    assert overall["physician_met_rate"] == pytest.approx(physicians)
    assert overall["difference"] == pytest.approx(grader - physicians)
    assert overall["ci_low"] <= overall["difference"] <= overall["ci_high"]
    n_a, g_a, p_a = expected([e for e in sampled if e.example_index < 6])  # 8 of 12: at least 2 of theme a
    assert table["theme:a"]["n_criteria"] == n_a
    assert table["theme:a"]["difference"] == pytest.approx(g_a - p_a)
    n_neg, g_neg, p_neg = expected(sampled, lambda i, c: c == 2)
    assert table["polarity:negative"]["n_criteria"] == n_neg
    assert table["polarity:negative"]["difference"] == pytest.approx(g_neg - p_neg)
    n_comp, g_comp, p_comp = expected(sampled, lambda i, c: c == 1)
    assert table["axis:completeness"]["n_criteria"] == n_comp
    assert table["axis:completeness"]["difference"] == pytest.approx(g_comp - p_comp)
    assert table["language:en"]["n_criteria"] == n
    bands = {length_band(e.response) for e in sampled}
    assert {g for g in table if g.startswith("length:")} == bands
    assert sum(table[b]["n_criteria"] for b in bands) == n
    assert status["bias"]["length_bands"][0] == {"group": "length:<500 chars", "min_chars": 0, "max_chars": 500}

    shown = cli.run("runs", "show", "graded", "--json", check=True).json()
    assert shown["bias"]["rows"][0] == overall  # one set of the run: the same table
    assert set(shown["calibrated"]) >= {"score", "ci_low", "ci_high", "n_labels", "method"}
    bare = cli.run("runs", "show", "unlabelled", "--json", check=True).json()
    assert "bias" not in bare and "calibrated" not in bare


def test_reports_and_run_page_show_bias_and_calibrated_only_with_labels(labelled):
    cli, _sampled = labelled
    shown = api.run("graded", db=str(cli.db))
    anchored = shown["calibrated"]
    score = f"{anchored['score']:.3f}"
    interval = f"{anchored['ci_low']:.3f}..{anchored['ci_high']:.3f}"
    difference = f"{shown['bias']['rows'][0]['difference']:+.3f}"
    for fmt in ("html", "md"):
        text = api.report("graded", db=str(cli.db), fmt=fmt)
        assert HEADING in text and "polarity:negative" in text and difference in text, fmt
        assert "Physician-anchored score" in text and score in text and interval in text, fmt
        bare = api.report("unlabelled", db=str(cli.db), fmt=fmt)
        assert HEADING not in bare and "Physician-anchored" not in bare, fmt

    store = api.open_store(str(cli.db))
    token, _row = api.create_token(store, "viewer-token", "viewer", actor="os:test")
    client = TestClient(create_app(str(cli.db)), follow_redirects=False)
    client.headers["Authorization"] = f"Bearer {token}"
    page = client.get("/runs/graded")
    assert page.status_code == 200, page.text
    assert HEADING in page.text and "theme:a" in page.text and difference in page.text
    assert "Physician-anchored" in page.text and score in page.text and "ppi++" in page.text
    bare = client.get("/runs/unlabelled")
    assert bare.status_code == 200
    assert HEADING not in bare.text and "Physician-anchored" not in bare.text
    assert client.get("/api/runs/graded").json()["run"]["bias"]["rows"][0]["group"] == "overall"
