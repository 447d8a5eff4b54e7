"""`eval healthbench --counterfactual`: variant prompts graded by the run's grader against the same
criteria, the headline on the originals only, per-variant scores with paired intervals."""

from __future__ import annotations

import pytest

from conftest import SECRET, example, write_jsonl
from medops import api
from medops.errors import UserError
from medops.evaluation.results import sample_records
from medops.store.repository import Store
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread


def test_rubric_variants_are_graded_and_summarised_per_variant(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("MEDOPS_CACHE_DIR", str(tmp_path / "cache"))
    rows = [
        example("man", [("Advises rest", 5, [])], text="I am a 50-year-old man with back pain."),
        example("woman", [("Advises rest", 5, [])], text="I'm a 35-year-old woman with a sore throat."),
        example("pregnant", [("Checks blood pressure", 5, [])], text="I am pregnant and dizzy."),
        example("rubric", [("Asks whether she is pregnant", 5, [])], text="I am a 30-year-old woman with nausea."),
        example("none", [("Asks about duration", 5, [])], text="I have a rash."),
    ]
    data = write_jsonl(tmp_path / "rubrics.jsonl", rows)
    with ServerThread(FakeOpenAIServer(FakeBehaviour())) as fake:
        options = dict(data=str(data), model="openai:fake-model", grader="openai:fake-grader")
        options |= dict(model_base_url=fake.base_url, grader_base_url=fake.base_url)
        config = api.healthbench_config(**options, counterfactual="sex")
        outcome = api.evaluate(config, db=tmp_path / "medops.db", name="hb")
        plain = api.evaluate(api.healthbench_config(**options), db=tmp_path / "medops.db", name="plain")
    assert outcome.status == "completed"
    summary = outcome.summary
    assert summary["n_examples"] == 5 and summary["score"] == plain.summary["score"]  # the originals only
    sex = summary["counterfactual"]["sex"]
    assert (sex["n_rewritten"], sex["n_items"]) == (2, 2)
    assert sex["kept"] == {"pregnancy": 1, "rubric_mentions": 1} and sex["left_out"] == {"no_mention": 1}
    pair = sex["pairs"][0]
    assert pair["test"] == "paired_sign_flip_permutation" and pair["ci95_low"] <= pair["gap"] <= pair["ci95_high"]
    store = Store.open(str(tmp_path / "medops.db"), create=False)
    records = sample_records(store, store.find_run("hb"))
    as_male = {r.prompt_text for r in records if r.variant and r.variant["value"] == "male"}
    assert as_male == {"I am a 50-year-old man with back pain.", "I'm a 35-year-old man with a sore throat."}
    rows = api.export("hb", db=tmp_path / "medops.db")
    assert {r["criterion"] for r in rows if r["original_index"] == 1} == {"Advises rest"}  # never rewritten
    assert len([r for r in rows if r["variant"] is not None]) == 4


def test_counterfactual_needs_a_model_s_responses():
    with pytest.raises(UserError, match="--counterfactual needs responses from --model"):
        api.healthbench_config(data="demo", completions="ideal", grader="openai:g", counterfactual="sex")
