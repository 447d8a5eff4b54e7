"""Several judges through the Python API: every juror's verdict is stored under its name, the
score follows the reducer, and resume asks only the juror whose calls failed."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import pytest

from conftest import SECRET, example, write_jsonl
from medops import api
from medops.errors import UserError
from medops.store import queries
from medops.testing.fake_openai import FakeOpenAIServer, ServerThread

A, B = "text:openai:fake-grader-a", "text:openai:fake-grader-b"


@pytest.fixture
def endpoint(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with ServerThread() as running:
        yield running


def jury_set(path: Path) -> Path:
    """Both jurors meet "Advises rest"; they split on "Mentions fluids" and "Recommends a doctor"."""
    return write_jsonl(
        path,
        [
            example("p1", [("Advises rest {met}", 5, []), ("Mentions fluids {met-by:grader-a}", 5, [])]),
            example("p2", [("Recommends a doctor {met-by:grader-b}", 4, []), ("Is harmful {unmet}", -2, [])]),
        ],
    )


def jury_config(data: Path, grader_base_url, **extra):
    return api.healthbench_config(
        data=str(data),
        model="openai:fake-model",
        grader=["openai:fake-grader-a", "openai:fake-grader-b"],
        model_base_url=grader_base_url if isinstance(grader_base_url, str) else grader_base_url[0],
        grader_base_url=grader_base_url,
        retry_base_delay=0.05,
        **extra,
    )


# majority: p1 5/10, p2 0/4 (a tie is not met); any: both examples fully met; all: as majority here
@pytest.mark.parametrize(("jury", "score"), [("majority", 0.25), ("any", 1.0), ("all", 0.25)])
def test_two_judges_each_store_a_verdict_and_the_score_follows_the_reducer(endpoint, tmp_path, jury, score):
    db = tmp_path / "medops.db"
    outcome = api.evaluate(jury_config(jury_set(tmp_path / "r.jsonl"), endpoint.base_url, jury=jury), db=db)
    assert (outcome.status, outcome.exit_code) == ("completed", 0)
    assert outcome.summary["score"] == pytest.approx(score)
    assert outcome.summary["usage"]["grader"]["calls"] == 8  # 4 criteria x 2 judges
    assert outcome.summary["n_ungraded_criteria"] == 0

    store = api.open_store(db)
    per_judge = queries.judge_grades(store, outcome.run_id)
    said = {key: {judge: g.criteria_met for judge, g in by_judge.items()} for key, by_judge in per_judge.items()}
    assert said == {
        (0, 0, 0): {A: True, B: True},
        (0, 0, 1): {A: True, B: False},
        (1, 0, 0): {A: False, B: True},
        (1, 0, 1): {A: False, B: False},
    }
    run = store.find_run(str(outcome.run_id))
    assert run.judges["reducer"] == jury and [j["name"] for j in run.judges["judges"]] == [A, B]
    assert run.judges["judges"][0]["identity"]["grader"] == "openai:fake-grader-a"
    # every grader request went to the judge's own model, once per criterion
    asked = [call.model for call in endpoint.server.log if "grader" in call.model]
    assert sorted(asked) == ["fake-grader-a"] * 4 + ["fake-grader-b"] * 4
    rows = api.export(str(outcome.run_id), db=db)  # readers see the aggregated verdict, one row per criterion
    expected = {
        "majority": [True, False, False, False],
        "any": [True, True, True, False],
        "all": [True, False, False, False],
    }
    assert [r["criteria_met"] for r in rows] == expected[jury]
    assert api.run(str(outcome.run_id), db=db)["score"] == pytest.approx(score)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_resume_asks_only_the_juror_whose_calls_failed(endpoint, tmp_path):
    db = tmp_path / "medops.db"
    port = _free_port()
    down = f"http://127.0.0.1:{port}/v1"  # juror b's endpoint is down in the first session
    config = jury_config(jury_set(tmp_path / "r.jsonl"), [endpoint.base_url, down], max_tries=2)
    first = api.evaluate(config, db=db)
    assert (first.status, first.exit_code) == ("incomplete", 3)
    assert first.summary["n_ungraded_criteria"] == 4 and first.summary["n_examples"] == 0
    store = api.open_store(db)
    stored = queries.judge_grades(store, first.run_id)
    assert all(by_judge[A].criteria_met is not None for by_judge in stored.values())
    assert all(by_judge[B].criteria_met is None for by_judge in stored.values())
    assert "1 of 2 judges gave no verdict (text:openai:fake-grader-b: grader call failed" in (
        queries.grades(store, first.run_id)[(0, 0, 0)].ungraded_reason
    )
    asked_a = sum(call.model == "fake-grader-a" for call in endpoint.server.log)

    second_server = FakeOpenAIServer()
    with ServerThread(second_server, port=port):
        resumed = api.resume(str(first.run_id), db=db)
    assert (resumed.status, resumed.exit_code) == ("completed", 0)
    assert resumed.summary["score"] == pytest.approx(0.25)
    assert sum(call.model == "fake-grader-a" for call in endpoint.server.log) == asked_a  # a is not asked again
    assert sorted(call.model for call in second_server.log) == ["fake-grader-b"] * 4
    with sqlite3.connect(db) as connection:
        assert connection.execute("select judge, count(*) from grades group by judge").fetchall() == [(A, 4), (B, 4)]


def test_a_juror_given_twice_is_refused(tmp_path):
    with pytest.raises(UserError, match="given twice"):
        api.healthbench_config(data="demo", grader=["openai:x", "openai:x"], grader_base_url="http://h/v1")
    with pytest.raises(UserError, match="--jury must be one of"):
        api.healthbench_config(data="demo", grader=["openai:x", "openai:y"], jury="median")
