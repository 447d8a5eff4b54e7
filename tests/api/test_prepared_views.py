"""A finished run's dashboard views (issue 24, item 3): prepared once in the store as the run ends (else
on its first view) and read a page at a time, the same as reading the run's rows; redacted views kept
per (run, sample) and never served to a role that sees the unredacted text, nor after the run changes."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import delete

from conftest import SECRET, example, write_jsonl
from medops import api
from medops.api import examples
from medops.evaluation.prepared_views import PrepareViews, prepare, run_key
from medops.evaluation.results import sample_records
from medops.store.schema import PreparedSample, PreparedView, Run
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread

PATIENT = "John Smith"


def _evaluate(folder, subscribers=()):
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
            outcome = api.evaluate(config, db=folder / "medops.db", name="big", subscribers=subscribers)
            assert outcome.status == "completed"
    return api.open_store(folder / "medops.db")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    return _evaluate(tmp_path_factory.mktemp("prepared"))


def _stored(store, run_id):
    """The prepared view as the store holds it: (key, summary, [(position, flags, record)])."""
    with store.session() as s:
        view = s.get(PreparedView, run_id)
        rows = s.query(PreparedSample).filter_by(run_id=run_id).order_by(PreparedSample.position).all()
        return (view.key, view.summary, [(r.position, r.flags, r.record) for r in rows]) if view is not None else None


def _pages(store):
    pages = [api.run_examples("big", db=store, redact=False, flag=f, limit=100) for f in ("all", "failed")]
    return pages, [api.run_example("big", i, db=store, redact=False) for i in range(7)]


def test_a_run_is_prepared_as_it_ends_the_same_as_its_first_view_prepares_it(tmp_path):
    store = _evaluate(tmp_path)
    run = store.find_run("big")
    at_close = _stored(store, run.id)  # no view asked for yet
    assert at_close is not None and at_close[0] == run_key(run)
    assert [r["item_id"] for _, _, r in at_close[2]] == [f"p{i}" for i in range(7)]
    assert at_close[1]["counts"]["all"] == 7
    views = _pages(store)
    examples._SUMMARIES.clear()
    with store.session() as s:  # as a run recorded before: its first view prepares it
        s.execute(delete(PreparedSample))
        s.execute(delete(PreparedView))
    assert _pages(store) == views
    assert _stored(store, run.id) == at_close
    assert prepare(store, run) == at_close[1]


def test_a_failure_to_prepare_at_close_leaves_the_run_stored_and_its_first_view_prepares_it(tmp_path, caplog):
    elsewhere = PrepareViews(api.open_store(tmp_path / "elsewhere.db"))  # a store without the run: it fails
    with caplog.at_level(logging.WARNING, logger="medops.prepared"):
        store = _evaluate(tmp_path, subscribers=[elsewhere])
    run = store.find_run("big")
    assert elsewhere.failures == 1 and run.status == "completed"
    warned = [r.getMessage() for r in caplog.records if r.name == "medops.prepared"]
    assert len(warned) == 1 and f"run {run.id}: its views were not prepared at close" in warned[0]
    assert "\n" not in warned[0] and "NotFound" in warned[0]
    assert _stored(store, run.id) is None
    assert api.run_examples("big", db=store, redact=False)["total"] == 7  # the first view prepares it
    assert _stored(store, run.id)[0] == run_key(run)


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
    old_key = run_key(run)
    with store.session() as s:  # what a resume does when it finishes again: a new end time, new rows
        row = s.get(Run, run.id)
        row.finished_at = row.finished_at + timedelta(seconds=1)
    with store.session() as s:
        s.query(PreparedSample).filter_by(run_id=run.id, position=0).update(
            {"record": {**s.get(PreparedSample, (run.id, 0)).record, "item_id": "stale"}}
        )
    after = api.run_examples("big", db=store, limit=2)
    assert run_key(store.find_run("big")) != old_key
    assert after["examples"][0]["item_id"] == before["examples"][0]["item_id"] != "stale"  # read anew, not stale
    with store.session() as s:
        assert s.get(PreparedView, run.id).key == run_key(store.find_run("big"))
