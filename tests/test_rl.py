"""RL curation and a real GRPO run on CPU with the packaged SmolLM2 (TRL, LoRA, 2 steps)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from conftest import write_jsonl


def bank(tmp_path, n=20):
    rows = [
        {
            "id": f"q{i}",
            "question": f"Which option is right for case {i}?",
            "options": {"A": "x", "B": "y"},
            "answer_idx": "AB"[i % 2],
            "subject": "cardiology",
        }
        for i in range(n)
    ]
    return write_jsonl(tmp_path / "bank.jsonl", rows)


def test_prepare_splits_and_dedups(cli, tmp_path):
    source = bank(tmp_path)
    eval_set = write_jsonl(
        tmp_path / "eval.jsonl",
        [
            {"question": "Which option is right for case 3?", "options": {"A": "x", "B": "y"}, "answer_idx": "B"},
            {"question": "WHICH option is right, for case 4", "options": {"A": "x", "B": "y"}, "answer_idx": "A"},
        ],
    )
    out = tmp_path / "rl"
    cli.run(
        "rl",
        "prepare",
        "--task",
        "generic",
        "--data",
        str(source),
        "--exclude",
        f"generic={eval_set}",
        "--heldout",
        "0.25",
        "-o",
        str(out),
        check=True,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dropped"] == {
        "exact_duplicate_of_eval": 1,
        "normalised_duplicate_of_eval": 1,
        "repeated_in_sources": 0,
    }
    train = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    held = [json.loads(x) for x in (out / "heldout.jsonl").read_text().splitlines()]
    assert (len(train), len(held)) == (14, 4) and not {r["id"] for r in train} & {r["id"] for r in held}
    assert {"q3", "q4"}.isdisjoint({r["id"] for r in train + held})
    assert "\\boxed{X}" in train[0]["prompt"][-1]["content"] and train[0]["answer"] in "AB"
    assert manifest["train"]["rows"] == 14 and len(manifest["train"]["sha256"]) == 64
    again = tmp_path / "rl2"
    cli.run(
        "rl",
        "prepare",
        "--task",
        "generic",
        "--data",
        str(source),
        "--exclude",
        f"generic={eval_set}",
        "--heldout",
        "0.25",
        "-o",
        str(again),
        check=True,
    )
    assert json.loads((again / "manifest.json").read_text())["train"]["sha256"] == manifest["train"]["sha256"]
    # The held-out split is itself an exam file medops can score.
    from medops.datasets.mcqa import load_mcqa

    assert len(load_mcqa("generic", out / "heldout.jsonl")) == 4


def test_grpo_smoke_run_on_cpu(cli, tmp_path):
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    out = tmp_path / "rl"
    cli.run(
        "rl",
        "prepare",
        "--task",
        "generic",
        "--data",
        str(bank(tmp_path, 10)),
        "--heldout",
        "0.2",
        "-o",
        str(out),
        check=True,
    )
    result = cli.run(
        "rl",
        "train",
        "--train-data",
        str(out / "train.jsonl"),
        "--output-dir",
        str(tmp_path / "ckpt"),
        "--num-generations",
        "2",
        "--per-device-train-batch-size",
        "2",
        "--max-completion-length",
        "16",
        "--max-steps",
        "2",
        "--save-steps",
        "2",
        "--learning-rate",
        "1e-5",
        "--format-weight",
        "0.1",
        "--name",
        "smoke",
        check=True,
        timeout=300,
    )
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and summary["final_model"]
    with sqlite3.connect(cli.db) as connection:
        benchmark, status, stored = connection.execute(
            "select benchmark, status, summary from runs where name = 'smoke'"
        ).fetchone()
    steps = json.loads(stored)["steps"]
    assert (benchmark, status) == ("rl-train", "completed") and [s["step"] for s in steps] == [1, 2]
    # medops.rewards computed the reward: correctness and format rate are logged apart, weighted 0.9 / 0.1
    assert all(
        {"rewards/accuracy/mean", "rewards/format_rate/mean", "reward", "completions/mean_length"} <= set(s)
        for s in steps
    )
    assert all(
        s["reward"] == pytest.approx(0.9 * s["rewards/accuracy/mean"] + 0.1 * s["rewards/format_rate/mean"], abs=1e-6)
        for s in steps
    )
    assert summary["checkpoints"] and summary["checkpoints"][-1].endswith("checkpoint-2")
    from peft import AutoPeftModelForCausalLM

    reloaded = AutoPeftModelForCausalLM.from_pretrained(summary["final_model"])
    assert reloaded.peft_config["default"].r == 16

    # Interrupted or extended: the same output directory resumes from its last checkpoint.
    more = cli.run(
        "rl",
        "train",
        "--train-data",
        str(out / "train.jsonl"),
        "--output-dir",
        str(tmp_path / "ckpt"),
        "--num-generations",
        "2",
        "--per-device-train-batch-size",
        "2",
        "--max-completion-length",
        "16",
        "--max-steps",
        "3",
        "--save-steps",
        "2",
        "--name",
        "smoke-more",
        check=True,
        timeout=300,
    )
    resumed = json.loads(more.stdout)
    assert resumed["resumed_from_checkpoint"] is True
    with sqlite3.connect(cli.db) as connection:
        (stored,) = connection.execute("select summary from runs where name = 'smoke-more'").fetchone()
    assert [s["step"] for s in json.loads(stored)["steps"]] == [3]


def test_difficulty_profiling_and_before_after_against_the_loopback_server(cli, server, tmp_path):
    rows = [
        {
            "id": f"q{i}",
            "question": f"Case {i} {{model-answer:{'A' if i < 3 else 'B'}}}",
            "options": {"A": "x", "B": "y"},
            "answer_idx": "A",
        }
        for i in range(5)
    ]
    rows.append(
        {
            "id": "long",
            "question": "Case long " + "detail " * 50 + "{model-answer:A}",
            "options": {"A": "x", "B": "y"},
            "answer_idx": "A",
        }
    )
    prepared = tmp_path / "rl"
    cli.run(
        "rl",
        "prepare",
        "--task",
        "generic",
        "--data",
        str(write_jsonl(tmp_path / "b.jsonl", rows)),
        "--heldout",
        "0",
        "-o",
        str(prepared),
        check=True,
    )
    result = cli.run(
        "rl",
        "difficulty",
        "--data",
        str(prepared / "train.jsonl"),
        "--model",
        "openai:fake-model",
        "--model-base-url",
        server.base_url,
        "-k",
        "3",
        "--keep-band",
        "0,1",
        "--max-chars",
        "100",
        "-o",
        str(tmp_path / "profiled"),
        check=True,
    ).json()
    assert result["items"] == 6 and result["always_solved"] == 4 and result["never_solved"] == 2
    assert result["kept"] == 5  # the long question is dropped by --max-chars
    profile = [json.loads(x) for x in (tmp_path / "profiled" / "difficulty.jsonl").read_text().splitlines()]
    assert {p["samples"] for p in profile} == {3}
    assert len([c for c in server.server.log if c.model == "fake-model"]) == 18  # k samples per item, each a call
    narrow = cli.run(
        "rl",
        "difficulty",
        "--data",
        str(prepared / "train.jsonl"),
        "--model",
        "openai:fake-model",
        "--model-base-url",
        server.base_url,
        "-k",
        "3",
        "-o",
        str(tmp_path / "narrow"),
        check=True,
    ).json()
    assert narrow["kept"] == 0  # default band drops items always or never solved

    rubric = write_jsonl(
        tmp_path / "hb.jsonl",
        [
            {
                "prompt": [{"role": "user", "content": "Fever?"}],
                "prompt_id": "h",
                "rubrics": [{"criterion": "Advises fluids {met}", "points": 1, "tags": []}],
                "example_tags": ["theme:hedging"],
            }
        ],
    )
    reports = cli.run(
        "rl",
        "evaluate",
        "--base",
        "openai:fake-model",
        "--tuned",
        "openai:fake-model-v2",
        "--data",
        str(prepared / "train.jsonl"),
        "--model-base-url",
        server.base_url,
        "--healthbench-data",
        str(rubric),
        "--grader",
        "openai:fake-grader",
        "--grader-base-url",
        server.base_url,
        check=True,
    ).json()
    report = reports["exam"]
    assert reports["healthbench"]["metrics"]["overall_score"]["difference"] == 0.0
    accuracy = report["metrics"]["accuracy"]
    assert report["n_shared"] == 6 and accuracy["test"] == "mcnemar_exact" and accuracy["difference"] == 0.0
