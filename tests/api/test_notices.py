"""The notes about a run's settings come from medops.api: a notebook gets them as warnings, the CLI
prints the same text (``medops eval`` runs through the API, every benchmark)."""

from __future__ import annotations

import warnings

import pytest

from conftest import SECRET, example, write_jsonl
from medops import api
from medops.errors import UserError

DEMO = "demo grader, not a valid judge"
PRESET = "--preset simple-evals keeps medops's grader template"


def rubric_file(tmp_path):
    return write_jsonl(tmp_path / "rubrics.jsonl", [example("p1", [("Advises rest {met}", 5, [])])])


def fake(server, data, **extra):
    return api.healthbench_config(
        data=str(data),
        model="openai:fake-model",
        grader="openai:fake-grader",
        model_base_url=server.base_url,
        grader_base_url=server.base_url,
        retry_base_delay=0.05,
        **extra,
    )


def test_config_notes_name_what_makes_a_score_unreliable(tmp_path):
    data = str(rubric_file(tmp_path))
    demo = api.healthbench_config(
        data=data, model="openai:m", model_base_url="http://127.0.0.1:9", grader="local:smollm2"
    )
    assert [DEMO in note for note in api.config_notes(demo)] == [True]
    # a meta-evaluation measures the grader itself: the demo grader is no warning there
    assert api.config_notes(api.meta_eval_config(data=data, grader="local:smollm2")) == []
    preset = api.healthbench_config(
        data=data,
        grader="openai:g",
        grader_base_url="http://127.0.0.1:9",
        model="openai:m",
        model_base_url="http://127.0.0.1:9",
        preset="simple-evals",
    )
    assert any(PRESET in note for note in api.config_notes(preset))
    given_template = tmp_path / "template.txt"
    given_template.write_text("<<conversation>> <<rubric_item>>", encoding="utf-8")
    chosen = preset.model_copy(update={"grader_template_source": str(given_template)})
    assert api.config_notes(chosen) == []
    assert api.config_notes(api.exam_config(task="generic", data=data, model="openai:m")) == []


def test_explicit_options_are_kept_over_a_preset(tmp_path):
    data = str(rubric_file(tmp_path))
    options = dict(data=data, model="openai:m", grader="openai:g", preset="simple-evals", model_temperature=0.0)
    assert api.healthbench_config(**options).model_temperature == 0.0  # every option given is explicit
    assert api.healthbench_config(explicit={"data", "model", "grader", "preset"}, **options).model_temperature == 0.5


def test_evaluate_hands_its_notes_to_on_notice_or_warns(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    data = rubric_file(tmp_path)
    config = fake(server, data, preset="simple-evals")
    seen: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", api.RunNotice)  # with on_notice, nothing is warned
        outcome = api.evaluate(config, db=tmp_path / "a.db", on_notice=seen.append)
    assert outcome.status == "completed"
    assert seen == api.config_notes(config) and any(PRESET in note for note in seen)
    with pytest.warns(api.RunNotice, match="keeps medops's grader template"):
        assert api.evaluate(config, db=tmp_path / "b.db").status == "completed"


def test_resume_refuses_a_run_of_another_benchmark(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    db = tmp_path / "medops.db"
    run = api.evaluate(fake(server, rubric_file(tmp_path)), db=db, name="rubric")
    with pytest.raises(UserError, match="is a healthbench run; resume it with its own command"):
        api.resume(str(run.run_id), db=db, benchmarks=("mcqa",))


def test_the_cli_prints_the_notes_the_api_gives(cli, server, tmp_path):
    data = rubric_file(tmp_path)
    result = cli.run(*cli.eval_args(server, data, "--preset", "simple-evals"), check=True)
    notes = api.config_notes(fake(server, data, preset="simple-evals"))
    assert notes and all(note in " ".join(result.stderr.split()) for note in notes)
    # exam runs go through the API too: resuming a rubric run with eval mcqa is the API's refusal
    run_id = cli.run("runs", "list", "--json", check=True).json()[0]["run_id"]
    refused = cli.run("eval", "mcqa", "--resume", str(run_id))
    assert refused.returncode == 2 and "resume it with its own command" in refused.stderr
