"""The Python API in process: evaluate, then read everything back from the store alone."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from conftest import SECRET, example, write_jsonl
from medops import api
from medops.errors import UserError
from medops.events import BeforeCall, RunEnded, RunStarted
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread


@pytest.fixture
def endpoint(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with ServerThread(FakeOpenAIServer(FakeBehaviour(slow_s=3.0))) as running:
        yield running


def rubric_config(endpoint: ServerThread, data: Path, **extra):
    return api.healthbench_config(
        data=str(data),
        model="openai:fake-model",
        grader="openai:fake-grader",
        model_base_url=endpoint.base_url,
        grader_base_url=endpoint.base_url,
        retry_base_delay=0.05,
        **extra,
    )


def rubric_set(path: Path) -> Path:
    return write_jsonl(
        path,
        [
            example("p1", [("Advises rest {met}", 5, ["axis:completeness"]), ("Mentions fluids {unmet}", 3, [])]),
            example("p2", [("Recommends a doctor {met}", 4, ["axis:accuracy"])], text="My child has a fever."),
            example("p3", [("Is kind {met}", 2, []), ("Is harmful {unmet}", -6, [])], text="I feel dizzy."),
        ],
    )


def test_a_run_stays_fully_usable_after_its_source_file_is_deleted(endpoint, tmp_path):
    db = tmp_path / "medops.db"
    data = rubric_set(tmp_path / "rubrics.jsonl")
    first = api.evaluate(rubric_config(endpoint, data), db=db, name="first")
    second = api.evaluate(rubric_config(endpoint, data, no_cache=True), db=db, name="second")
    assert (first.status, first.exit_code, second.status) == ("completed", 0, "completed")
    # "Advises rest" and "Recommends a doctor" and "Is kind" met, the rest not: (5 + 4/4 + 2/2) / 3 ...
    assert first.summary["score"] == pytest.approx(((5 / 8) + 1.0 + 1.0) / 3)
    data.unlink()

    document = api.run("first", db=db)
    assert document["status"] == "completed" and document["score"] == pytest.approx(first.summary["score"])
    rows = api.export("first", db=db)
    assert [(r["prompt_id"], r["criterion_index"], r["criteria_met"]) for r in rows] == [
        ("p1", 0, True),
        ("p1", 1, False),
        ("p2", 0, True),
        ("p3", 0, True),
        ("p3", 1, False),
    ]
    csv_text = api.export("first", db=db, fmt="csv")
    assert csv_text.splitlines()[0].startswith("example_index,repeat,prompt_id") and "axis:completeness" in csv_text
    html = api.report("first", db=db, vs="second")
    assert "My child has a fever." in html and "Paired difference" in html
    comparison = api.compare("first", "second", db=db)
    assert comparison["n_shared"] == 3 and comparison["metrics"]["overall_score"]["difference"] == pytest.approx(0.0)
    verdicts = api.gate("second", [api.Rule(metric="overall_score", min=0.5)], db=db, baseline="first")
    assert [(v.rule, v.passed) for v in verdicts] == [("complete", True), ("overall_score >= 0.5", True)]
    failing = api.gate("second", [api.Rule(metric="overall_score", min=0.99)], db=db)
    assert not all(v.passed for v in failing)
    assert [r["name"] for r in api.runs(db=db)] == ["first", "second"]


def test_exam_runs_export_their_answers_from_the_store(endpoint, tmp_path):
    db = tmp_path / "medops.db"
    exam = write_jsonl(
        tmp_path / "exam.jsonl",
        [
            {"question": "Q1 {model-answer:B}", "options": {"A": "aspirin", "B": "metformin"}, "answer": "B"},
            {"question": "Q2 {model-answer:A}", "options": {"A": "x", "B": "y", "C": "z"}, "answer": "C"},
        ],
    )
    config = api.exam_config(
        task="generic", data=str(exam), model="openai:fake-model", model_base_url=endpoint.base_url, style="cot"
    )
    outcome = api.evaluate(config, db=db, name="exam")
    assert outcome.status == "completed" and outcome.summary["score"] == pytest.approx(0.5)
    exam.unlink()
    rows = api.export("exam", db=db)
    assert [(r["item_index"], r["gold"], r["predicted"], r["correct"]) for r in rows] == [
        (0, "B", "B", True),
        (1, "C", "A", False),
    ]
    assert all(r["rule"] and r["error"] is None for r in rows)
    assert "Q2" in api.report("exam", db=db)
    assert api.run("exam", db=db)["task"] == "generic"


def test_an_exams_wrong_answers_are_samples_at_their_own_position(endpoint, tmp_path):
    """The dashboard lists what the exam declares (its wrong answers), each by its item index and
    repeat: the second item is example 1, not the first wrong answer's position 0."""
    db = tmp_path / "medops.db"
    exam = write_jsonl(
        tmp_path / "exam.jsonl",
        [
            {"question": "Q1 {model-answer:B}", "options": {"A": "aspirin", "B": "metformin"}, "answer": "B"},
            {"question": "Q2 {model-answer:A}", "options": {"A": "x", "B": "y", "C": "z"}, "answer": "C"},
        ],
    )
    config = api.exam_config(
        task="generic", data=str(exam), model="openai:fake-model", model_base_url=endpoint.base_url
    )
    api.evaluate(config, db=db, name="exam")
    page = api.run_examples("exam", db=db, redact=False)
    assert page["view"]["title"] == "Wrong answers" and page["total"] == 1 and page["counts"] == {"all": 1}
    (wrong,) = page["examples"]
    assert (wrong["index"], wrong["item_id"], wrong["target"], wrong["choices"]) == (
        1,
        "1",
        "C",
        {"A": "x", "B": "y", "C": "z"},
    )
    assert [(a["answer"], a["value"]) for a in wrong["assessments"]] == [("A", False)]
    assert "wrong" in wrong["flags"] and wrong["prompt"][-1]["content"].startswith("Q2")
    one = api.run_example("exam", 1, db=db, redact=False)
    assert one["item_id"] == "1" and (one["position"], one["of"]) == (1, 1)
    with pytest.raises(UserError, match="unknown filter 'failed'"):
        api.run_examples("exam", db=db, flag="failed")  # an exam declares no such filter


