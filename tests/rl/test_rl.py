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
    plan = tmp_path / "rl.yaml"
    plan.write_text("model: hf:/models/x\nmax_completion_length: 64\ntemperature: 0.7\nuse_lora: false\n")
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
        "--train-config",
        str(plan),
        "-o",
        str(tmp_path / "profiled"),
        check=True,
    ).json()
    assert result["items"] == 6 and result["always_solved"] == 4 and result["never_solved"] == 2
    assert result["kept"] == 5  # the long question is dropped by --max-chars
    assert result["n_truncated"] == 0
    profile = [json.loads(x) for x in (tmp_path / "profiled" / "difficulty.jsonl").read_text().splitlines()]
    assert {p["samples"] for p in profile} == {3} and {p["truncated"] for p in profile} == {0}
    # Sampled as it will be trained: the training config's length and temperature, the manifest's prompts.
    with sqlite3.connect(cli.db) as connection:
        (stored,) = connection.execute("select config from runs where id = ?", (result["sampling_run_id"],)).fetchone()
    sampled = json.loads(stored)
    assert (sampled["max_tokens"], sampled["temperature"], sampled["style"], sampled["language"]) == (
        64,
        0.7,
        "cot",
        "en",
    )
    assert result["settings"]["max_tokens"] == {"value": 64, "from": str(plan)}
    assert result["settings"]["style"] == {"value": "cot", "from": str((prepared / "manifest.json").resolve())}
    # The filtered file is recorded with the prompts' style and language, so `rl train` finds them.
    from medops.rl.prepare import read_manifest

    filtered = read_manifest(tmp_path / "profiled" / "train_filtered.jsonl")
    assert filtered is not None and (filtered.style, filtered.language) == ("cot", "en")
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
    )
    # the default band drops items always or never solved: here all of them, so nothing is written
    error = narrow.stderr.strip().splitlines()[-1]  # after the line saying how it asks
    assert narrow.returncode == 2 and narrow.stdout == "" and error.startswith("error: ")
    assert "kept 0 of 6 items" in error and "4 always solved, 2 never solved" in error
    assert not (tmp_path / "narrow").exists()

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
    exam_runs = reports["runs"]["exam"]
    assert [exam_runs[side]["status"] for side in ("base", "tuned")] == ["completed", "completed"]
    assert exam_runs["base"]["n_truncated"] == 0 and exam_runs["tuned"]["n_failed_calls"] == 0
    assert reports["settings"]["max_tokens"] == {"value": None, "from": "default"}  # no training run: the model's


def test_evaluate_asks_as_prepared_and_shows_failed_calls(cli, server, tmp_path):
    """No training run recorded: the manifest's style and language; a call that fails for good
    leaves the run incomplete, shown in the report and the exit status, compared on the rest."""
    rows = [
        {"id": "ok1", "question": "Case one {model-answer:A}", "options": {"A": "x", "B": "y"}, "answer_idx": "A"},
        {"id": "ok2", "question": "Case two {model-answer:B}", "options": {"A": "x", "B": "y"}, "answer_idx": "A"},
        {"id": "bad", "question": "Case three {model-500:all}", "options": {"A": "x", "B": "y"}, "answer_idx": "A"},
    ]
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
        "--style",
        "r1",
        "--language",
        "ko",
        "-o",
        str(prepared),
        check=True,
    )
    result = cli.run(
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
        "--max-tries",
        "1",
    )
    assert result.returncode == 3, result.stderr
    reports = result.json()
    manifest = str((prepared / "manifest.json").resolve())
    assert reports["settings"] == {
        "style": {"value": "r1", "from": manifest},
        "language": {"value": "ko", "from": manifest},
        "max_tokens": {"value": None, "from": "default"},
    }
    for side in ("base", "tuned"):
        facts = reports["runs"]["exam"][side]
        assert (facts["status"], facts["n_failed_calls"], facts["n_examples"]) == ("incomplete", 1, 2)
        with sqlite3.connect(cli.db) as connection:
            (stored,) = connection.execute("select config from runs where id = ?", (facts["run_id"],)).fetchone()
        assert (json.loads(stored)["style"], json.loads(stored)["language"]) == ("r1", "ko")
    assert reports["exam"]["n_shared"] == 2
    assert "incomplete" in result.stderr
    prompts = [c.messages[-1]["content"] for c in server.server.log if c.model == "fake-model"]
    assert prompts and all("<answer>" in p and "정답" in p for p in prompts)  # Korean r1 instructions


def test_every_documented_training_key_is_a_flag():
    """configs/rl.yaml says every key is also a --flag: hold it to that, for every TrainConfig key."""
    from pathlib import Path

    import typer

    from medops.cli.rl_cmd import app
    from medops.rl.train import TrainConfig, load_train_config

    command = typer.main.get_command(app).commands["train"]
    flags = {param.name for param in command.params}
    assert set(TrainConfig.model_fields) <= flags, set(TrainConfig.model_fields) - flags
    documented = Path(__file__).resolve().parents[2] / "configs" / "rl.yaml"
    assert load_train_config(documented, {}).style == "auto"  # every documented key is a valid option


