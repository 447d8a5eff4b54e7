"""The rubric reward: a judge (a served grader on loopback) scores completions against each row's
rubric with HealthBench's formula; failed judgements are dropped, never 0; GRPO on CPU with it."""

from __future__ import annotations

import json
import sqlite3

import pytest

from conftest import write_jsonl
from medops.datasets.healthbench import RubricItem
from medops.models.base import RetryPolicy
from medops.rewards.rubric import RubricReward, rubric_judge, rubric_score
from medops.testing.fake_openai import ServerThread

RUBRIC = [
    {"criterion": "Advises gargling {met-if:saline}", "points": 6, "tags": ["axis:completeness"]},
    {"criterion": "Mentions fruit {met-if:kiwi}", "points": 4, "tags": ["axis:completeness"]},
    {"criterion": "Recommends a dangerous remedy {met-if:arsenic}", "points": -5, "tags": ["axis:accuracy"]},
]
PROMPT = [{"role": "user", "content": "I have a cold. What should I do?"}]


def _reply(text):
    return [{"role": "assistant", "content": text}]


def test_the_score_is_healthbenchs_clipped_and_none_when_ungraded():
    items = [RubricItem.model_validate(r) for r in RUBRIC]
    assert rubric_score(items, [True, False, False]) == pytest.approx(0.6)
    assert rubric_score(items, [True, True, True]) == pytest.approx(0.5)  # (6 + 4 - 5) / 10
    assert rubric_score(items, [False, False, True]) == 0.0  # -0.5 clipped
    assert rubric_score(items, [True, None, False]) is None


def test_completions_are_judged_cached_and_a_failed_judgement_is_dropped():
    with ServerThread() as server:
        quick = RetryPolicy(max_tries=2, base_delay_s=0.01)
        reward = RubricReward(rubric_judge("openai:fake-grader", server.base_url, retry=quick))
        try:
            failing = [*RUBRIC, {"criterion": "Is kind {grader-500:all}", "points": 1, "tags": []}]
            scores = reward(
                prompts=[PROMPT] * 3,
                completions=[_reply("saline and kiwi"), _reply("saline, then arsenic"), _reply("saline")],
                rubrics=[RUBRIC, RUBRIC, failing],
            )
            assert scores[:2] == [pytest.approx(1.0), pytest.approx(0.1)]
            assert scores[2] is None  # never 0: TRL leaves it out of the group's baseline
            first = reward.stats.take()
            assert (first["scored"], first["dropped"], first["failed_calls"]) == (2, 1, 1)
            assert first["judge_calls"] == 10
            # the same completion again: every criterion answered from the cache, no call sent
            asked_before = len(server.server.log)
            again = reward(prompts=[PROMPT], completions=[_reply("saline and kiwi")], rubrics=[RUBRIC])
            assert again == [pytest.approx(1.0)] and len(server.server.log) == asked_before
            assert reward.stats.take()["cached_calls"] == 3
        finally:
            reward.close()


def test_train_config_needs_a_grader_for_the_rubric_reward(cli, tmp_path):
    data = write_jsonl(tmp_path / "train.jsonl", [{"prompt": PROMPT, "prompt_id": "a", "rubrics": RUBRIC}])
    result = cli.run(
        "rl", "train", "--train-data", str(data), "--output-dir", str(tmp_path / "o"), "--reward", "rubric"
    )
    assert result.returncode == 2 and "reward rubric needs grader" in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_two_grpo_steps_with_the_rubric_reward_on_cpu(cli, tmp_path):
    """The packaged SmolLM2 (LoRA), 2 GRPO steps, rewarded by a served grader on loopback; the
    reward's statistics (mean, std, judge calls, drops) are logged per step into the store."""
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    rows = [
        {
            "prompt": [{"role": "user", "content": f"Case {i}: I have a cold. What should I do?"}],
            "prompt_id": f"p{i}",
            "rubrics": RUBRIC,
            "example_tags": ["theme:global_health"],
        }
        for i in range(4)
    ]
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    with ServerThread() as server:
        result = cli.run(
            "rl",
            "train",
            "--train-data",
            str(data),
            "--output-dir",
            str(tmp_path / "ckpt"),
            "--reward",
            "rubric",
            "--grader",
            "openai:fake-grader",
            "--grader-base-url",
            server.base_url,
            "--num-generations",
            "2",
            "--per-device-train-batch-size",
            "2",
            "--max-completion-length",
            "8",
            "--max-steps",
            "2",
            "--name",
            "rubric-smoke",
            check=True,
            timeout=900,  # ~30 s on a quiet 2-core machine; much longer when it is shared
        )
        graded = [c for c in server.server.log if "grader" in c.model]
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed"
    with sqlite3.connect(cli.db) as connection:
        stored, grader = connection.execute("select summary, grader from runs where name = 'rubric-smoke'").fetchone()
    steps = json.loads(stored)["steps"]
    assert grader == "medops.rewards.rubric:openai:fake-grader" and [s["step"] for s in steps] == [1, 2]
    assert all({"rewards/rubric/mean", "rewards/rubric/std", "reward", "rubric/judge_calls"} <= set(s) for s in steps)
    assert all(0.0 <= s["rewards/rubric/mean"] <= 1.0 for s in steps)
    # two completions x three criteria per step, each judged (or answered from the cache)
    assert sum(s["rubric/judge_calls"] + s["rubric/cached_calls"] for s in steps) == 2 * 2 * 3
    assert len(graded) == sum(s["rubric/judge_calls"] for s in steps) and not any(s["rubric/dropped"] for s in steps)
