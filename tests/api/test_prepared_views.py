"""A finished run's dashboard views (issue 24, item 3): prepared once in the store and read a page at a
time, the same as reading the run's rows; redacted views kept per (run, sample) and never served to a
role that sees the unredacted text, nor after the run changes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import SECRET, example, write_jsonl
from medops import api
from medops.api import examples
from medops.evaluation.results import sample_records
from medops.store.schema import PreparedSample, PreparedView, Run
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread

PATIENT = "John Smith"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prepared")
    data = write_jsonl(
        folder / "set.jsonl",
        [
            example(
                f"p{i}",
                [("Advises rest {met}", 5, []), ("Mentions fluids {unmet}", 3, [])],
                text=f"I am {PATIENT}, case {i}.",
            )
            for i in range(7)
        ],
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", SECRET)
        with ServerThread(FakeOpenAIServer(FakeBehaviour())) as endpoint:
            config = api.healthbench_config(
                data=str(data),
                model="openai:fake-model",
                grader="openai:fake-grader",
                model_base_url=endpoint.base_url,
                grader_base_url=endpoint.base_url,
            )
            assert api.evaluate(config, db=folder / "medops.db", name="big").status == "completed"
    return api.open_store(folder / "medops.db")


def _texts(page: dict) -> str:
    return str([e["prompt"] for e in page["examples"]])


def test_pages_of_the_prepared_view_are_the_runs_records(finished):
    store = finished
    run = store.find_run("big")
    records = sample_records(store, run)
    unredacted = [api.run_examples("big", db=store, redact=False, offset=o, limit=3) for o in (0, 3, 6)]
    shown = [e for page in unredacted for e in page["examples"]]
    view = examples._view(run)
    assert shown == [{**r.as_dict(f.key for f in view.flags), "redacted": False} for r in records]
    with store.session() as s:  # prepared once, in the store
        assert s.get(PreparedView, run.id) is not None
        assert s.query(PreparedSample).filter_by(run_id=run.id).count() == len(records)
    assert unredacted[0]["total"] == len(records) and unredacted[0]["counts"]["all"] == len(records)
    one = api.run_example("big", 3, db=store, redact=False)
    assert (one["index"], one["previous"], one["next"], one["of"]) == (
        3,
        {"index": 2, "repeat": 0},
        {"index": 4, "repeat": 0},
        7,
    )


def test_a_cached_redacted_view_is_never_shown_unredacted_and_the_reverse(finished):
    store = finished
    redacted = api.run_examples("big", db=store, limit=5)
    assert PATIENT not in _texts(redacted) and redacted["redacted"]
    assert PATIENT in _texts(api.run_examples("big", db=store, redact=False, limit=5))  # an admin: the text
    again = api.run_examples("big", db=store, limit=5)  # a viewer again: from the kept views, still redacted
    assert again["examples"] == redacted["examples"] and PATIENT not in _texts(again)
    assert PATIENT not in str(api.run_example("big", 2, db=store)["prompt"])
    assert PATIENT in str(api.run_example("big", 2, db=store, redact=False)["prompt"])


def test_a_changed_run_is_prepared_anew(finished):
    store = finished
    run = store.find_run("big")
    before = api.run_examples("big", db=store, limit=2)
    old_key = examples._run_key(run)
    with store.session() as s:  # what a resume does when it finishes again: a new end time, new rows
        row = s.get(Run, run.id)
        row.finished_at = row.finished_at + timedelta(seconds=1)
    with store.session() as s:
        s.query(PreparedSample).filter_by(run_id=run.id, position=0).update(
            {"record": {**s.get(PreparedSample, (run.id, 0)).record, "item_id": "stale"}}
        )
    after = api.run_examples("big", db=store, limit=2)
    assert examples._run_key(store.find_run("big")) != old_key
    assert after["examples"][0]["item_id"] == before["examples"][0]["item_id"] != "stale"  # read anew, not stale
    with store.session() as s:
        assert s.get(PreparedView, run.id).key == examples._run_key(store.find_run("big"))
