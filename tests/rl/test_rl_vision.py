"""Image items as RL training data: `rl prepare` writes TRL's vision GRPO layout (read back here
with datasets and TRL's own prompt preparation), rows take verl's layout, and `rl train` refuses
what it cannot train in one line."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from conftest import write_jsonl
from medops.content import digests
from medops.datasets.mcqa import load_mcqa
from medops.errors import UserError
from medops.prompts.training_rows import training_row


def png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(out, format="PNG")
    return out.getvalue()


def image_bank(folder: Path) -> Path:
    (folder / "red.png").write_bytes(png("red"))
    (folder / "blue.png").write_bytes(png("blue"))
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    options = {"A": "benign", "B": "malignant"}
    rows = [
        {"id": "red", "question": "What is the lesion?", **options, "answer": "B", "images": ["red.png"]},
        {"id": "blue", "question": "What is the lesion?", **options, "answer": "A", "images": ["blue.png"]},
        {"id": "again", "question": "What is the lesion?", **options, "answer": "B", "images": ["red.png"]},
        {"id": "two", "question": "Compare.", **options, "answer": "A", "images": ["ct.dcm", "red.png"]},
        {"id": "text", "question": "No picture?", **options, "answer": "A"},
    ]
    return write_jsonl(folder / "bank.jsonl", rows)


def prepared(cli, tmp_path: Path) -> tuple[Path, list[dict]]:
    out = tmp_path / "rl"
    args = ["rl", "prepare", "--task", "generic", "--data", str(image_bank(tmp_path)), "--heldout", "0", "-o", str(out)]
    cli.run(*args, check=True)
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    return out, rows


def test_prepare_writes_trls_vision_layout_each_image_once(cli, tmp_path):
    out, rows = prepared(cli, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    # the same question over another picture is another item; the same question and picture is not
    assert manifest["dropped"]["repeated_in_sources"] == 1
    assert sorted(r["id"] for r in rows) == ["blue", "red", "text", "two"]
    assert manifest["images"] == {"layout": "trl-vision", "folder": "images", "files": 3, "items_with_images": 3}
    files = sorted((out / "images").iterdir())
    assert len(files) == 3
    for path in files:  # named by the digest of the bytes they hold
        assert path.stem == hashlib.sha256(path.read_bytes()).hexdigest()
    by_id = {r["id"]: r for r in rows}
    assert (out / by_id["red"]["images"][0]).read_bytes() == png("red")
    ct, red = (out / p for p in by_id["two"]["images"])
    assert Image.open(ct).format == "PNG" and red.read_bytes() == png("red")  # the CT rendered, tags dropped
    assert by_id["text"]["images"] == []
    for row in rows:  # every content as parts, one placeholder per image, in order
        user = row["prompt"][-1]["content"]
        assert all(isinstance(m["content"], list) for m in row["prompt"])
        assert [p["type"] for p in user] == ["text", *["image"] * len(row["images"])]
        assert "\\boxed{X}" in user[0]["text"] and row["answer"] in "AB"
    # the rows read back as an exam with the same images (what `rl difficulty` and `rl evaluate` ask)
    source = {i.id: digests(list(i.images)) for i in load_mcqa("generic", tmp_path / "bank.jsonl").items}
    again = {i.id: digests(list(i.images)) for i in load_mcqa("generic", out / "train.jsonl").items}
    assert again == {k: v for k, v in source.items() if k != "again"}


def test_trls_prompt_preparation_reads_the_prepared_rows(cli, tmp_path):
    datasets = pytest.importorskip("datasets")
    data_utils = pytest.importorskip("trl.data_utils")
    out, _ = prepared(cli, tmp_path)
    dataset = datasets.load_dataset("json", data_files=str(out / "train.jsonl"), split="train")
    dataset = dataset.map(lambda r: {"images": [str(out / p) for p in r["images"]]})
    dataset = dataset.cast_column("images", datasets.Sequence(datasets.Image()))
    for row in dataset:
        messages = data_utils.prepare_multimodal_messages(row["prompt"], images=row["images"])
        filled = [p["image"] for m in messages for p in m["content"] if p["type"] == "image"]
        assert len(filled) == len(row["images"]) and all(isinstance(i, Image.Image) for i in filled)
        if row["id"] == "red":
            assert filled[0].convert("RGB").getpixel((0, 0)) == (255, 0, 0)


def test_verl_rows_mark_each_image_in_the_prompt_and_carry_the_bytes(tmp_path):
    exam = load_mcqa("generic", image_bank(tmp_path))
    kept: list[bytes] = []

    def image_ref(media_type: str, data: bytes) -> dict:
        kept.append(data)
        return {"bytes": data, "path": None}  # what datasets' Image feature stores in parquet

    two = next(item for item in exam.items if item.id == "two")
    row = training_row(two, "generic", "cot", "en", fmt="verl", index=3, image_ref=image_ref)
    user = row["prompt"][-1]["content"]
    assert isinstance(user, str) and user.count("<image>") == 2 and user.endswith("<image>\n<image>")
    assert [i["bytes"] for i in row["images"]] == kept and kept[1] == png("red")
    assert row["reward_model"] == {"style": "rule", "ground_truth": "A"} and row["extra_info"]["index"] == 3
    text = next(item for item in exam.items if item.id == "text")
    assert training_row(text, "generic", "cot", "en", fmt="verl", image_ref=image_ref)["images"] == []
    with pytest.raises(UserError, match="item two has images, which --format verl rows do not carry yet"):
        training_row(two, "generic", "cot", "en", fmt="verl")
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    pq.write_table(pa.Table.from_pylist([row]), tmp_path / "rows.parquet")
    back = pq.read_table(tmp_path / "rows.parquet").to_pylist()[0]
    assert back["images"][1]["bytes"] == png("red")


@pytest.mark.slow
def test_rl_train_refuses_image_rows_and_vision_checkpoints_in_one_line(cli, tmp_path):
    pytest.importorskip("trl")
    out, _ = prepared(cli, tmp_path)
    refused = cli.run("rl", "train", "--model", "local:smollm2", "--train-data", str(out / "train.jsonl"),
                      "--output-dir", str(tmp_path / "run"), "--max-steps", "1")  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    line = refused.stderr.strip()
    assert "\n" not in line and "3 row(s) have images" in line and "text models only" in line
    assert cli.run("runs", "list", "--json", check=True).json() == []

    text_rows = tmp_path / "text.jsonl"
    text_rows.write_text(
        "".join(line + "\n" for line in (out / "train.jsonl").read_text().splitlines() if '"images": []' in line)
    )
    vision = tmp_path / "vlm"
    vision.mkdir()
    (vision / "config.json").write_text(json.dumps({"model_type": "idefics3"}))
    refused = cli.run("rl", "train", "--model", f"hf:{vision}", "--train-data", str(text_rows),
                      "--output-dir", str(tmp_path / "run"), "--max-steps", "1")  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    line = refused.stderr.strip()
    assert "\n" not in line and "vision-language checkpoint" in line and "text models only" in line
