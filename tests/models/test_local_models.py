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


def save_tiny_checkpoint(directory, seed: int):
    """A tiny random Llama with a byte-level tokenizer and a chat template, built here (no hub)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<|im_start|>", "<|im_end|>"]
    vocab = {token: i for i, token in enumerate(specials + sorted(pre_tokenizers.ByteLevel.alphabet()))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", bos_token="<|im_start|>", eos_token="<|im_end|>"
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_identity_follows_the_weights_dtype_and_device(tmp_path):
    from medops.errors import UserError
    from medops.models.cache import request_key

    checkpoint = save_tiny_checkpoint(tmp_path / "ckpt", seed=1)
    spec = parse_model_spec(f"hf:{checkpoint},device=cpu")
    first = LocalChatModel(spec, role="model").identity()
    assert first["device"] == "cpu" and first["dtype"] == "float32" and len(first["weights"]) == 64
    assert LocalChatModel(spec, role="model").identity() == first  # unchanged files: the cache still answers

    save_tiny_checkpoint(checkpoint, seed=2)  # retrained into the same directory
    retrained = LocalChatModel(spec, role="model").identity()
    assert retrained["weights"] != first["weights"] and retrained["model"] == first["model"]
    messages, params = PROMPTS[0], SamplingParams(max_tokens=8)
    assert request_key(retrained, messages, params) != request_key(first, messages, params)

    half = LocalChatModel(parse_model_spec(f"hf:{checkpoint},device=cpu,dtype=bfloat16"), role="model").identity()
    assert half["dtype"] == "bfloat16" and half["weights"] == retrained["weights"]
    assert request_key(half, messages, params) != request_key(retrained, messages, params)
    with pytest.raises(UserError, match="dtype 'bf16' is not a torch dtype"):
        LocalChatModel(parse_model_spec(f"hf:{checkpoint},dtype=bf16"), role="model")


def test_fingerprint_samples_each_file_instead_of_reading_it_whole(tmp_path):
    """Name, size, mtime and the first and last MiB: a many-GB checkpoint costs ~2 MiB a file."""
    from medops.models.local_hf import checkpoint_fingerprint

    shard = tmp_path / "model.safetensors"
    shard.write_bytes(bytes(3 << 20))
    (tmp_path / "config.json").write_text("{}")
    base = checkpoint_fingerprint(tmp_path)
    stat = shard.stat()

    def rewrite(offset: int, *, keep_mtime: bool) -> str:
        with shard.open("r+b") as handle:
            handle.seek(offset)
            handle.write(b"\x01")
        if keep_mtime:
            os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return checkpoint_fingerprint(tmp_path)

    assert rewrite(3 << 19, keep_mtime=True) == base  # the middle is never read...
    tail = rewrite((3 << 20) - 10, keep_mtime=True)
    assert tail != base  # ...the last MiB is...
    head = rewrite(10, keep_mtime=True)
    assert head != tail  # ...and so is the first
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # a re-save always shows in the mtime
    assert checkpoint_fingerprint(tmp_path) != head


def test_a_retrained_checkpoint_is_not_answered_from_the_cache(cli, server, tmp_path):
    """End to end: the same run again is answered from the cache; after retraining into the
    same directory the model is asked again."""
    checkpoint = save_tiny_checkpoint(tmp_path / "ckpt", seed=1)
    data = write_jsonl(tmp_path / "d.jsonl", [example("a", [("Advises rest {met}", 5, ["axis:completeness"])])])
    args = [
        "eval",
        "healthbench",
        "--data",
        str(data),
        "--model",
        f"hf:{checkpoint}",
        "--model-max-tokens",
        "4",
        "--grader",
        "openai:fake-grader",
        "--grader-base-url",
        server.base_url,
        "--json",
    ]

    def model_calls() -> int:
        return cli.run(*args, check=True, timeout=300).json()["usage"]["model"]["calls"]

    assert model_calls() == 1
    assert model_calls() == 0  # same weights: from the cache
    save_tiny_checkpoint(checkpoint, seed=2)
    assert model_calls() == 1  # retrained: asked again, not answered with the old checkpoint's text


def test_a_hub_id_is_identified_by_its_commit(cli, tmp_path):
    """hf:<hub id> resolves to the cached commit (offline here), and loads that commit."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--medops--tiny"
    save_tiny_checkpoint(repo / "snapshots" / commit, seed=1)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = {**cli.env, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    script = (
        "import asyncio, json\n"
        "from medops.models.base import SamplingParams\n"
        "from medops.models.local_hf import LocalChatModel\n"
        "from medops.models.spec import parse_model_spec\n"
        "m = LocalChatModel(parse_model_spec('hf:medops/tiny'), role='model')\n"
        "c = asyncio.run(m.complete([{'role': 'user', 'content': 'hi'}], SamplingParams(max_tokens=2)))\n"
        "print(json.dumps([m.identity()['weights'], c.ok]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f'["hub revision {commit}", true]'
    missing = cli.run("eval", "healthbench", "--model", "hf:medops/absent", "--data", "demo", env=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "hf:medops/absent': not a directory, and the Hugging Face hub cannot resolve it" in missing.stderr
