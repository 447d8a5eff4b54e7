"""Real inference with the packaged SmolLM2 (short generations keep this fast on 2 cores)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys

import pytest

from conftest import example, write_jsonl

pytest.importorskip("transformers")

from medops.models.base import SamplingParams
from medops.models.local_hf import LocalChatModel
from medops.models.spec import parse_model_spec

PROMPTS = [
    [{"role": "user", "content": "What is a fever?"}],
    [{"role": "user", "content": "두통이 있어요. 어떻게 해야 하나요?"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "How do I treat a small burn?"}],
    [{"role": "user", "content": "ما هو ضغط الدم؟"}],
    [{"role": "user", "content": "Is ibuprofen safe in pregnancy?"}],
]


@pytest.fixture(scope="module")
def smollm2(model_cache):
    os.environ["MEDOPS_MODEL_CACHE"] = str(model_cache)
    return LocalChatModel(parse_model_spec("local:smollm2"), role="model", batch_size=8)


def test_batched_generation_equals_one_at_a_time(smollm2):
    params = SamplingParams(max_tokens=12)

    async def both():
        before = smollm2.batches_run
        batched = await asyncio.gather(*(smollm2.complete(p, params) for p in PROMPTS))
        batches = smollm2.batches_run - before
        single = [await smollm2.complete(p, params) for p in PROMPTS]
        return batched, batches, single

    batched, batches, single = asyncio.run(both())
    assert batches == 1  # five concurrent requests became one generate call
    assert [c.text for c in batched] == [c.text for c in single]
    assert all(c.ok and c.completion_tokens > 0 and c.prompt_tokens > 0 for c in batched)
    assert {c.finish_reason for c in batched} <= {"stop", "length"}


def test_choice_scores_are_probabilities(smollm2):
    params = SamplingParams(assistant_prefix='{"criteria_met":', score_choices=(" true", " false"))

    async def score():
        return await asyncio.gather(*(smollm2.complete(p, params) for p in PROMPTS))

    for completion in asyncio.run(score()):
        logprobs = completion.extra["choice_logprobs"]
        assert set(logprobs) == {" true", " false"} and all(v < 0 for v in logprobs.values())


def test_offline_local_run_with_logprob_verdicts(cli, tmp_path):
    data = write_jsonl(
        tmp_path / "l.jsonl",
        [
            example("a", [("Advises rest", 5, ["axis:completeness"]), ("Recommends opioids", -5, ["axis:accuracy"])]),
            example("b", [("휴식을 권한다", 4, ["axis:completeness"])], text="두통이 있어요."),
        ],
    )
    result = cli.run(
        "eval",
        "healthbench",
        "--data",
        str(data),
        "--model-max-tokens",
        "16",
        "--json",
        env={"OPENAI_API_KEY": "", "OPENAI_BASE_URL": "http://127.0.0.1:9/unreachable"},
        check=True,
    )
    summary = result.json()
    assert summary["model"] == "local:smollm2" and summary["grader"] == "local:smollm2"
    assert summary["n_ungraded_criteria"] == 0 and summary["n_examples"] == 2
    assert "demo grader, not a valid judge" in result.stderr
    with sqlite3.connect(cli.db) as connection:
        rows = connection.execute("select criteria_met, p_met from grades").fetchall()
    assert len(rows) == 3 and all(0.0 <= p <= 1.0 and met == (p >= 0.5) for met, p in rows)


def test_missing_local_dependencies_give_one_line(cli, tmp_path):
    blocker = tmp_path / "blocked" / "transformers"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named transformers')\n")
    env = {**cli.env, "PYTHONPATH": str(blocker.parent)}
    proc = subprocess.run(
        [sys.executable, "-m", "medops.cli.app", "eval", "healthbench"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: model 'local:smollm2' needs the optional")
    assert "pip install 'medops[local]'" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_local_model_is_a_user_error(cli):
    result = cli.run("eval", "healthbench", "--model", "local:llama-70b")
    assert result.returncode == 2 and "the only packaged local model is local:smollm2" in result.stderr


def test_hf_directory_spec_and_local_meta_eval_calibration(cli, tmp_path, model_cache):
    from medops.models.local_hf import smollm2_checkpoint

    os.environ["MEDOPS_MODEL_CACHE"] = str(model_cache)
    checkpoint = smollm2_checkpoint()  # an ordinary transformers directory
    rows = [
        {
            "prompt": [{"role": "user", "content": f"Question {i}"}],
            "completion": "Drink water and rest.",
            "rubric": "Advises rest",
            "category": "cluster:a",
            "binary_labels": [i % 2 == 0, True],
            "anonymized_physician_ids": ["P1", "P2"],
            "prompt_id": f"p{i}",
            "completion_id": f"c{i}",
        }
        for i in range(4)
    ]
    data = write_jsonl(tmp_path / "meta.jsonl", rows)
    result = cli.run("meta-eval", "--data", str(data), "--grader", f"hf:{checkpoint}", "--json", check=True).json()
    overall = result["agreement"]["overall"]
    assert result["grader"] == f"hf:{checkpoint}" and overall["n_rows"] == 4
    calibration = overall["calibration"]  # logprob verdicts (auto for in-process graders) give calibration
    assert 0.0 <= calibration["ece"] <= 1.0 and sum(b["n"] for b in calibration["reliability"]) == 4
