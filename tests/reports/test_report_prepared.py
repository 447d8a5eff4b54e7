"""``medops report`` on a finished run reads its prepared view (kept as the run ended) instead of
every row (issue 24, item 3): the page is byte for byte the one its rows give."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import delete

from conftest import example, write_jsonl
from image_exam_run import image_exam_run
from medops import api
from medops.reports.report import build_report
from medops.store.schema import PreparedSample, PreparedView

GENERATED = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")  # the minute it was made: the one difference allowed


def _both(store, ref: str, **options) -> tuple[str, str]:
    """The report from the run's prepared view, then from its rows (the prepared view dropped)."""
    run = store.find_run(ref)
    with store.session() as s:
        assert s.get(PreparedView, run.id) is not None  # prepared as the run ended, no view asked for
    prepared = build_report(store, ref, **options)
    with store.session() as s:
        s.execute(delete(PreparedSample).where(PreparedSample.run_id == run.id))
        s.execute(delete(PreparedView).where(PreparedView.run_id == run.id))
    rows = build_report(store, ref, **options)
    return GENERATED.sub("-", prepared), GENERATED.sub("-", rows)


def test_a_rubric_report_from_the_prepared_view_is_the_one_its_rows_give(cli, server, tmp_path):
    data = write_jsonl(
        tmp_path / "set.jsonl",
        [
            example("p0", [("Mentions rest {met-if:REST}", 2, []), ("Antibiotics {met-if:AB}", -2, [])], text="<b>"),
            example("p1", [("Asks about age {grader-malformed:all}", 1, [])]),
            example("p2", [("Mentions rest {met-if:REST}", 2.5, [])]),
        ],
    )
    texts = ["REST AB", "", "x"]
    answers = write_jsonl(tmp_path / "a.jsonl", [{"index": i, "response": t} for i, t in enumerate(texts)])
    found = cli.run(
        "eval", "healthbench", "--data", str(data), "--responses", str(answers), "--grader", "openai:fake-grader",
        "--grader-base-url", server.base_url, "--name", "cand", "--grader-parse-retries", "0",
    )  # fmt: skip
    assert found.returncode == 3, found.stderr  # incomplete (an unreadable verdict): prepared too
    prepared, rows = _both(api.open_store(cli.db), "cand")
    assert prepared == rows and "Mentions rest" in prepared and "negative" in prepared


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_an_image_exam_report_from_the_prepared_view_is_the_one_its_rows_give(tmp_path, fmt):
    found = image_exam_run(tmp_path)
    prepared, rows = _both(api.open_store(found.db), str(found.run_id), fmt=fmt)
    assert prepared == rows
    assert fmt == "md" or prepared.count('<img class="thumb"') == 3
