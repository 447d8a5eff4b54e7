"""`medops export --with-images`: the images written once each beside the rows (as stored: pixels
only), every row naming its files; without the flag rows carry image sha256s and nothing else."""

from __future__ import annotations

import csv
import hashlib
import json

import pytest
from PIL import Image

from image_exam_run import image_exam_run


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    return image_exam_run(tmp_path_factory.mktemp("export-images"))


def test_with_images_writes_each_image_once_beside_the_rows(cli, found, tmp_path):
    out = tmp_path / "answers.jsonl"
    cli.run("export", str(found.run_id), "--db", str(found.db), "-o", str(out), "--with-images", check=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by_item = {row["item_id"]: row for row in rows}
    folder = tmp_path / "answers_images"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{sha}.png" for sha in found.images)
    for name in ("ct", "pair"):
        row = by_item[name]
        assert row["image_files"] == [f"answers_images/{sha}.png" for sha in row["images"]]
        for path, sha in zip(row["image_files"], row["images"], strict=True):
            data = (tmp_path / path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == sha and data == found.images[sha]
            assert not Image.open(tmp_path / path).info.get("exif")
    assert by_item["text"]["images"] == [] and by_item["text"]["image_files"] == []
    assert len(by_item["pair"]["image_files"]) == 2

    again = cli.run(
        "export", str(found.run_id), "--db", str(found.db), "-o", str(tmp_path / "a.csv"), "--format", "csv",
        "--with-images", check=True,
    )  # fmt: skip
    assert again.returncode == 0
    pair = next(r for r in csv.DictReader((tmp_path / "a.csv").open()) if r["item_id"] == "pair")
    assert pair["image_files"].split(";") == [f"a_images/{sha}.png" for sha in pair["images"].split(";")]


def test_by_default_rows_carry_digests_only_and_no_folder_is_written(cli, found, tmp_path):
    out = tmp_path / "plain.jsonl"
    cli.run("export", str(found.run_id), "--db", str(found.db), "-o", str(out), check=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all("image_files" not in row for row in rows) and any(row["images"] for row in rows)
    assert not (tmp_path / "plain_images").exists() and "base64" not in out.read_text()


def test_with_images_needs_an_output_file_and_keeps_a_folder_it_did_not_write(cli, found, tmp_path):
    to_stdout = cli.run("export", str(found.run_id), "--db", str(found.db), "--with-images")
    assert to_stdout.returncode == 2 and "--with-images needs -o FILE" in to_stdout.stderr
    assert to_stdout.stdout == ""
    (tmp_path / "mine_images").mkdir()
    (tmp_path / "mine_images" / "notes.txt").write_text("keep me")
    refused = cli.run(
        "export", str(found.run_id), "--db", str(found.db), "-o", str(tmp_path / "mine.jsonl"), "--with-images"
    )
    assert refused.returncode == 2 and "did not export (notes.txt" in refused.stderr
    assert (tmp_path / "mine_images" / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "mine.jsonl").exists()