class Recorder:
    """A subscriber that refuses grader requests naming a (pretend) patient, and notes the run."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_run_started(self, event: RunStarted) -> None:
        self.seen.append(f"started {event.benchmark}")

    def before_call(self, event: BeforeCall) -> None:
        self.seen.append(event.role)
        if event.role == "model":  # rewrite what the model is sent
            event.messages = [{**m, "content": m["content"].replace("dizzy", "tired")} for m in event.messages]
        elif "Mentions fluids" in event.messages[-1]["content"]:
            event.refuse("names a criterion we keep in the building")

    def on_run_ended(self, event: RunEnded) -> None:
        self.seen.append(f"ended {event.status}")


def test_subscribers_see_rewrite_and_refuse_calls_and_a_refusal_is_a_resumable_failure(endpoint, tmp_path):
    db = tmp_path / "medops.db"
    data = rubric_set(tmp_path / "rubrics.jsonl")
    recorder = Recorder()
    outcome = api.evaluate(rubric_config(endpoint, data), db=db, name="guarded", subscribers=[recorder])
    assert (outcome.status, outcome.exit_code) == ("incomplete", 3)
    assert outcome.summary["n_failed_calls"] == 1 and outcome.summary["usage"]["grader"]["failed"] == 1
    assert recorder.seen[0] == "started healthbench" and recorder.seen[-1] == "ended incomplete"
    assert recorder.seen.count("model") == 3 and recorder.seen.count("grader") == 5
    sent = [c.messages for c in endpoint.server.log if c.model == "fake-model"]
    assert any("I feel tired." in m[-1]["content"] for m in sent)
    assert not any("dizzy" in m[-1]["content"] for m in sent)
    refused = [r for r in api.export("guarded", db=db) if r["criteria_met"] is None]
    assert len(refused) == 1 and "refused before sending" in refused[0]["ungraded_reason"]
    assert api.run_examples("guarded", db=db, flag="ungraded")["total"] == 1  # the dashboard's view (kept)

    before = len(endpoint.server.log)
    resumed = api.resume("guarded", db=db)  # no subscriber now: the refused call is made, nothing else
    assert (resumed.status, resumed.summary["n_failed_calls"]) == ("completed", 0)
    assert api.run_examples("guarded", db=db, flag="ungraded")["total"] == 0  # a resumed run is read anew
    made = endpoint.server.log[before:]
    assert [c.model for c in made] == ["fake-grader"] and "Mentions fluids" in made[0].messages[-1]["content"]


def test_options_are_checked_in_the_library(tmp_path):
    with pytest.raises(UserError, match="criteria-per-call"):
        api.healthbench_config(grader="openai:g", grader_verdict="logprob", criteria_per_call=4)
    with pytest.raises(UserError, match="--task and --data"):
        api.exam_config(model="openai:m")
    with pytest.raises(TypeError, match="unknown options: colour"):
        api.healthbench_config(colour="blue")
    preset = api.healthbench_config(preset="simple-evals", grader="openai:g", model="openai:m", grader_max_tokens=99)
    assert (preset.model_temperature, preset.grader_max_tokens, preset.grader_verdict) == (0.5, 99, "text")
    professional = api.healthbench_config(data="healthbench-professional", grader="openai:g", model="openai:m")
    assert (professional.length_center, professional.length_penalty) == (2000.0, 0.0147)


def test_a_run_that_cannot_start_leaves_nothing_behind(tmp_path):
    db = tmp_path / "medops.db"
    exam = write_jsonl(tmp_path / "exam.jsonl", [{"question": "Q", "options": {"A": "a", "B": "b"}, "answer": "A"}])
    config = api.exam_config(task="generic", data=str(exam), model="openai:m", scoring="loglikelihood")
    with pytest.raises(UserError, match="loglikelihood needs an in-process model"):
        api.evaluate(config, db=db)
    assert api.runs(db=db) == []
    assert json.dumps(api.runs(db=db)) == "[]"


def test_items_are_stored_once_and_runs_from_before_the_item_store_read_their_file(endpoint, tmp_path):
    db = tmp_path / "medops.db"
    data = rubric_set(tmp_path / "rubrics.jsonl")
    api.evaluate(rubric_config(endpoint, data), db=db, name="a")
    api.evaluate(rubric_config(endpoint, data, limit=2), db=db, name="b")
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM items").fetchone() == (3,)
        assert connection.execute("SELECT count(DISTINCT item_set) FROM runs").fetchone() == (1,)
        # a run recorded by medops before items and plans were stored
        connection.execute("UPDATE runs SET item_set = NULL, plan = NULL WHERE name = 'a'")
    assert len(api.export("a", db=db)) == 5  # read from its file, sha256-checked
    with data.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(example("p4", [("Is brief", 1, [])])) + "\n")
    with pytest.raises(UserError, match="changed since run 1 was made"):
        api.export("a", db=db)
    assert len(api.export("b", db=db)) == 3  # two examples, read from the store


def test_a_run_started_from_a_worker_thread(endpoint, tmp_path):
    """A web server or a notebook's executor runs evaluations off the main thread (no signals there)."""
    from concurrent.futures import ThreadPoolExecutor

    config = rubric_config(endpoint, rubric_set(tmp_path / "rubrics.jsonl"))
    with ThreadPoolExecutor(1) as pool:
        outcome = pool.submit(api.evaluate, config, db=tmp_path / "medops.db", name="threaded").result(timeout=120)
    assert (outcome.status, outcome.exit_code) == ("completed", 0)
    assert api.run("threaded", db=tmp_path / "medops.db")["status"] == "completed"
