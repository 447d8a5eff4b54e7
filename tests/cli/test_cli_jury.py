"""`medops eval healthbench --grader A --grader B --jury R`: a jury from the command line; --json
gains `jury` (each juror's score, Fleiss' kappa), and a one-grader run's --json has no `jury`."""

from __future__ import annotations

import sqlite3

import pytest

from conftest import example, write_jsonl


def jury_set(tmp_path):
    return write_jsonl(
        tmp_path / "jury.jsonl",
        [
            example("p1", [("Advises rest {met}", 5, []), ("Mentions fluids {met-by:grader-a}", 5, [])]),
            example("p2", [("Recommends a doctor {met-by:grader-b}", 4, []), ("Is harmful {unmet}", -2, [])]),
        ],
    )


def jury_args(cli, server, data, *extra):
    args = cli.eval_args(server, data, "--grader", "openai:fake-grader-b", "--json", *extra)
    args[args.index("openai:fake-grader")] = "openai:fake-grader-a"
    return args


def test_a_jury_from_the_command_line(cli, server, tmp_path):
    result = cli.run(*jury_args(cli, server, jury_set(tmp_path), "--jury", "any"))
    assert result.returncode == 0, result.stderr
    document = result.json()
    assert document["score"] == 1.0 and document["grader"] == "openai:fake-grader-a"
    jury = document["jury"]
    assert jury["reducer"] == "any" and jury["n_criteria_compared"] == 4
    assert [(j["judge"], j["score"]) for j in jury["jurors"]] == [
        ("text:openai:fake-grader-a", 0.5),  # p1 10/10, p2 0/4
        ("text:openai:fake-grader-b", 0.75),  # p1 5/10, p2 4/4
    ]
    # two jurors agree on 2 of 4 criteria, met and not met equally often: kappa = (0.5 - 0.5) / 0.5
    assert jury["fleiss_kappa"] == 0.0
    with sqlite3.connect(cli.db) as connection:
        assert connection.execute("select count(distinct judge), count(*) from grades").fetchone() == (2, 8)


def test_one_grader_has_no_jury_key_and_a_bad_jury_is_refused(cli, server, tmp_path):
    single = cli.run(*cli.eval_args(server, jury_set(tmp_path), "--json"))
    assert single.returncode == 0 and "jury" not in single.json()
    bad = cli.run(*jury_args(cli, server, jury_set(tmp_path), "--jury", "median"))
    assert bad.returncode == 2 and "median" in bad.stderr
    urls = ("--grader-base-url", server.base_url) * 2
    thrice = cli.run(*jury_args(cli, server, jury_set(tmp_path), *urls))
    assert thrice.returncode == 2 and "--grader-base-url is given 3 times for 2 graders" in thrice.stderr


def test_meta_eval_with_a_jury_reports_each_juror_against_the_physicians(cli, server, tmp_path):
    rows = [
        {
            "prompt": [{"role": "user", "content": f"Question {i}"}],
            "completion": "Rest.",
            "rubric": "Advises rest {met-by:grader-a}" if i % 2 else "Advises fluids {met}",
            "binary_labels": [True, i % 2 == 0],
            "anonymized_physician_ids": ["p1", "p2"],
            "category": "cluster:x",
            "prompt_id": f"q{i}",
            "completion_id": f"c{i}",
        }
        for i in range(6)
    ]
    args = ["meta-eval", "--data", str(write_jsonl(tmp_path / "meta.jsonl", rows)), "--json"]
    for g in ("openai:fake-grader-a", "openai:fake-grader-b"):
        args += ["--grader", g, "--grader-base-url", server.base_url]
    document = cli.run(*args, "--jury", "any", check=True).json()
    jury = document["jury"]
    assert jury["reducer"] == "any" and jury["n_rows_compared"] == 6
    a, b = jury["jurors"]
    assert (a["judge"], b["judge"]) == ("text:openai:fake-grader-a", "text:openai:fake-grader-b")
    # physicians' majority (ties not met): met on even rows only. a says met everywhere (macro F1
    # (2/3 + 0) / 2 = 1/3); b says met on even rows only (1.0); the jury (any) is a
    assert a["grader_vs_majority_macro_f1"] == pytest.approx(1 / 3)
    assert b["grader_vs_majority_macro_f1"] == pytest.approx(1.0)
    assert document["agreement"]["overall"]["grader_vs_majority_macro_f1"] == pytest.approx(1 / 3)
    # the jurors agree on the 3 even rows (both met) and split on the 3 odd ones: observed 1/2,
    # met in 9 of 12 verdicts, chance 0.75^2 + 0.25^2
    assert jury["fleiss_kappa"] == pytest.approx((0.5 - 0.625) / (1 - 0.625))
    single = cli.run(
        "meta-eval",
        "--data",
        str(tmp_path / "meta.jsonl"),
        "--grader",
        "openai:fake-grader-a",
        "--grader-base-url",
        server.base_url,
        "--json",
        check=True,
    ).json()
    assert "jury" not in single