@pytest.mark.slow
def test_grpo_on_cpu_then_evaluate_the_adapter_as_trained(cli, tmp_path):
    """One real GRPO run (packaged SmolLM2, LoRA, 2 steps) on data prepared in r1 style with Korean
    instructions, then: its record, a resumed run, and `rl evaluate` / `rl difficulty` of the adapter
    checkpoint through hf:, asked the way it was trained."""
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
        "0.3",
        "--style",
        "r1",
        "--language",
        "ko",
        "-o",
        str(out),
        check=True,
    )
    train_args = [
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
        "8",
        "--save-steps",
        "2",
    ]
    # The prompts ask for <think>/<answer>: a reward checking \boxed{} instead is refused up front.
    refused = cli.run(*train_args, "--max-steps", "2", "--style", "cot")
    assert refused.returncode == 2 and "prepared with style r1" in refused.stderr
    assert not (tmp_path / "ckpt").exists()
    result = cli.run(
        *train_args,
        "--max-steps",
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
        benchmark, status, stored, config = connection.execute(
            "select benchmark, status, summary, config from runs where name = 'smoke'"
        ).fetchone()
    steps = json.loads(stored)["steps"]
    assert (benchmark, status) == ("rl-train", "completed") and [s["step"] for s in steps] == [1, 2]
    # trained with the style the data was prepared with, and the run records how the rows were asked
    recorded = json.loads(config)
    assert recorded["style"] == "r1" and recorded["prepared_data"]["language"] == "ko"
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
    checkpoint = summary["checkpoints"][-1]
    from peft import AutoPeftModelForCausalLM

    reloaded = AutoPeftModelForCausalLM.from_pretrained(summary["final_model"])
    assert reloaded.peft_config["default"].r == 16

    def stored_run(run_id):
        with sqlite3.connect(cli.db) as connection:
            config, summary = connection.execute("select config, summary from runs where id = ?", (run_id,)).fetchone()
            reasons = [
                r for (r,) in connection.execute("select finish_reason from responses where run_id = ?", (run_id,))
            ]
        return json.loads(config), json.loads(summary), reasons

    # Before and after on the held-out items, asked as trained: r1, Korean, 8 tokens (found from the checkpoint).
    reports = cli.run(
        "rl",
        "evaluate",
        "--base",
        "local:smollm2",
        "--tuned",
        f"hf:{checkpoint}",
        "--data",
        str(out / "heldout.jsonl"),
        check=True,
        timeout=300,
    ).json()
    source = f"training run {summary['run_id']}"
    assert reports["settings"] == {
        "style": {"value": "r1", "from": source},
        "language": {"value": "ko", "from": source},
        "max_tokens": {"value": 8, "from": source},
    }
    assert reports["exam"]["n_shared"] == 3
    for side in ("base", "tuned"):
        facts = reports["runs"]["exam"][side]
        config, run_summary, reasons = stored_run(facts["run_id"])
        assert (config["style"], config["language"], config["max_tokens"]) == ("r1", "ko", 8)
        assert len(reasons) == 3 and set(reasons) <= {"length", "stop"}
        # every answer cut at 8 tokens is counted, in the report and the run's summary
        assert facts["n_truncated"] == run_summary["n_truncated"] == reasons.count("length")
        assert (facts["status"], facts["n_failed_calls"]) == ("completed", 0)
    assert reports["runs"]["exam"]["tuned"]["model"] == f"hf:{checkpoint}"

    # Interrupted or extended: the same output directory resumes from its last checkpoint.
    more = cli.run(*train_args, "--max-steps", "3", "--name", "smoke-more", check=True, timeout=300)
    resumed = json.loads(more.stdout)
    assert resumed["resumed_from_checkpoint"] is True
    with sqlite3.connect(cli.db) as connection:
        (stored,) = connection.execute("select summary from runs where name = 'smoke-more'").fetchone()
    assert [s["step"] for s in json.loads(stored)["steps"]] == [3]

    # Re-profiling with the tuned model: the latest training run in its directory is found; a flag wins.
    profiled = cli.run(
        "rl",
        "difficulty",
        "--data",
        str(out / "train.jsonl"),
        "--model",
        f"hf:{resumed['final_model']}",
        "-k",
        "1",
        "--max-tokens",
        "1",
        "--keep-band",  # k=1 gives pass rates of 0 or 1 only: keep every item, so a set is written
        "0,1",
        "-o",
        str(tmp_path / "profiled"),
        check=True,
        timeout=300,
    ).json()
    later = f"training run {resumed['run_id']}"
    assert profiled["settings"]["max_tokens"] == {"value": 1, "from": "flag"}
    assert profiled["settings"]["temperature"] == {"value": 1.0, "from": later}
    assert profiled["settings"]["style"] == {"value": "r1", "from": later}
    assert profiled["settings"]["language"] == {"value": "ko", "from": later}
    config, run_summary, reasons = stored_run(profiled["sampling_run_id"])
    assert (config["max_tokens"], config["style"], config["language"]) == (1, "r1", "ko")
    # One token holds no answer: every sample is cut, counted in total and per item.
    assert profiled["n_truncated"] == run_summary["n_truncated"] == reasons.count("length") == 7
    profile = [json.loads(x) for x in (tmp_path / "profiled" / "difficulty.jsonl").read_text().splitlines()]
    assert [p["truncated"] for p in profile] == [1] * 7
