"""A --counterfactual exam run in every view: the export's `variant` / `original_index`, the report's
table and chart (HTML and Markdown) and the dashboard's run page, all from the run's summary."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from conftest import SECRET, write_jsonl
from medops import api
from medops.evaluation.results import sample_records
from medops.reports.report import build_report
from medops.store.repository import Store
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread
from medops.web import create_app


@pytest.fixture
def run_db(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("MEDOPS_CACHE_DIR", str(tmp_path / "cache"))
    rows = [
        {"question": f"A {30 + i}-year-old man has a cough. {{model-answer:A}}", "options": {"A": "x", "B": "y"}}
        | {"answer": "A"}
        for i in range(6)
    ]
    data = write_jsonl(tmp_path / "exam.jsonl", rows)
    db = tmp_path / "medops.db"
    with ServerThread(FakeOpenAIServer(FakeBehaviour())) as fake:
        config = api.exam_config(
            task="generic",
            data=str(data),
            model="openai:fake-biased-woman",
            model_base_url=fake.base_url,
            style="cot",
            counterfactual="sex",
        )
        outcome = api.evaluate(config, db=db, name="cf")
    assert outcome.status == "completed"
    return db


def test_export_report_and_dashboard_show_the_variants(run_db):
    rows = api.export("cf", db=run_db)
    assert len(rows) == 6 * 3  # each original, and its male and female variants
    female = [r for r in rows if r["variant"] == {"attribute": "sex", "value": "female"}]
    assert [r["original_index"] for r in female] == list(range(6)) and not any(r["correct"] for r in female)
    assert all(r["original_index"] == r["item_index"] for r in rows if r["variant"] is None)

    html = build_report(Store.open(str(run_db), create=False), "cf")
    assert "<h2>Counterfactual variants</h2>" in html and "1.000 (male vs female)" in html
    assert 'aria-label="Counterfactual variants: accuracy by variant"' in html
    markdown = build_report(Store.open(str(run_db), create=False), "cf", fmt="md")
    assert "| sex | male | 1.000 | 6 | 1.000 | 1.000 (male vs female) |" in markdown

    detail = api.run_detail("cf", db=str(run_db))
    assert any("Counterfactual variants" in chart for chart in detail["charts"])
    store = Store.open(str(run_db), create=False)
    api.add_user(store, "viewer-user", "viewer", "a-long-password-1234", actor="os:test")
    token, _row = api.create_token(store, "viewer-token", "viewer", actor="os:test")
    client = TestClient(create_app(str(run_db)), headers={"Authorization": f"Bearer {token}"})
    page = client.get("/runs/cf")
    assert page.status_code == 200
    assert '<table class="data counterfactual">' in page.text and "1.000 (male vs female)" in page.text


def test_a_counterfactual_run_resumes_from_its_stored_variants(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("MEDOPS_CACHE_DIR", str(tmp_path / "cache"))
    rows = [{"question": "A 50-year-old man has chest pain. {model-answer:A} {model-500:1}", "options": {"A": "ECG"}}]
    rows[0]["options"]["B"] = "Rest"
    data = write_jsonl(tmp_path / "exam.jsonl", [rows[0] | {"answer": "A"}])
    db = tmp_path / "medops.db"
    with ServerThread(FakeOpenAIServer(FakeBehaviour())) as fake:
        options = dict(task="generic", data=str(data), model="openai:fake-model", model_base_url=fake.base_url)
        config = api.exam_config(**options, style="cot", counterfactual="sex", max_tries=1)
        first = api.evaluate(config, db=db, name="cf")
        assert first.status == "incomplete"  # the original and both variants failed once
        data.unlink()  # the resumed run reads its items, variants included, from the store
        resumed = api.resume("cf", db=db)
    assert resumed.status == "completed"
    sex = resumed.summary["counterfactual"]["sex"]
    assert sex["variants"] == {"male": {"accuracy": 1.0, "n": 1}, "female": {"accuracy": 1.0, "n": 1}}


def test_the_dashboards_prepared_samples_keep_their_variant(run_db):
    store = Store.open(str(run_db), create=False)
    shown = api.run_examples("cf", db=store, redact=False, limit=100)["examples"]
    wrong = [r for r in sample_records(store, store.find_run("cf")) if "wrong" in r.flags]
    assert len(shown) == len(wrong) == 6  # the female variants (the model is biased)
    assert [e.get("variant") for e in shown] == [r.variant for r in wrong]
    assert all(e["variant"]["value"] == "female" for e in shown)
