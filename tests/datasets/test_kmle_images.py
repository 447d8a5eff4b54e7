"""KMLE sheets with their image folder (``<stem>_images/<class>-<Q_no>-<k>.<ext>``), built from the
real CT and MR files pydicom ships: nothing fetched."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from conftest import write_jsonl
from medops.content import decode_data_uri
from medops.datasets.mcqa import load_mcqa
from medops.errors import DataError

CT = Path(get_testdata_file("CT_small.dcm"))
MR = Path(get_testdata_file("MR_small.dcm"))
FIVE = "① 가\n② 나\n③ 다\n④ 라\n⑤ 마"


def kmle_sheet(tmp_path: Path, *, folder: bool = True) -> Path:
    rows = [
        {"class": 1, "Q_no": 1, "Question": "조치는?", "Followings": FIVE, "Answer": 4, "Image": 0, "category": "법규"},
        {"class": 1, "Q_no": 2, "Question": "CT 사진(사진1)이다. 진단은?", "Followings": FIVE, "Answer": 2, "Image": 1},
        {"class": 2, "Q_no": 7, "Question": "MR(사진2, 사진3)이다.", "Followings": FIVE, "Answer": 5, "Image": 2},
        {"class": 2, "Q_no": 8, "Question": "연결?", "Followings": FIVE, "Answer": "1,3", "Image": 1},
    ]
    sheet = write_jsonl(tmp_path / "2021.jsonl", rows)
    if folder:
        images = tmp_path / "2021_images"
        images.mkdir()
        shutil.copy(CT, images / "1-2-1.dcm")
        shutil.copy(MR, images / "2-7-1.DCM")
        out = io.BytesIO()
        Image.new("RGB", (1500, 1000), "white").save(out, format="JPEG")
        (images / "2-7-2.jpg").write_bytes(out.getvalue())
        (images / "notes.txt").write_text("not an image; not read")
    return sheet


def test_questions_read_their_images_from_the_folder_beside_the_sheet(tmp_path):
    exam = load_mcqa("kmle", kmle_sheet(tmp_path))
    assert [item.id for item in exam.items] == ["kmle-1-1", "kmle-1-2", "kmle-2-7"]
    assert exam.skipped == {"multi_answer": 1}
    assert [len(item.images) for item in exam.items] == [0, 1, 2]
    ct = decode_data_uri(exam.items[1].images[0]["image_url"]["url"])
    assert ct[0] == "image/png" and Image.open(io.BytesIO(ct[1])).size == (128, 128)
    mr, photo = (decode_data_uri(p["image_url"]["url"]) for p in exam.items[2].images)
    assert mr[0] == "image/png" and Image.open(io.BytesIO(mr[1])).size == (64, 64)
    assert photo[0] == "image/jpeg" and Image.open(io.BytesIO(photo[1])).size == (1024, 683)


def test_without_the_folder_questions_with_images_are_skipped_and_counted_as_before(tmp_path):
    exam = load_mcqa("kmle", kmle_sheet(tmp_path, folder=False))
    assert [item.id for item in exam.items] == ["kmle-1-1"]
    assert exam.skipped == {"needs_image": 3}


def test_every_question_whose_images_are_missing_is_reported_at_once(tmp_path):
    sheet = kmle_sheet(tmp_path)
    (tmp_path / "2021_images" / "1-2-1.dcm").unlink()
    (tmp_path / "2021_images" / "2-7-2.jpg").unlink()
    with pytest.raises(DataError) as caught:
        load_mcqa("kmle", sheet)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{sheet}: Image: 2 question(s) have images missing from")
    assert "line 2 (1-2-1)" in message and "line 3 (2-7-2)" in message and "<class>-<Q_no>-<k>" in message


def test_an_unreadable_image_names_the_sheet_line_and_image(tmp_path):
    sheet = kmle_sheet(tmp_path)
    (tmp_path / "2021_images" / "2-7-2.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"2021\.jsonl:3: Image\.2: image '2021_images/2-7-2\.jpg': empty file"):
        load_mcqa("kmle", sheet)
    (tmp_path / "2021_images" / "2-7-2.jpg").unlink()
    (tmp_path / "2021_images" / "2-7-2.png").write_bytes(b"x")
    (tmp_path / "2021_images" / "2-7-2.webp").write_bytes(b"x")
    with pytest.raises(DataError, match=r"2021\.jsonl:3: Image\.2: image 2-7-2: both 2-7-2\.png and 2-7-2\.webp"):
        load_mcqa("kmle", sheet)


def test_an_xlsx_sheet_finds_the_same_folder(tmp_path):
    import json

    from openpyxl import Workbook

    rows = [json.loads(line) for line in kmle_sheet(tmp_path).read_text().splitlines()]
    book = Workbook()
    header = ["class", "Q_no", "category", "Question", "Followings", "Answer", "Image"]
    book.active.append(header)
    for row in rows:
        book.active.append([row.get(k) for k in header])
    book.save(tmp_path / "2021.xlsx")
    exam = load_mcqa("kmle", tmp_path / "2021.xlsx")
    assert [len(item.images) for item in exam.items] == [0, 1, 2]
