"""The generic exam layout's ``images`` (JSONL and CSV): read through datasets/images.py into parts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from conftest import write_jsonl
from medops.content import data_uri, decode_data_uri
from medops.datasets.mcqa import MCQItem, load_mcqa
from medops.errors import DataError


def png(size=(4, 3), colour="red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def test_jsonl_items_carry_their_images_as_parts_in_order(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(png())
    (tmp_path / "img" / "b.png").write_bytes(png(colour="blue"))
    (tmp_path / "ct.dcm").write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    data = write_jsonl(
        tmp_path / "exam.jsonl",
        [
            {"question": "Which?", "A": "x", "B": "y", "answer": "A", "images": ["img/a.png", "img/b.png"]},
            {"question": "CT?", "options": {"A": "x", "B": "y"}, "answer_idx": "B", "images": ["ct.dcm"]},
            {"question": "Text only?", "A": "x", "B": "y", "answer": 2},
            {"question": "Empty list?", "A": "x", "B": "y", "answer": 2, "images": []},
        ],
    )
    exam = load_mcqa("generic", data)
    assert [len(item.images) for item in exam.items] == [2, 1, 0, 0] and exam.n_with_images == 2
    first = exam.items[0].images
    assert [part["image_url"]["url"] for part in first] == [
        data_uri(png(), "image/png"),
        data_uri(png(colour="blue"), "image/png"),
    ]
    media, rendered = decode_data_uri(exam.items[1].images[0]["image_url"]["url"])
    assert media == "image/png" and Image.open(io.BytesIO(rendered)).size == (128, 128)
    # skipping keeps the text items and counts the rest
    text_only = exam.without_images()
    assert len(text_only) == 2 and text_only.skipped == {"needs_image": 2}
    # what the store keeps round-trips; a text item's record is what it was before images
    assert [MCQItem.from_record(item.record()) for item in exam.items] == list(exam.items)
    assert "images" not in exam.items[2].record()


def test_csv_images_cell_holds_semicolon_separated_paths_or_a_json_list(tmp_path):
    (tmp_path / "a.png").write_bytes(png())
    (tmp_path / "b.png").write_bytes(png(colour="blue"))
    data = tmp_path / "bank.csv"
    data.write_text(
        "id,question,A,B,answer,images\n"
        "q1,Which?,red,green,A,a.png; b.png\n"
        'q2,Which?,red,green,B,"[""b.png""]"\n'
        "q3,Text?,red,green,B,\n"
    )
    exam = load_mcqa("generic", data)
    assert [len(item.images) for item in exam.items] == [2, 1, 0]
    assert exam.items[1].images[0]["image_url"]["url"] == data_uri(png(colour="blue"), "image/png")


def test_a_missing_image_is_one_line_naming_file_line_field_and_image(tmp_path):
    data = write_jsonl(
        tmp_path / "exam.jsonl",
        [
            {"question": "Q?", "A": "x", "B": "y", "answer": "A"},
            {"question": "Q?", "A": "x", "B": "y", "answer": "A", "images": ["scans/missing.png"]},
        ],
    )
    with pytest.raises(DataError) as caught:
        load_mcqa("generic", data)
    assert str(caught.value).startswith(f"{data}:2: images.0: image 'scans/missing.png': no such file")
    csv_file = tmp_path / "bank.csv"
    csv_file.write_text("question,A,B,answer,images\nQ?,x,y,A,\nQ?,x,y,A,ok.png;gone.png\n")
    (tmp_path / "ok.png").write_bytes(png())
    with pytest.raises(DataError, match=r"bank\.csv:3: images\.1: image 'gone\.png': no such file"):
        load_mcqa("generic", csv_file)


def test_images_must_be_a_list_of_paths(tmp_path):
    data = write_jsonl(
        tmp_path / "exam.jsonl", [{"question": "Q?", "A": "x", "B": "y", "answer": "A", "images": "a.png"}]
    )
    with pytest.raises(DataError, match=r"exam\.jsonl:1: images must be a list of paths"):
        load_mcqa("generic", data)
