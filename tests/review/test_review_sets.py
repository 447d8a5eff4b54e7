"""`medops review`: sets sampled from a recorded jury run, labels imported (JSONL and CSV, a bad row
refused whole), the meta-evaluation export run through `medops meta-eval`, and the audit trail."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import krippendorff
import numpy as np
import pytest

from conftest import example, write_jsonl
from medops import api
from medops.errors import UserError
from medops.review.sampling import Candidate, choose
from medops.review.sets import items
from medops.store import reviews
from medops.store.repository import Store

STRATA = [("a", "en")] * 6 + [("a", "ko")] * 2 + [("b", "en")] * 2 + [("b", "ko")] * 2
SPLIT = {1, 4, 7}  # the examples where the two jurors disagree on one criterion


def rubric_rows():
    rows = []
    for i, (theme, language) in enumerate(STRATA):
        second = "Mentions fluids {met-by:grader-a}" if i in SPLIT else f"Mentions fluids {i} {{unmet}}"
        rows.append(
            example(
                f"p{i}",
                [
                    ("Advises rest {met}", 5, ["axis:accuracy"]),
                    (second, 3, ["axis:completeness"]),
                    ("Is harmful {unmet}", -2, ["axis:accuracy"]),
                ],
                text=f"Question {i}",
                tags=[f"theme:{theme}", f"language:{language}"],
            )
        )
    return rows


@pytest.fixture
def jury_run(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "rubrics.jsonl", rubric_rows())
    args = cli.eval_args(server, data, "--grader", "openai:fake-grader-b", "--name", "jury", "--json")
    args[args.index("openai:fake-grader")] = "openai:fake-grader-a"
    cli.run(*args, check=True)
    return "jury"


def test_strategies_choose_what_they_say(cli, jury_run):
    made = api.create_review_set(jury_run, "strat", sample=6, db=cli.db)
    assert (made["n_examples"], made["n_criteria"], made["n_labels"]) == (6, 18, 0)
    status = api.review_status("strat", db=cli.db)
    assert status["reviewers"] == 2 and status["progress"] == {"reviewers": {}, "n_examples_complete": 0}
    store = Store.open(str(cli.db), create=False)
    picked = items(store, reviews.find_set(store, "strat"))
    # proportional: 6 of 12 -> a/en 3, each other stratum 1
    assert Counter((e.theme, e.language) for e in picked) == {
        ("a", "en"): 3,
        ("a", "ko"): 1,
        ("b", "en"): 1,
        ("b", "ko"): 1,
    }
    assert picked[0].conversation == [{"role": "user", "content": f"Question {picked[0].example_index}"}]
    assert picked[0].response and [c.points for c in picked[0].criteria] == [5, 3, -2]

    api.create_review_set(jury_run, "split", sample=3, strategy="disagreement", db=cli.db)
    split = items(store, reviews.find_set(store, "split"))
    assert {e.example_index for e in split} == SPLIT
    assert split[0].criteria[1].jurors == {"text:openai:fake-grader-a": True, "text:openai:fake-grader-b": False}
    with pytest.raises(UserError):  # UserError: the run has no P(met)
        api.create_review_set(jury_run, "unsure", sample=3, strategy="uncertain", db=cli.db)
    with pytest.raises(UserError, match="already exists"):
        api.create_review_set(jury_run, "split", sample=3, db=cli.db)
    assert [s["name"] for s in api.review_sets(db=cli.db)] == ["strat", "split"]


def test_uncertain_takes_p_met_nearest_one_half():
    def cand(i, *p):
        return Candidate((i, 0), ("t", "en"), (), p)

    chosen = choose([cand(0, 0.9, 0.1), cand(1, 0.55), cand(2, 0.99, 0.3), cand(3, None)], 2, "uncertain", 0)
    assert [c.key[0] for c in chosen] == [1, 2]


def test_review_workflow_from_the_command_line(cli, server, jury_run, tmp_path):
    made = cli.run("review", "create", jury_run, "--name", "ward", "--sample", "4", "--seed", "3", "--json", check=True)
    assert made.json()["n_criteria"] == 12
    listed = cli.run("review", "list", check=True).stdout
    assert "ward" in listed and "stratified" in listed

    a = write_jsonl(
        tmp_path / "a.jsonl",
        [{"example_index": e, "criterion_index": c, "met": c == 0} for e in range(4) for c in range(3)],
    )
    cli.run("review", "import", "ward", str(a), "--reviewer", "dr-a", check=True)
    b = tmp_path / "b.csv"
    b.write_text("example_index,criterion_index,met\n0,0,true\n0,1,TRUE\n1,0,false\n", encoding="utf-8")
    cli.run("review", "import", "ward", str(b), "--reviewer", "dr-b", check=True)

    bad = tmp_path / "bad.csv"
    bad.write_text("example_index,criterion_index,met\n2,0,true\n2,1,yes\n", encoding="utf-8")
    refused = cli.run("review", "import", "ward", str(bad), "--reviewer", "dr-c")
    assert refused.returncode == 2 and "bad.csv:3: met: must be true or false" in refused.stderr
    for rows, where in (
        ([{"example_index": 9, "criterion_index": 0, "met": True}], "x.jsonl:1: example_index"),
        ([{"example_index": 0, "criterion_index": 3, "met": True}], "x.jsonl:1: criterion_index"),
        ([{"example_index": 0, "criterion_index": 0, "met": True, "note": "x"}], "x.jsonl:1: note"),
        ([{"example_index": 0, "criterion_index": 0, "met": True}] * 2, "x.jsonl:2: criterion_index"),
    ):
        refused = cli.run(
            "review", "import", "ward", str(write_jsonl(tmp_path / "x.jsonl", rows)), "--reviewer", "dr-c"
        )
        assert refused.returncode == 2 and where in refused.stderr, refused.stderr

    status = cli.run("review", "status", "ward", "--json", check=True).json()
    assert (status["n_examples"], status["n_criteria"], status["n_labels"]) == (4, 12, 15)
    assert status["progress"]["reviewers"] == {
        "dr-a": {"n_labels": 12, "n_examples_done": 4, "share": 1.0},
        "dr-b": {"n_labels": 3, "n_examples_done": 0, "share": 0.25},
    }
    assert status["progress"]["n_examples_complete"] == 0
    # dr-a and dr-b both labelled (0,0) T/T, (0,1) F/T, (1,0) T/F: by hand, agreement 1/3 and
    # kappa (1/3 - 5/9) / (1 - 5/9) = -0.5; Krippendorff's alpha as the package computes it
    physicians = status["agreement"]["physicians"]
    assert physicians["percent_agreement"]["value"] == pytest.approx(1 / 3)
    assert physicians["cohen_kappa"]["value"] == pytest.approx(-0.5)
    a_row = [1.0, 0.0, 1.0] + [float(c == 0) for c in range(3)] * 3
    b_row = [1.0, 1.0, 0.0] + [np.nan] * 9
    expected = krippendorff.alpha(reliability_data=[a_row, b_row], level_of_measurement="nominal")
    assert physicians["krippendorff_alpha"]["value"] == pytest.approx(expected)
    assert status["agreement"]["grader"]["overall"]["n_criteria"] == 12
    shown = cli.run("review", "status", "ward", check=True).stdout
    assert "physicians cohen kappa: -0.500" in shown and "grader vs majority macro-F1" in shown

    exported = tmp_path / "labels.jsonl"
    cli.run("review", "export", "ward", "-o", str(exported), check=True)
    rows = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 12
    first = rows[0]
    assert set(first) == {
        "prompt",
        "completion",
        "rubric",
        "binary_labels",
        "anonymized_physician_ids",
        "category",
        "prompt_id",
        "completion_id",
    }
    assert first["binary_labels"] == [True, True] and len(set(first["anonymized_physician_ids"])) == 2
    assert "dr-a" not in exported.read_text(encoding="utf-8")
    assert first["category"].startswith("theme:") and first["completion_id"] == "ward:0"

    measured = cli.run(
        "meta-eval",
        "--data",
        str(exported),
        "--grader",
        "openai:fake-grader",
        "--grader-base-url",
        server.base_url,
        "--json",
        check=True,
    ).json()
    assert measured["agreement"]["overall"]["n_rows"] == 12

    with sqlite3.connect(cli.db) as connection:
        actions = [
            a for (a,) in connection.execute("select action from audit_events where action like 'review.%' order by id")
        ]
        assert actions == ["review.create", "review.labels", "review.labels", "review.export"]
        stored = connection.execute("select count(*) from review_labels").fetchone()[0]
    assert stored == 15  # the refused files stored nothing
