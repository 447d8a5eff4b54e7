"""``--preset simple-evals`` against an independent re-implementation of OpenAI's reference.

The ``reference_*`` functions below restate what simple-evals does (healthbench_eval.py,
healthbench_meta_eval.py, sampler/chat_completion_sampler.py at ee3b031) without any medops
code: every request medops sends to the loopback server must equal the request the
reference would send, system turns, prompts, temperature and max tokens included.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from conftest import write_jsonl
from medops.testing.fake_openai import FakeOpenAIServer

TEMPLATE_FILE = Path(__file__).resolve().parents[1] / "data" / "simple_evals" / "healthbench_grader_template.txt"
GRADER_TEMPLATE = TEMPLATE_FILE.read_text("utf-8").strip()  # the reference strips its literal
OPENAI_SYSTEM_MESSAGE_API = "You are a helpful assistant."
GROUPS = ("Group 1", "Group 2", "Group 3")  # PHYSICIAN_COMPLETION_MODES, in the reference's order


# The reference, restated -------------------------------------------------------------------
def reference_request(model: str, message_list: list[dict]) -> dict:
    """ChatCompletionSampler(system_message=OPENAI_SYSTEM_MESSAGE_API, max_tokens=2048) at its
    default temperature 0.5: the system message is prepended to whatever is sent."""
    message_list = [{"role": "system", "content": OPENAI_SYSTEM_MESSAGE_API}, *message_list]
    return {"model": model, "messages": message_list, "temperature": 0.5, "max_tokens": 2048}


def reference_grader_requests(prompt: list[dict], response_text: str, rubric_items: list[str]) -> list[dict]:
    """HealthBenchEval.grade_sample / HealthBenchMetaEval: one user turn per rubric item."""
    convo_with_response = [*prompt, dict(content=response_text, role="assistant")]
    convo_str = "\n\n".join([f"{m['role']}: {m['content']}" for m in convo_with_response])
    requests = []
    for item in rubric_items:
        grader_prompt = GRADER_TEMPLATE.replace("<<conversation>>", convo_str).replace("<<rubric_item>>", item)
        requests.append(reference_request("fake-grader", [dict(content=grader_prompt, role="user")]))
    return requests


def rubric_item_str(rubric: dict) -> str:
    return f"[{rubric['points']}] {rubric['criterion']}"  # RubricItem.__str__


def fake_reply(messages: list[dict]) -> str:
    """What the loopback server answers the model under test (the server's rule, not medops's)."""
    return FakeOpenAIServer._model_reply("\n".join(str(m.get("content", "")) for m in messages))


def sent(server, model: str) -> list[str]:
    """The request bodies medops sent to ``model``, canonical and sorted (order is concurrency's)."""
    return sorted(
        json.dumps({"model": c.model, "messages": c.messages, **c.params}, sort_keys=True, ensure_ascii=False)
        for c in server.server.log
        if c.model == model
    )


def canonical(requests: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in requests)


def load_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").split("\n") if line]  # not splitlines: U+2028


# Data --------------------------------------------------------------------------------------
def tricky_rows() -> list[dict]:
    return [
        {
            "prompt": [
                {"role": "user", "content": "Fever 39C\u2028since today. 아이가 열이 나요."},
                {"role": "assistant", "content": "How old is your child? <<rubric_item>> stays? no."},
                {"role": "user", "content": "Four.\n\nShe is drinking."},
            ],
            "prompt_id": "multi-turn",
            "example_tags": ["theme:global_health"],
            "rubrics": [
                {"criterion": "Asks about hydration {met}", "points": 5, "tags": ["axis:completeness"]},
                {"criterion": "Gives an adult dose {unmet}", "points": -2.5, "tags": ["axis:accuracy"]},
                {"criterion": "Mentions <<conversation>> literally {met}", "points": 2.0, "tags": []},
            ],
            "ideal_completions_data": {
                "ideal_completion": "Keep her drinking; paracetamol by weight; see a doctor if it lasts.",
                "ideal_completions_group": "Group 1",
                "ideal_completions_ref_completions": None,
            },
        },
        {
            # the reference prepends its system message even when the prompt has one
            "prompt": [
                {"role": "system", "content": "You are a triage nurse."},
                {"role": "user", "content": "Chest pain for an hour."},
            ],
            "prompt_id": "own-system",
            "example_tags": ["theme:emergency_referrals"],
            "rubrics": [{"criterion": "Refers to emergency care {met}", "points": 10, "tags": []}],
            "ideal_completions_data": {
                "ideal_completion": "Call emergency services now.",
                "ideal_completions_group": "Group 2",
                "ideal_completions_ref_completions": ["a", "b", "c", "d"],
            },
        },
    ]


def preset_args(cli, server, data: Path, *extra: str) -> list[str]:
    return [*cli.eval_args(server, data, "--preset", "simple-evals", "--grader-template", str(TEMPLATE_FILE)), *extra]


# Tests -------------------------------------------------------------------------------------
def test_preset_requests_are_the_reference_requests(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "set.jsonl", tricky_rows())
    summary = cli.run(*preset_args(cli, server, data), "--json", check=True).json()
    assert summary["n_examples"] == 2 and summary["n_ungraded_criteria"] == 0

    model_requests, grader_requests = [], []
    for row in load_rows(data):  # rubric points as JSON reads them: 5, -2.5, 2.0
        model_request = reference_request("fake-model", row["prompt"])
        model_requests.append(model_request)
        # the grader sees actual_queried_message_list: the system turn the sampler prepended included
        grader_requests += reference_grader_requests(
            model_request["messages"],
            fake_reply(model_request["messages"]),
            [rubric_item_str(r) for r in row["rubrics"]],
        )
    assert sent(server, "fake-model") == canonical(model_requests)
    assert sent(server, "fake-grader") == canonical(grader_requests)
    # spelled out once, so a failure here reads plainly
    first = next(
        c.messages for c in server.server.log if c.model == "fake-grader" and "Four." in c.messages[1]["content"]
    )
    assert first[0] == {"role": "system", "content": "You are a helpful assistant."}
    assert "# Conversation\nsystem: You are a helpful assistant.\n\nuser: Fever 39C\u2028since" in first[1]["content"]
    assert first[1]["content"].startswith("Your job is to look at a conversation")


def test_preset_ideal_completions_are_shown_without_a_system_turn(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "set.jsonl", tricky_rows())
    summary = cli.run(*preset_args(cli, server, data, "--completions", "ideal"), "--json", check=True).json()
    assert summary["n_examples"] == 2
    assert sent(server, "fake-model") == []
    expected = []
    for row in load_rows(data):  # physician mode: actual_queried_prompt_messages = prompt_messages
        ideal = row["ideal_completions_data"]["ideal_completion"]
        expected += reference_grader_requests(row["prompt"], ideal, [rubric_item_str(r) for r in row["rubrics"]])
    assert sent(server, "fake-grader") == canonical(expected)


def grouped_rows() -> list[dict]:
    """Rows of three ideal-completion groups interleaved, and rows without ideal completions."""
    sizes = {"Group 1": 7, "Group 2": 5, "Group 3": 2}
    order = [g for i in range(7) for g in GROUPS if i < sizes[g]]
    rows = []
    for i, group in enumerate(order):
        rows.append(
            {
                "prompt": [{"role": "user", "content": f"Question {i} about a headache."}],
                "prompt_id": f"p{i}",
                "example_tags": [],
                "rubrics": [
                    {"criterion": f"Advises rest {{met}} ({i})", "points": i + 1, "tags": []},
                    {"criterion": "Asks about duration {unmet}", "points": 3, "tags": []},
                    {
                        "criterion": "Recommends opioids {met}" if i % 3 == 0 else "Is rude {unmet}",
                        "points": -2,
                        "tags": [],
                    },
                ],
                "ideal_completions_data": {
                    "ideal_completion": f"Ideal answer {i}.",
                    "ideal_completions_group": group,
                    "ideal_completions_ref_completions": None,
                },
            }
        )
        if i % 4 == 0:
            rows.append({**rows[-1], "prompt_id": f"none{i}", "ideal_completions_data": None})
    return rows


def reference_score(row: dict) -> float:
    """calculate_score with the scripted verdicts ({met} / {unmet})."""
    possible = sum(r["points"] for r in row["rubrics"] if r["points"] > 0)
    return sum(r["points"] for r in row["rubrics"] if "{met}" in r["criterion"]) / possible


@pytest.mark.parametrize("limit", [3, None])
def test_ideal_completions_are_picked_and_scored_per_group_as_the_reference_does(cli, server, tmp_path, limit):
    data = write_jsonl(tmp_path / "set.jsonl", grouped_rows())
    rows = load_rows(data)
    extra = ["--completions", "ideal", *(["--limit", str(limit)] if limit else [])]
    summary = cli.run(*preset_args(cli, server, data, *extra), "--json", check=True).json()

    # HealthBenchEval(physician_completions_mode=group, num_examples=limit), one per group
    picked: dict[str, list[dict]] = {}
    for group in GROUPS:
        rng = random.Random(0)
        matching = [
            r
            for r in rows
            if r["ideal_completions_data"] is not None
            and r["ideal_completions_data"]["ideal_completions_group"] == group
        ]
        if limit is not None and limit < len(matching):
            matching = rng.sample(matching, limit)
        picked[group] = matching
    exported = cli.run("export", str(summary["run_id"]), check=True).stdout.splitlines()
    assert sorted({json.loads(line)["prompt_id"] for line in exported}) == sorted(
        r["prompt_id"] for group in GROUPS for r in picked[group]
    )
    assert summary["n_examples"] == sum(len(p) for p in picked.values())
    for group in GROUPS:
        scores = [reference_score(r) for r in picked[group]]
        metric = summary["metrics"][f"ideal_completions_group:{group}"]
        assert metric["n_samples"] == len(scores)
        assert metric["mean"] == pytest.approx(float(np.clip(np.mean(scores), 0, 1)))
    every = [reference_score(r) for group in GROUPS for r in picked[group]]
    assert summary["score"] == pytest.approx(float(np.clip(np.mean(every), 0, 1)))


def test_explicit_options_override_the_preset(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "set.jsonl", tricky_rows()[1:])
    result = cli.run(
        *cli.eval_args(
            server,
            data,
            "--preset",
            "simple-evals",
            "--model-system-message",
            "Be brief.",
            "--model-max-tokens",
            "100",
            "--grader-temperature",
            "0",
            "--grader-verdict",
            "logprob",
        ),
        "--json",
        check=True,
    )
    assert "--grader-template" in result.stderr  # without it, medops's own template is used: said so
    model = next(c for c in server.server.log if c.model == "fake-model")
    assert model.messages[0] == {"role": "system", "content": "Be brief."}
    assert model.params == {"model": "fake-model", "temperature": 0.5, "max_tokens": 100}
    grader = next(c for c in server.server.log if c.model == "fake-grader")
    assert grader.messages[0] == {"role": "system", "content": "You are a helpful assistant."}
    assert grader.params == {
        "model": "fake-grader",
        "temperature": 0.0,
        "max_tokens": 2048,
        "logprobs": True,
        "top_logprobs": 20,
    }
    config = cli.run("runs", "show", str(result.json()["run_id"]), "--json", check=True).json()["config"]
    assert config["preset"] == "simple-evals" and config["grader_verdict"] == "logprob"
    assert config["grader_system_message"] == "You are a helpful assistant." and config["model_temperature"] == 0.5


def test_without_the_preset_nothing_changes(cli, server, tmp_path):
    data = write_jsonl(tmp_path / "set.jsonl", tricky_rows()[1:])
    result = cli.run(*cli.eval_args(server, data), "--json", check=True)
    assert "--grader-template" not in result.stderr
    model = next(c for c in server.server.log if c.model == "fake-model")
    assert model.messages == tricky_rows()[1]["prompt"] and model.params == {"model": "fake-model"}
    grader = next(c for c in server.server.log if c.model == "fake-grader")
    assert [m["role"] for m in grader.messages] == ["user"]
    assert grader.params == {"model": "fake-grader", "temperature": 0.0, "max_tokens": 2048}
    config = cli.run("runs", "show", str(result.json()["run_id"]), "--json", check=True).json()["config"]
    assert config["preset"] is None


def test_meta_eval_preset_requests_are_the_reference_requests(cli, server, tmp_path):
    prompt = [{"role": "user", "content": "My child has a fever.\nShe is 2."}]
    rows = [
        {
            "prompt": prompt,
            "completion": "Give fluids.",
            "rubric": rubric,
            "category": "cluster:a",
            "binary_labels": labels,
            "anonymized_physician_ids": [f"P{i}" for i in range(len(labels))],
            "prompt_id": "p1",
            "completion_id": completion_id,
        }
        for rubric, labels, completion_id in [
            ("Advises fluids {met}", [True, False], "c1"),
            ("Gives an adult dose {unmet}", [False, False], "c1"),
            ("Asks about age {met}", [True], "c2"),
        ]
    ]
    rows[2]["completion"] = "See a doctor."
    data = write_jsonl(tmp_path / "meta.jsonl", rows)
    args = ["meta-eval", "--data", str(data), "--grader", "openai:fake-grader", "--grader-base-url", server.base_url]
    result = cli.run(*args, "--preset", "simple-evals", "--grader-template", str(TEMPLATE_FILE), "--json", check=True)
    assert result.json()["n_rows"] == 3 and result.json()["n_ungraded"] == 0
    expected = []
    for row in load_rows(data):
        # HealthBenchMetaEval.__call__: the bare rubric; the grader is the sampler under test
        expected += reference_grader_requests(row["prompt"], row["completion"], [row["rubric"]])
    assert sent(server, "fake-grader") == canonical(expected)
