"""An exam whose items carry images, end to end through `medops eval mcqa`: sent as image parts to a
model that takes images, refused on a text-only model, and skipped and counted with --skip-images."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sqlite3
from pathlib import Path

import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from conftest import write_jsonl


def png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (6, 4), colour).save(out, format="PNG")
    return out.getvalue()


def jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "green").save(out, format="JPEG")
    return out.getvalue()


def image_exam(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "rash.png").write_bytes(png("red"))
    (tmp_path / "img" / "fundus.png").write_bytes(png("orange"))
    (tmp_path / "img" / "xray.jpg").write_bytes(jpeg((2048, 1024)))  # resized to 1024x512 on the way
    (tmp_path / "img" / "ct.dcm").write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    options = {"A": "benign", "B": "malignant", "C": "artefact"}
    rows = [
        {"id": "rash", "question": "What is it? {model-answer:B}", **options, "answer": "B",
         "images": ["img/rash.png"]},
        {"id": "two", "question": "Compare. {model-answer:A}", **options, "answer": "A",
         "images": ["img/fundus.png", "img/rash.png"]},
        {"id": "xray", "question": "The film? {model-answer:C}", **options, "answer": "C", "images": ["img/xray.jpg"]},
        {"id": "ct", "question": "This CT? {model-answer:A}", **options, "answer": "B", "images": ["img/ct.dcm"]},
        {"id": "t1", "question": "Text one? {model-answer:A}", **options, "answer": "A"},
        {"id": "t2", "question": "Text two? {model-answer:C}", **options, "answer": "C"},
    ]  # fmt: skip
    return write_jsonl(tmp_path / "exam.jsonl", rows)


def exam_args(data: Path, model: str, *extra: str) -> list[str]:
    return ["eval", "mcqa", "--task", "generic", "--data", str(data), "--model", model, "--style", "cot", *extra]


def sent_images(content) -> list[tuple[str, bytes]]:
    out = []
    for part in content[1:]:
        assert part["type"] == "image_url"
        head, payload = part["image_url"]["url"].split(",", 1)
        out.append((head, base64.b64decode(payload)))
    return out


def test_a_model_that_takes_images_gets_every_image_as_a_part_and_scores_every_item(cli, server, tmp_path):
    data = image_exam(tmp_path)
    args = exam_args(data, "openai:fake-model", "--model-base-url", server.base_url, "--json", "--name", "img")
    result = cli.run(*args, check=True).json()
    assert result["n_examples"] == 6 and result["skipped_items"] == {}
    assert result["score"] == 5 / 6 and result["rules"] == {"boxed": 6}

    questions = ("What is it", "Compare", "The film", "This CT", "Text one", "Text two")
    by_question = {}
    for call in server.server.log:
        content = call.messages[-1]["content"]
        text = content if isinstance(content, str) else content[0]["text"]
        by_question[next(q for q in questions if q in text)] = content
    assert len(server.server.log) == 6
    assert isinstance(by_question["Text one"], str) and isinstance(by_question["Text two"], str)
    first = by_question["What is it"]
    assert first[0]["type"] == "text" and "A. benign\nB. malignant\nC. artefact" in first[0]["text"]
    assert sent_images(first) == [("data:image/png;base64", png("red"))]
    assert sent_images(by_question["Compare"]) == [
        ("data:image/png;base64", png("orange")),
        ("data:image/png;base64", png("red")),
    ]
    ((head, xray),) = sent_images(by_question["The film"])
    assert head == "data:image/jpeg;base64" and Image.open(io.BytesIO(xray)).size == (1024, 512)
    ((head, ct),) = sent_images(by_question["This CT"])
    assert head == "data:image/png;base64" and Image.open(io.BytesIO(ct)).size == (128, 128) and b"DICM" not in ct

    # every image kept once, by digest; items and the cache carry digests, never base64
    db = sqlite3.connect(cli.db)
    stored = {row[0] for row in db.execute("SELECT sha256 FROM blobs")}
    assert stored == {hashlib.sha256(b).hexdigest() for b in (png("red"), png("orange"), xray, ct)}
    assert "base64" not in json.dumps([row[0] for row in db.execute("SELECT content FROM items")])
    assert "base64" not in " ".join(str(r) for r in db.execute("SELECT * FROM call_cache").fetchall())
    # readers rebuild the items from the store: the export names each row's images by digest
    rows = [json.loads(line) for line in cli.run("export", "img", check=True).stdout.splitlines()]
    assert [len(r["images"]) for r in rows] == [1, 2, 1, 1, 0, 0]
    assert cli.run("runs", "show", "img", "--json", check=True).json()["n_examples"] == 6


def test_a_text_only_model_is_refused_naming_the_count_and_skip_images(cli, server, tmp_path):
    data = image_exam(tmp_path)
    result = cli.run(*exam_args(data, "local:smollm2"))
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "local:smollm2" in line and "4 item(s)" in line and "--skip-images" in line
    assert cli.run("runs", "list", "--json", check=True).json() == []


@pytest.mark.slow
def test_skip_images_scores_the_text_items_and_counts_the_rest(cli, tmp_path):
    data = image_exam(tmp_path)
    result = cli.run(*exam_args(data, "local:smollm2", "--skip-images", "--max-tokens", "8", "--json"), check=True)
    summary = result.json()
    assert summary["n_examples"] == 2 and summary["skipped_items"] == {"needs_image": 4}
    assert sum(summary["rules"].values()) == 2 and summary["n_failed_calls"] == 0
    assert summary["dataset"]["n_examples"] == 2 and summary["model"] == "local:smollm2"


def test_training_exports_refuse_image_items_in_one_line(cli, tmp_path):
    data = image_exam(tmp_path)
    out = tmp_path / "rows.jsonl"
    result = cli.run("data", "export", "--task", "generic", "--data", str(data), "--format", "trl", "-o", str(out))
    assert result.returncode == 2 and not out.exists()
    line = result.stderr.strip()
    assert "\n" not in line and "item rash has images" in line and "--format trl" in line


def test_accuracy_is_broken_down_by_modality_in_an_exam_with_images(cli, server, tmp_path):
    data = image_exam(tmp_path)
    args = exam_args(data, "openai:fake-model", "--model-base-url", server.base_url, "--json")
    metrics = cli.run(*args, check=True).json()["metrics"]
    assert metrics["modality:image"]["n_samples"] == 4 and metrics["modality:image"]["mean"] == 3 / 4
    assert metrics["modality:text"]["n_samples"] == 2 and metrics["modality:text"]["mean"] == 1.0
    table = cli.run(*args[:-1], check=True).stdout
    assert "modality:image" in table and "modality:text" in table


def test_a_kmle_sheet_with_its_image_folder_sends_the_folders_images(cli, server, tmp_path):
    five = "① 가\n② 나\n③ 다\n④ 라\n⑤ 마"
    rows = [
        {"class": 1, "Q_no": 1, "Question": "조치는?", "Followings": five, "Answer": 4, "Image": 0},
        {"class": 1, "Q_no": 2, "Question": "CT(사진1)이다.", "Followings": five, "Answer": 2, "Image": 1},
    ]
    sheet = write_jsonl(tmp_path / "2021.jsonl", rows)
    (tmp_path / "2021_images").mkdir()
    (tmp_path / "2021_images" / "1-2-1.png").write_bytes(png("red"))
    refused = cli.run("eval", "mcqa", "--task", "kmle", "--data", str(sheet), "--model", "local:smollm2")
    assert refused.returncode == 2 and "1 item(s)" in refused.stderr and "--skip-images" in refused.stderr
    args = ["eval", "mcqa", "--task", "kmle", "--data", str(sheet), "--model", "openai:fake-model"]
    summary = cli.run(*args, "--model-base-url", server.base_url, "--json", check=True).json()
    assert summary["n_examples"] == 2 and summary["skipped_items"] == {}
    sent = [c.messages[-1]["content"] for c in server.server.log if isinstance(c.messages[-1]["content"], list)]
    assert len(sent) == 1 and sent_images(sent[0]) == [("data:image/png;base64", png("red"))]


def test_resume_sends_the_images_from_the_store(cli, server, tmp_path):
    (tmp_path / "rash.png").write_bytes(png("red"))
    options = {"A": "benign", "B": "malignant"}
    rows = [
        {"id": "img", "question": "Rash? {model-500:1} {model-answer:B}", **options, "answer": "B",
         "images": ["rash.png"]},
        {"id": "txt", "question": "Text? {model-answer:A}", **options, "answer": "A"},
    ]  # fmt: skip
    data = write_jsonl(tmp_path / "exam.jsonl", rows)
    args = exam_args(data, "openai:fake-model", "--model-base-url", server.base_url, "--name", "r")
    first = cli.run(*args, "--max-tries", "1")
    assert first.returncode == 3, first.stderr
    (tmp_path / "rash.png").unlink()  # the resumed run reads the image from the store, not the file
    resumed = cli.run("eval", "mcqa", "--resume", "r", "--json", check=True).json()
    assert resumed["n_examples"] == 2 and resumed["score"] == 1.0
    last = server.server.log[-1].messages[-1]["content"]
    assert sent_images(last) == [("data:image/png;base64", png("red"))]


def test_worked_examples_with_images_are_refused_on_a_text_only_model(cli, tmp_path):
    data = image_exam(tmp_path)
    args = exam_args(data, "local:smollm2", "--skip-images", "--shots", "1", "--fewshot-data", str(data))
    result = cli.run(*args)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line and "1 worked example(s) of --fewshot-data have images" in line
