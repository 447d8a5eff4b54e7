"""Exam loaders, the eval mcqa command (loopback server and packaged SmolLM2), and RL exports."""

from __future__ import annotations

import json

import pytest

from conftest import needs_shared, write_jsonl
from medops.datasets.mcqa import load_mcqa
from medops.errors import DataError
from medops.rewards import compute_score


def test_every_layout_from_fixtures(tmp_path):
    standard = write_jsonl(
        tmp_path / "medqa.jsonl",
        [
            {
                "question": "Q1?",
                "options": {"A": "x", "B": "y", "C": "z", "D": "w"},
                "answer_idx": "C",
                "answer": "z",
                "meta_info": "step1",
            }
        ],
    )
    assert load_mcqa("medqa", standard).items[0].answer == "C"
    hf_medmcqa = write_jsonl(
        tmp_path / "medmcqa.jsonl",
        [
            {
                "question": "Q?",
                "opa": "a",
                "opb": "b",
                "opc": "c",
                "opd": "d",
                "cop": 3,
                "subject_name": "Anatomy",
                "topic_name": "Bones",
                "exp": "...",
            }
        ],
    )
    item = load_mcqa("medmcqa", hf_medmcqa).items[0]
    assert (item.answer, item.tags["subject"], item.letters) == ("D", "Anatomy", "ABCD")
    kor = write_jsonl(
        tmp_path / "kor.jsonl",
        [
            {
                "question": "질문?",
                "A": "1",
                "B": "2",
                "C": "3",
                "D": "4",
                "E": "5",
                "answer": 5,
                "subject": "doctor",
                "year": 2023,
            }
        ],
    )
    item = load_mcqa("kormedmcqa", kor).items[0]
    assert (item.answer, item.tags) == ("E", {"profession": "doctor", "year": "2023"})
    kmle = write_jsonl(
        tmp_path / "kmle.jsonl",
        [
            {
                "Question": "조치는?",
                "Followings": "① 가\n② 나\n③ 다\n④ 라\n⑤ 마",
                "Answer": 4,
                "category": "의료법규",
                "Image": 0,
                "class": 1,
                "Q_no": 1,
            },
            {"Question": "사진은?", "Followings": "① 가\n② 나", "Answer": 1, "Image": 2, "class": 1, "Q_no": 2},
            {"Question": "연결?", "Followings": "① 가\n② 나\n③ 다", "Answer": "1,3", "Image": 0, "class": 1, "Q_no": 3},
        ],
    )
    exam = load_mcqa("kmle", kmle)
    assert len(exam) == 1 and exam.items[0].answer == "D" and exam.skipped == {"needs_image": 1, "multi_answer": 1}
    csv_file = tmp_path / "bank.csv"
    csv_file.write_text("id,question,A,B,C,answer,subject\nq1,Which?,red,green,blue,B,cardiology\n")
    item = load_mcqa("generic", csv_file).items[0]
    assert (item.id, item.answer, item.tags["subject"]) == ("q1", "B", "cardiology")


def test_bad_rows_name_file_and_line(tmp_path):
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"question": "Q", "options": {"A": "x", "B": "y"}, "answer_idx": "A"},
            {"question": "Q", "options": {"A": "x", "B": "y"}, "answer_idx": "F"},
        ],
    )
    with pytest.raises(DataError, match=r"bad.jsonl:2: .*'F' is not one of the 2 options"):
        load_mcqa("medqa", bad)
    mismatch = write_jsonl(
        tmp_path / "mm.jsonl", [{"question": "Q", "options": {"A": "x", "B": "y"}, "answer_idx": "A", "answer": "y"}]
    )
    with pytest.raises(DataError, match=r"mm.jsonl:1: answer 'y' is not the text of option A"):
        load_mcqa("medqa", mismatch)


