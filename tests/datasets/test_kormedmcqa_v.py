"""KorMedMCQA-V in its published layout: read from local parquet (or the JSONL `medops data pull`
makes of it), pulled through the datasets library from a local mirror, and run end to end against
the stand-in server, which receives every image as an image part."""

from __future__ import annotations

import base64
import hashlib

import pytest
from kormedmcqa_v_fixture import b64, ecg_png, rendered, rows, write_parquet

from conftest import needs_shared
from medops.content import decode_data_uri
from medops.datasets.mcqa import load_mcqa
from medops.errors import DataError


def test_a_kormedmcqa_v_parquet_file_reads_as_image_items(tmp_path):
    exam = load_mcqa("kormedmcqa_v", write_parquet(tmp_path / "test_full.parquet"))
    assert [item.id for item in exam.items] == ["doctor-2023-1-18", "doctor-2023-1-25", "doctor-2022-2-7"]
    assert [item.answer for item in exam.items] == ["B", "C", "E"]
    assert exam.items[0].options["A"] == "폐렴" and len(exam.items[0].options) == 5
    first, second, third = exam.items
    assert first.tags == {"profession": "doctor", "year": "2023", "imaging": "ct"}
    assert second.tags["imaging"] == "mri+ct" and third.tags["imaging"] == "ecg"
    images = [decode_data_uri(part["image_url"]["url"]) for part in second.images]
    assert images == [("image/png", rendered("MR_small.dcm")), ("image/png", rendered("CT_small.dcm"))]
    assert decode_data_uri(third.images[0]["image_url"]["url"]) == ("image/png", ecg_png())
    assert exam.n_with_images == 3 and exam.skipped == {}


def test_a_broken_image_names_file_row_and_field(tmp_path):
    broken = rows()
    broken[1]["images"][1]["image_base64"] = b64(b"not an image at all")
    path = write_parquet(tmp_path / "test_full.parquet", broken)
    with pytest.raises(DataError) as caught:
        load_mcqa("kormedmcqa_v", path)
    message = str(caught.value)
    assert str(path) in message and ":2" in message and "images.1.image_base64" in message
    assert "not a PNG, JPEG, WebP or DICOM image" in message


def test_data_pull_converts_the_hub_set_and_an_exam_runs_on_it_with_every_image_sent(cli, server, tmp_path):
    pytest.importorskip("datasets")
    mirror = tmp_path / "mirror"
    folder = mirror / "seongsubae" / "KorMedMCQA-V" / "doctor"
    write_parquet(folder / "test_full.parquet")
    write_parquet(folder / "test.parquet", rows()[:1])  # another split beside it: not read
    env = {"MEDOPS_HF_MIRROR": str(mirror), "HF_HUB_OFFLINE": "1"}
    pulled = cli.run("data", "pull", "kormedmcqa_v", env=env, check=True)
    cached = tmp_path / "cache" / "exams" / "kormedmcqa_v.jsonl"
    assert "downloaded" in pulled.stdout and hashlib.sha256(cached.read_bytes()).hexdigest() in pulled.stdout
    from_cache = load_mcqa("kormedmcqa_v", cached)
    assert from_cache.items == load_mcqa("kormedmcqa_v", folder / "test_full.parquet").items

    args = ["eval", "mcqa", "--task", "kormedmcqa_v", "--data", "kormedmcqa_v", "--model", "openai:fake-vlm"]
    result = cli.run(*args, "--model-base-url", server.base_url, "--style", "cot", "--json", check=True).json()
    assert result["n_examples"] == 3 and result["score"] == pytest.approx(2 / 3)
    assert result["rules"] == {"boxed": 3}
    sent = {}
    for call in server.server.log:
        content = call.messages[-1]["content"]
        assert isinstance(content, list) and content[0]["type"] == "text"
        cited = next(q for q in ("사진18", "사진25", "사진7") if q in content[0]["text"])
        sent[cited] = [
            base64.b64decode(p["image_url"]["url"].split(",", 1)[1]) for p in content if p["type"] == "image_url"
        ]
    assert len(server.server.log) == 3
    assert sent == {
        "사진18": [rendered("CT_small.dcm")],
        "사진25": [rendered("MR_small.dcm"), rendered("CT_small.dcm")],
        "사진7": [ecg_png()],
    }
    assert "imaging:mri+ct" in result["metrics"] and result["metrics"]["imaging:ecg"]["mean"] == 1.0


def test_without_the_hub_the_pull_names_the_repository(cli):
    pytest.importorskip("datasets")
    offline = cli.run("data", "pull", "kormedmcqa_v", env={"HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 2 and "could not load seongsubae/KorMedMCQA-V" in offline.stderr


@pytest.mark.shared_data
def test_the_shared_kormedmcqa_v_files_load_when_present():
    folder = needs_shared("korean", "kormedmcqa_v")
    files = sorted(folder.glob("*.parquet"))
    if not files:
        pytest.skip(f"no KorMedMCQA-V parquet in {folder}")
    for file in files:
        exam = load_mcqa("kormedmcqa_v", file)
        assert exam.n_with_images == len(exam) and all(item.tags.get("profession") for item in exam.items)


def test_a_hub_row_in_another_layout_is_one_line_and_nothing_is_written(cli, tmp_path):
    pytest.importorskip("datasets")
    folder = tmp_path / "mirror" / "seongsubae" / "KorMedMCQA-V" / "doctor"
    folder.mkdir(parents=True)
    (folder / "test_full.jsonl").write_text('{"question": "Q?", "A": "a", "B": "b", "answer": 1}\n')
    env = {"MEDOPS_HF_MIRROR": str(tmp_path / "mirror"), "HF_HUB_OFFLINE": "1"}
    result = cli.run("data", "pull", "kormedmcqa_v", env=env)
    assert result.returncode == 2 and "seongsubae/KorMedMCQA-V row 1: not in the layout" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "cache" / "exams" / "kormedmcqa_v.jsonl").exists()
