"""The physician-review issue end to end: a run graded by a three-grader jury (three verdicts per
criterion stored), a review set of 20 examples, one physician labelling in a real Chromium with the
keyboard, another's labels imported; the agreement figures equal an independent computation (sklearn,
the krippendorff package, contingency tables by hand) and the dashboard shows them once the set is
unblinded; the export runs through `medops meta-eval` with the same jury; `calibrated` appears with
an interval the gate tests."""

from __future__ import annotations

import json
import sqlite3

import krippendorff
import numpy as np
import pytest
from dashboard_store import PASSWORD, Dashboard, start_server
from sklearn.metrics import cohen_kappa_score, f1_score
from test_browser import CHROMIUM, Watched, browser  # noqa: F401 (the browser fixture)

from conftest import example, write_jsonl
from medops import api

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM, reason="no chromium on this machine (apt-get install chromium)"),
]
N = 20
GRADERS = ("openai:fake-grader-a", "openai:fake-grader-b", "openai:fake-grader-c")


def rubric_rows():
    rows = []
    for i in range(N):
        # criterion 1: graders a and b say met on every third example (the jury's majority), c alone otherwise
        second = "{met-by:grader-a}{met-by:grader-b}" if i % 3 == 0 else "{met-by:grader-c}"
        rows.append(
            example(
                f"p{i}",
                [
                    ("Advises rest {met}", 5, ["axis:accuracy"]),
                    (f"Mentions fluids {second}", 3, []),
                    ("Is harmful {unmet}", -2, []),
                ],
                text=f"Question {i}: 두통이 있습니다" if i % 2 else f"Question {i}: I have a headache.",
                tags=[f"theme:{'a' if i < 12 else 'b'}", f"language:{'ko' if i % 2 else 'en'}"],
            )
        )
    return rows


def kim_met(position: int, criterion: int) -> bool:  # labelled in the browser
    return (position + criterion) % 3 != 0


def lee_met(position: int, criterion: int) -> bool:  # labelled elsewhere, imported
    return criterion == 0 or (position * criterion) % 4 == 0


def test_physicians_in_the_loop_end_to_end(cli, server, tmp_path, browser):  # noqa: F811
    data = write_jsonl(tmp_path / "rubrics.jsonl", rubric_rows())
    args = cli.eval_args(server, data, "--name", "jury-run", "--json")
    at = args.index("--grader")
    args[at : at + 2] = [x for g in GRADERS for x in ("--grader", g)]
    at = args.index("--grader-base-url")
    args[at : at + 2] = ["--grader-base-url", server.base_url] * 3
    document = cli.run(*args, check=True).json()
    assert [j["judge"] for j in document["jury"]["jurors"]] == [f"text:{g}" for g in GRADERS]
    with sqlite3.connect(cli.db) as connection:  # three verdicts per criterion, one per juror
        per = connection.execute("select count(*) from grades group by example_index, criterion_index").fetchall()
        assert len(per) == N * 3 and {n for (n,) in per} == {3}
        assert connection.execute("select count(distinct judge) from grades").fetchone() == (3,)

    cli.run("review", "create", "jury-run", "--name", "ward", "--sample", str(N), "--strategy", "random", check=True)
    store = api.open_store(str(cli.db))
    api.add_user(store, "dr-kim", "reviewer", PASSWORD, actor="os:test")
    lee = [{"example_index": p, "criterion_index": c, "met": lee_met(p, c)} for p in range(N) for c in range(3)]
    lee_file = write_jsonl(tmp_path / "lee.jsonl", lee)
    cli.run("review", "import", "ward", str(lee_file), "--reviewer", "dr-lee", check=True)

    dashboard = Dashboard(cli.db, tmp_path)
    proc = start_server(dashboard, {"MEDOPS_CACHE_DIR": str(tmp_path / "cache")})
    try:
        w = Watched(browser, dashboard.base_url)
        w.sign_in("dr-kim")
        w.go("/reviews/ward")
        assert "Agreement" not in w.page.inner_text("main")  # blinded: a reviewer sees no grader figures
        w.go("/reviews/ward/queue")
        for n in range(N):
            assert f"Example {n + 1} of {N}" in w.page.inner_text("h1")
            for c in range(w.page.locator("fieldset.criterion").count()):
                w.page.keyboard.press("1" if kim_met(n, c) else "2")
            with w.page.expect_navigation():
                w.page.keyboard.press("Enter")
        assert "Queue done" in w.page.inner_text("h1")

        status = cli.run("review", "status", "ward", "--json", check=True).json()
        assert status["n_labels"] == 2 * N * 3
        kim = [kim_met(p, c) for p in range(N) for c in range(3)]
        lee_labels = [lee_met(p, c) for p in range(N) for c in range(3)]
        physicians = status["agreement"]["physicians"]
        assert physicians["percent_agreement"]["value"] == pytest.approx(np.mean(np.equal(kim, lee_labels)))
        assert physicians["cohen_kappa"]["value"] == pytest.approx(cohen_kappa_score(kim, lee_labels))
        matrix = np.array([kim, lee_labels], dtype=float)
        alpha = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
        assert physicians["krippendorff_alpha"]["value"] == pytest.approx(alpha)
        # the grader (the jury's majority) against the physicians' majority of two (ties: not met)
        examples = [json.loads(line) for line in api.export_review("ward", db=str(cli.db)).splitlines()]
        assert len(examples) == N * 3
        jury = [_jury_met(row["rubric"]) for row in examples]
        majority = [all(row["binary_labels"]) for row in examples]
        grader = status["agreement"]["grader"]["overall"]
        assert grader["grader_vs_majority_macro_f1"] == pytest.approx(f1_score(majority, jury, average="macro"))
        assert grader["grader_vs_majority_cohen_kappa"] == pytest.approx(cohen_kappa_score(jury, majority))

        api.set_review_blinding("ward", False, db=str(cli.db), actor="os:test")
        w.go("/reviews/ward")
        page = w.page.inner_text("main")
        assert "Agreement" in page and f"{alpha:.3f}" in page
        w.shot("review-agreement", full=True)
        w.check_clean()
        w.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    exported = tmp_path / "ward.jsonl"
    cli.run("review", "export", "ward", "-o", str(exported), check=True)
    meta_args = ["meta-eval", "--data", str(exported), "--json"]
    for g in GRADERS:
        meta_args += ["--grader", g, "--grader-base-url", server.base_url]
    measured = cli.run(*meta_args, check=True).json()
    assert measured["n_rows"] == N * 3
    assert [j["judge"] for j in measured["jury"]["jurors"]] == [f"text:{g}" for g in GRADERS]
    assert all(j["n_rows"] == N * 3 for j in measured["jury"]["jurors"])

    anchored = cli.run("runs", "show", "jury-run", "--json", check=True).json()["calibrated"]
    assert anchored["n_labels"] == 2 * N * 3 and anchored["ci_low"] < anchored["ci_high"]
    below, above = anchored["ci_low"] - 0.01, anchored["ci_low"] + 0.01
    assert cli.run("gate", "jury-run", "--min", f"calibrated_score={below}").returncode == 0
    assert cli.run("gate", "jury-run", "--min", f"calibrated_score={above}").returncode == 1


def _jury_met(criterion: str) -> bool:
    """The jury's verdict, from how the stand-in grader answers (majority of a, b, c)."""
    if "{met}" in criterion:
        return True
    if "{unmet}" in criterion:
        return False
    return "{met-by:grader-a}{met-by:grader-b}" in criterion