@pytest.mark.parametrize(
    ("task", "path", "n", "n_options", "skipped"),
    [
        ("medqa", ("mcqa", "medqa", "test.jsonl"), 1273, {4}, {}),
        ("medmcqa", ("mcqa", "medmcqa", "dev_single_answer.jsonl"), 2816, {4}, {}),
        ("mmlu_medical", ("mcqa", "mmlu_medical", "test.jsonl"), 1089, {4}, {}),
        ("pubmedqa", ("mcqa", "pubmedqa", "test_mc.jsonl"), 500, {3}, {}),
        ("pubmedqa", ("mcqa", "pubmedqa", "ori_pqal.json"), 500, {3}, {}),
        ("kmle", ("korean", "kmle", "2021.jsonl"), 168, {5, 8, 9}, {"needs_image": 185, "multi_answer": 7}),
        ("kmle", ("korean", "kmle", "2021.xlsx"), 168, {5, 8, 9}, {"needs_image": 185, "multi_answer": 7}),
        ("kormedmcqa", ("korean", "kormedmcqa", "train_sample_300_chat.jsonl"), 300, {5}, {}),
    ],
)
def test_real_exam_files(task, path, n, n_options, skipped):
    exam = load_mcqa(task, needs_shared(*path))
    assert len(exam) == n and exam.skipped == skipped
    assert {len(item.options) for item in exam.items} == n_options
    assert all(item.answer in item.letters for item in exam.items)


def test_pubmedqa_layouts_agree():
    official = load_mcqa("pubmedqa", needs_shared("mcqa", "pubmedqa", "ori_pqal.json"))
    mc = load_mcqa("pubmedqa", needs_shared("mcqa", "pubmedqa", "test_mc.jsonl"))
    assert {i.id: i.answer for i in official.items} == {i.id: i.answer for i in mc.items}


def test_eval_mcqa_against_the_loopback_server(cli, server, tmp_path):
    rows = [
        {
            "question": f"Q{i} {{model-answer:{'B' if i < 6 else 'A'}}}",
            "options": {"A": "x", "B": "y", "C": "z"},
            "answer_idx": "B",
            "subject": "cardiology" if i % 2 else "neurology",
        }
        for i in range(8)
    ]
    data = write_jsonl(tmp_path / "bank.jsonl", rows)
    result = cli.run(
        "eval",
        "mcqa",
        "--task",
        "generic",
        "--data",
        str(data),
        "--model",
        "openai:fake-model",
        "--model-base-url",
        server.base_url,
        "--style",
        "cot",
        "--json",
        check=True,
    ).json()
    assert result["score"] == 6 / 8 and result["n_unparsed"] == 0 and result["rules"] == {"boxed": 8}
    assert result["metrics"]["subject:cardiology"]["n_samples"] == 4
    assert result["metrics"]["accuracy"]["ci95_low"] < 0.75 < result["metrics"]["accuracy"]["ci95_high"]
    prompt = server.server.log[0].messages[-1]["content"]
    assert "\\boxed{X}" in prompt and "A. x\nB. y\nC. z" in prompt
    shown = cli.run("runs", "show", str(result["run_id"]), "--json", check=True).json()
    assert shown["score"] == 0.75 and shown["config"]["style"] == "cot"

    medqa = needs_shared("mcqa", "medqa", "test.jsonl")
    real = cli.run(
        "eval",
        "mcqa",
        "--task",
        "medqa",
        "--data",
        str(medqa),
        "--limit",
        "20",
        "--model",
        "openai:fake-model",
        "--model-base-url",
        server.base_url,
        "--json",
        check=True,
    ).json()
    assert real["n_examples"] == 20 and real["n_unparsed"] == 0
    assert set(real["metrics"]) >= {"accuracy", "step:step1"}


