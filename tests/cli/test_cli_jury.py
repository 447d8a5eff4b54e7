"""`medops eval healthbench --grader A --grader B --jury R`: a jury from the command line; --json
gains `jury` (each juror's score, Fleiss' kappa), and a one-grader run's --json has no `jury`."""

from __future__ import annotations

import sqlite3

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
