"""In-process vision-language models (``hf:<dir>`` of an image-text-to-text checkpoint) on a tiny
Idefics3 (SmolVLM's architecture) with random weights, built here from a config with the packaged
SmolLM2 tokenizer: nothing is downloaded. Random weights answer nonsense, so the tests assert what
does not depend on the answer: the image reaches the model, batching changes nothing, a run
records an answer for every item and a second run answers from the store's cache, by image content."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("transformers")

from PIL import Image
from pydicom.data import get_testdata_file

from conftest import write_jsonl
from medops.models.base import RetryPolicy, SamplingParams
from medops.models.spec import create_model, parse_model_spec
from medops.testing.tiny_vlm import build_tiny_vlm


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory, model_cache) -> Path:
    os.environ["MEDOPS_MODEL_CACHE"] = str(model_cache)
    from medops.models.local_hf import smollm2_checkpoint

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny-vlm"), smollm2_checkpoint())


@pytest.fixture(scope="module")
def vlm(tiny_vlm):
    model = create_model(parse_model_spec(f"hf:{tiny_vlm}"), role="model", concurrency=4, retry=RetryPolicy())
    yield model
    asyncio.run(model.aclose())


def png(colour: str, size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def asked(image: bytes | None, question: str = "What is shown?") -> list[dict]:
    parts = [{"type": "text", "text": question}]
    if image is not None:
        parts.append(
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(image).decode()}}
        )
    return [{"role": "system", "content": "Answer with a letter."}, {"role": "user", "content": parts}]


LETTERS = SamplingParams(assistant_prefix="Answer:", score_choices=(" A", " B", " C"))
WORDS = SamplingParams(assistant_prefix="Answer:", score_choices=(" benign", " malignant tumour"))


def run(coroutines):
    async def gather():
        return await asyncio.gather(*coroutines)

    return asyncio.run(gather())


def test_a_vision_checkpoint_takes_images_and_a_text_checkpoint_does_not(tiny_vlm, model_cache):
    from medops.models.local_hf import smollm2_checkpoint

    assert parse_model_spec(f"hf:{tiny_vlm}").capabilities.images
    assert not parse_model_spec(f"hf:{smollm2_checkpoint()}").capabilities.images
    assert not parse_model_spec("local:smollm2").capabilities.images


def test_the_image_reaches_the_vision_tower(vlm):
    seen = []
    run([vlm.complete(asked(png("red")), LETTERS)])  # loads the model
    _, model = vlm._load()
    hook = model.model.vision_model.register_forward_pre_hook(
        lambda _, args, kwargs: seen.append(kwargs or args), with_kwargs=True
    )
    try:
        run([vlm.complete(asked(png("blue"), "Two?"), LETTERS), vlm.complete(asked(png("green"), "Two?"), LETTERS)])
    finally:
        hook.remove()
    assert len(seen) == 1  # both requests in one batch, through the vision tower once
    pixels = seen[0].get("pixel_values")
    assert tuple(pixels.shape) == (2, 3, 32, 32)  # two images, resized to the tower's 32 px


def test_a_different_image_gives_different_scores_and_the_same_image_the_same(vlm):
    red, red_again, blue = run([vlm.complete(asked(png(c)), WORDS) for c in ("red", "red", "blue")])
    assert red.ok and red.finish_reason == "scored"
    assert red.extra["choice_logprobs"] == red_again.extra["choice_logprobs"]
    assert red.extra["choice_logprobs"] != blue.extra["choice_logprobs"]
    assert all(v < 0 for v in red.extra["choice_logprobs"].values())
    text_only = run([vlm.complete(asked(None), WORDS)])[0]
    assert text_only.prompt_tokens < red.prompt_tokens  # the image's tokens count as prompt tokens


@pytest.mark.parametrize("params", [LETTERS, WORDS], ids=["single-token", "multi-token"])
def test_batched_scoring_equals_one_at_a_time(vlm, params):
    conversations = [asked(png("red")), asked(png("blue"), "Another?"), asked(None, "No picture?")]
    before = vlm.batches_run
    batched = run([vlm.complete(c, params) for c in conversations])
    assert vlm.batches_run - before == 2  # the image requests together, the text-only one apart
    single = [run([vlm.complete(c, params)])[0] for c in conversations]
    for b, s in zip(batched, single, strict=True):
        assert b.extra["choice_logprobs"].keys() == s.extra["choice_logprobs"].keys()
        for choice, value in b.extra["choice_logprobs"].items():
            assert value == pytest.approx(s.extra["choice_logprobs"][choice], abs=1e-4)


def test_batched_generation_equals_one_at_a_time(vlm):
    params = SamplingParams(max_tokens=6)
    conversations = [asked(png("red")), asked(png("blue"), "Another one?")]
    batched = run([vlm.complete(c, params) for c in conversations])
    single = [run([vlm.complete(c, params)])[0] for c in conversations]
    assert [c.text for c in batched] == [c.text for c in single]
    assert all(c.ok and c.completion_tokens > 0 and c.finish_reason in {"stop", "length"} for c in batched)


def test_a_part_it_cannot_read_is_refused_not_dropped(vlm):
    from medops.errors import UserError

    remote = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "?"},
                {"type": "image_url", "image_url": {"url": "https://example.org/x.png"}},
            ],
        }
    ]
    with pytest.raises(UserError, match="data: URIs"):
        run([vlm.complete(remote, LETTERS)])


def image_exam(folder: Path, rash_colour: str = "red") -> Path:
    (folder / "rash.png").write_bytes(png(rash_colour))
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ct.dcm")  # a real CT slice, rendered to PNG
    options = {"A": "benign", "B": "malignant", "C": "artefact"}
    rows = [
        {"id": "rash", "question": "What is it?", **options, "answer": "B", "images": ["rash.png"]},
        {"id": "ct", "question": "This CT?", **options, "answer": "A", "images": ["ct.dcm"]},
        {"id": "t1", "question": "Text one?", **options, "answer": "A"},
    ]
    return write_jsonl(folder / "exam.jsonl", rows)


def exam(cli, data: Path, model: Path, *extra: str) -> dict:
    args = ["eval", "mcqa", "--task", "generic", "--data", str(data), "--model", f"hf:{model}", "--json", *extra]
    return cli.run(*args, check=True).json()


@pytest.mark.slow
def test_an_image_exam_runs_on_the_in_process_vlm_and_a_second_run_answers_from_the_store(cli, tiny_vlm, tmp_path):
    data = image_exam(tmp_path)
    first = exam(cli, data, tiny_vlm, "--style", "cot", "--max-tokens", "8", "--name", "first")
    assert first["status"] == "completed" and first["n_examples"] == 3 and first["skipped_items"] == {}
    assert first["n_failed_calls"] == 0 and first["usage"]["model"]["calls"] == 3
    assert first["metrics"]["modality:image"]["n_samples"] == 2
    shown = cli.run("runs", "show", "first", "--json", check=True).json()
    assert shown["n_examples"] == 3
    import sqlite3

    db = sqlite3.connect(cli.db)
    assert db.execute("SELECT count(*) FROM answers").fetchone()[0] == 3
    assert db.execute("SELECT count(*) FROM blobs").fetchone()[0] == 2  # the PNG and the rendered CT

    again = exam(cli, data, tiny_vlm, "--style", "cot", "--max-tokens", "8", "--name", "again")
    assert again["usage"]["model"]["cached"] == 3 and again["usage"]["model"]["calls"] == 0
    # the cache knows images by content: another picture under the same file name is asked again
    other = image_exam(tmp_path, rash_colour="blue")
    changed = exam(cli, other, tiny_vlm, "--style", "cot", "--max-tokens", "8", "--name", "changed")
    assert changed["usage"]["model"]["cached"] == 2 and changed["usage"]["model"]["calls"] == 1


@pytest.mark.slow
def test_an_image_exam_is_scored_by_choice_loglikelihood_on_the_vlm(cli, tiny_vlm, tmp_path):
    data = image_exam(tmp_path)
    summary = exam(cli, data, tiny_vlm, "--scoring", "loglikelihood")
    assert summary["status"] == "completed" and summary["n_examples"] == 3 and summary["n_failed_calls"] == 0
    assert summary["n_unparsed"] == 0  # every item answered by its options' log-likelihoods
    rows = [json.loads(line) for line in cli.run("export", str(summary["run_id"]), check=True).stdout.splitlines()]
    assert len(rows) == 3 and [len(r["images"]) for r in rows] == [1, 1, 0]


def test_a_lower_precision_gets_its_pixels_in_that_precision(tiny_vlm):
    spec = parse_model_spec(f"hf:{tiny_vlm},dtype=bfloat16")
    model = create_model(spec, role="model", concurrency=1, retry=RetryPolicy())
    try:
        (scored,) = run([model.complete(asked(png("red")), LETTERS)])
    finally:
        asyncio.run(model.aclose())
    assert scored.ok and set(scored.extra["choice_logprobs"]) == {" A", " B", " C"}
    assert model.identity()["dtype"] == "bfloat16"