@pytest.mark.slow
def test_eval_mcqa_with_the_packaged_model(cli):
    medqa = needs_shared("mcqa", "medqa", "test.jsonl")
    result = cli.run(
        "eval",
        "mcqa",
        "--task",
        "medqa",
        "--data",
        str(medqa),
        "--limit",
        "20",
        "--model",
        "local:smollm2",
        "--max-tokens",
        "12",
        "--json",
        check=True,
    ).json()
    assert result["n_examples"] == 20 and 0.0 <= result["score"] <= 1.0
    assert result["model"] == "local:smollm2" and sum(result["rules"].values()) == 20
    kmle = needs_shared("korean", "kmle", "2021.jsonl")
    scored = cli.run(
        "eval",
        "mcqa",
        "--task",
        "kmle",
        "--data",
        str(kmle),
        "--limit",
        "3",
        "--scoring",
        "loglikelihood",
        "--json",
        check=True,
    ).json()
    assert scored["rules"] == {"loglikelihood": 3} and scored["n_unparsed"] == 0
    assert scored["skipped_items"] == {"needs_image": 185, "multi_answer": 7}


def test_loglikelihood_needs_an_in_process_model(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "q.jsonl", [{"question": "Q", "options": {"A": "x", "B": "y"}, "answer_idx": "A"}])
    result = cli.run(
        "eval",
        "mcqa",
        "--task",
        "generic",
        "--data",
        str(data),
        "--model",
        "openai:fake-model",
        "--model-base-url",
        server.base_url,
        "--scoring",
        "loglikelihood",
    )
    assert result.returncode == 2 and "needs an in-process model" in result.stderr


def test_export_for_trl_and_verl(cli, tmp_path):
    data = write_jsonl(
        tmp_path / "q.jsonl",
        [{"question": "Which?", "options": {"A": "x", "B": "y"}, "answer_idx": "B", "subject": "s"}],
    )
    trl = tmp_path / "train.jsonl"
    cli.run("data", "export", "--task", "generic", "--data", str(data), "--format", "trl", "-o", str(trl), check=True)
    row = json.loads(trl.read_text())
    assert row["answer"] == "B" and row["prompt"][-1]["role"] == "user" and "\\boxed{X}" in row["prompt"][-1]["content"]
    verl = tmp_path / "train.parquet"
    cli.run("data", "export", "--task", "generic", "--data", str(data), "--format", "verl", "-o", str(verl), check=True)
    import pyarrow.parquet as pq

    record = pq.read_table(verl).to_pylist()[0]
    assert record["reward_model"] == {"style": "rule", "ground_truth": "B"}
    assert record["data_source"] == "medops/generic" and record["ability"] == "medical_mcqa"
    assert (
        compute_score(
            record["data_source"], "so \\boxed{B}", record["reward_model"]["ground_truth"], record["extra_info"]
        )
        == 1.0
    )


def test_pull_exam_set_through_the_datasets_library(cli, tmp_path):
    pytest.importorskip("datasets")
    mirror = tmp_path / "mirror"
    repo = mirror / "cais" / "mmlu"
    rows = [
        {"question": f"Q{i}?", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": i % 4} for i in range(6)
    ]
    for subject in (
        "anatomy",
        "clinical_knowledge",
        "college_biology",
        "college_medicine",
        "medical_genetics",
        "professional_medicine",
    ):
        (repo / subject).mkdir(parents=True)
        write_jsonl(repo / subject / "test.jsonl", [{**r, "subject": subject} for r in rows])
    env = {"MEDOPS_HF_MIRROR": str(mirror), "HF_HUB_OFFLINE": "1"}
    first = cli.run("data", "pull", "mmlu_medical", env=env, check=True)
    assert "downloaded" in first.stdout
    again = cli.run("data", "pull", "mmlu_medical", env=env, check=True)
    assert "already cached" in again.stdout
    exam = load_mcqa("mmlu_medical", tmp_path / "cache" / "exams" / "mmlu_medical.jsonl")
    assert len(exam) == 36 and exam.items[1].answer == "B" and exam.items[0].tags["subject"] == "anatomy"
    offline = cli.run("data", "pull", "kormedmcqa", env={"HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 2 and "could not load sean0042/KorMedMCQA" in offline.stderr
    missing = cli.run("eval", "mcqa", "--task", "medqa", "--data", "medqa")
    assert missing.returncode == 2 and "run `medops data pull medqa`" in missing.stderr
