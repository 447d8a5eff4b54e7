"""Images read once for every loader: pass-through, resizing, DICOM rendering, refusals."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from medops.content import data_uri, decode_data_uri
from medops.datasets import images
from medops.errors import DataError, UserError

CT = get_testdata_file("CT_small.dcm")  # shipped inside pydicom: 128x128, no window, rescale -1024
MR = get_testdata_file("MR_small.dcm")  # 64x64, WindowCenter 600 / WindowWidth 1600


def encoded(size: tuple[int, int], fmt: str, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(0)
    channels = {"RGB": 3, "L": 1}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8).squeeze()
    out = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(out, format=fmt)
    return out.getvalue()


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize(("fmt", "media"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_an_image_that_fits_passes_through_byte_for_byte(fmt, media):
    data = encoded((300, 200), fmt)
    assert images.prepare(data, max_side=1024) == (media, data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_larger_image_is_resized_to_the_longest_side_keeping_its_aspect_and_format(fmt):
    media, out = images.prepare(encoded((1600, 900), fmt))  # the default longest side: 1024
    image = opened(out)
    assert image.format == fmt and media == images.PASS_THROUGH[fmt]
    assert image.size == (1024, 576)
    tall = opened(images.prepare(encoded((90, 400), fmt), max_side=100)[1])
    assert tall.size[1] == 100 and abs(tall.size[0] - 22) <= 1


def test_the_longest_side_is_configurable_from_the_environment(monkeypatch):
    data = encoded((500, 250), "PNG")
    monkeypatch.setenv("MEDOPS_IMAGE_MAX_SIDE", "200")
    assert opened(images.prepare(data)[1]).size == (200, 100)
    monkeypatch.setenv("MEDOPS_IMAGE_MAX_SIDE", "big")
    with pytest.raises(UserError, match="MEDOPS_IMAGE_MAX_SIDE"):
        images.prepare(data)


def test_the_format_is_read_from_the_bytes_not_the_name(tmp_path):
    data = encoded((10, 10), "JPEG")
    (tmp_path / "scan.png").write_bytes(data)
    assert images.read(tmp_path / "scan.png") == ("image/jpeg", data)


def test_dicom_is_rendered_to_an_8bit_png_with_the_files_own_window():
    ds = pydicom.dcmread(MR)
    media, out = images.prepare(Path(MR).read_bytes(), name="MR_small.dcm")
    image = opened(out)
    assert media == "image/png" and image.format == "PNG" and image.mode == "L" and image.size == (64, 64)
    # the DICOM linear window: centre 600, width 1600 -> [-200.5, 1398.5] mapped onto 0..255
    values = ds.pixel_array.astype(float)
    low, high = 600 - 0.5 - 1599 / 2, 600 - 0.5 + 1599 / 2
    expected = np.rint((np.clip(values, low, high) - low) / (high - low) * 255).astype(np.uint8)
    assert np.array_equal(np.asarray(image), expected)


def test_dicom_without_a_window_is_scaled_min_max_after_the_rescale():
    ds = pydicom.dcmread(CT)
    assert "WindowCenter" not in ds and float(ds.RescaleIntercept) == -1024
    pixels = np.asarray(opened(images.read(Path(CT))[1]))
    assert pixels.min() == 0 and pixels.max() == 255
    values = ds.pixel_array.astype(float) - 1024
    expected = np.rint((values - values.min()) / (values.max() - values.min()) * 255).astype(np.uint8)
    assert np.array_equal(pixels, expected)


def test_every_dicom_tag_is_dropped():
    raw = Path(CT).read_bytes()
    ds = pydicom.dcmread(CT)
    name = str(ds.PatientName).encode()
    assert name and name in raw
    out = images.prepare(raw, name="ct.dcm")[1]
    assert name not in out and b"DICM" not in out and str(ds.StudyInstanceUID).encode() not in out
    image = opened(out)
    assert not {k for k in image.info if k not in ("dpi",)}  # no text chunk, no EXIF
    assert not image.getexif()


def test_dicom_is_resized_like_any_image():
    out = images.prepare(Path(CT).read_bytes(), name="ct.dcm", max_side=50)[1]
    assert opened(out).size == (50, 50)


def test_monochrome1_is_inverted(tmp_path):
    ds = pydicom.dcmread(MR)
    normal = np.asarray(opened(images.read(Path(MR))[1]))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "inv.dcm")
    inverted = np.asarray(opened(images.read(tmp_path / "inv.dcm")[1]))
    assert np.array_equal(inverted, 255 - normal)


FAKE_PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))  # a PNG signature and nothing a decoder reads


def part(ref, data_file, line=3, field="images.0"):
    return images.image_part(ref, data_file=data_file, line=line, field=field)


def test_image_part_reads_a_path_relative_to_the_data_file(tmp_path):
    (tmp_path / "img").mkdir()
    data = encoded((20, 20), "PNG")
    (tmp_path / "img" / "a.png").write_bytes(data)
    got = part("img/a.png", tmp_path / "exam.jsonl")
    assert got == {"type": "image_url", "image_url": {"url": data_uri(data, "image/png")}}
    # a data: URI goes through the same checks
    assert part(data_uri(data, "image/png"), tmp_path / "exam.jsonl") == got


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda d: None, "no such file"),
        (lambda d: (d / "x.png").write_bytes(b""), "empty file"),
        (lambda d: (d / "x.png").write_bytes(FAKE_PNG), "not a PNG, JPEG, WebP or DICOM"),
        (lambda d: (d / "x.png").write_bytes(encoded((64, 64), "PNG")[:-40]), "unreadable"),
        (lambda d: (d / "x.png").write_bytes(encoded((8, 8), "GIF", "L")), "GIF images are not read"),
        (lambda d: (d / "x.png").mkdir(), "is a directory"),
    ],
)
def test_an_unusable_image_is_one_line_naming_file_line_field_and_image(tmp_path, setup, reason):
    setup(tmp_path)
    with pytest.raises(DataError) as caught:
        part("x.png", tmp_path / "exam.jsonl")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'exam.jsonl'}:3: images.0: image 'x.png': ")
    assert reason in message and "\n" not in message


def test_a_zero_byte_dicom_and_a_dicom_without_pixels_are_refused(tmp_path):
    (tmp_path / "empty.dcm").write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        part("empty.dcm", tmp_path / "e.jsonl")
    ds = pydicom.dcmread(CT)
    del ds.PixelData
    ds.save_as(tmp_path / "nopixels.dcm")
    with pytest.raises(DataError, match="without pixel data"):
        part("nopixels.dcm", tmp_path / "e.jsonl")
    (tmp_path / "junk.dcm").write_bytes(b"not a dicom file at all" * 10)
    with pytest.raises(DataError, match=r"junk\.dcm"):
        part("junk.dcm", tmp_path / "e.jsonl")


def test_an_image_over_50_megapixels_is_refused_before_its_pixels_are_decoded(tmp_path):
    out = io.BytesIO()
    Image.new("1", (8000, 6300)).save(out, format="PNG")  # 50.4 megapixels, a few kilobytes
    (tmp_path / "bomb.png").write_bytes(out.getvalue())
    with pytest.raises(DataError, match=r"bomb.png.*8000x6300 pixels is over the 50 megapixel limit"):
        part("bomb.png", tmp_path / "e.jsonl")
    ds = pydicom.dcmread(CT)
    ds.Rows, ds.Columns = 8000, 8000  # the header claims 64 megapixels; the pixels are never read
    ds.save_as(tmp_path / "bomb.dcm")
    with pytest.raises(DataError, match="over the 50 megapixel limit"):
        part("bomb.dcm", tmp_path / "e.jsonl")


def test_remote_urls_and_bad_data_uris_are_refused(tmp_path):
    with pytest.raises(DataError, match="only data: URIs and paths"):
        part("https://example.org/x.png", tmp_path / "e.jsonl")
    with pytest.raises(DataError, match="not a base64 data: URI"):
        part("data:image/png;base64,!!!", tmp_path / "e.jsonl")
    bad = "data:image/png;base64," + base64.b64encode(b"not an image").decode()
    assert decode_data_uri(bad) is not None
    with pytest.raises(DataError, match="not a PNG, JPEG, WebP or DICOM"):
        part(bad, tmp_path / "e.jsonl")


def test_a_healthbench_file_reads_its_images_through_the_same_handling(tmp_path):
    import json

    from medops.datasets.healthbench import load_rubric_dataset

    (tmp_path / "ct.dcm").write_bytes(Path(CT).read_bytes())
    turn = {
        "role": "user",
        "content": [{"type": "text", "text": "Findings?"}, {"type": "image_url", "image_url": {"url": "ct.dcm"}}],
    }
    row = {"prompt": [turn], "prompt_id": "ct", "rubrics": [{"criterion": "Names it", "points": 5}]}
    (tmp_path / "set.jsonl").write_text(json.dumps(row) + "\n")
    url = load_rubric_dataset(tmp_path / "set.jsonl").examples[0].prompt[0].content[1]["image_url"]["url"]
    media, data = decode_data_uri(url)
    assert media == "image/png" and opened(data).size == (128, 128) and b"DICM" not in data
    (tmp_path / "ct.dcm").write_bytes(b"")
    with pytest.raises(
        DataError, match=r"set\.jsonl:1: prompt\.0\.content\.1\.image_url\.url: image 'ct\.dcm': empty file"
    ):
        load_rubric_dataset(tmp_path / "set.jsonl")


def test_a_camera_jpeg_with_a_second_picture_inside_is_read_as_jpeg():
    out = io.BytesIO()
    first, second = Image.new("RGB", (1600, 900), "red"), Image.new("RGB", (160, 90), "blue")
    first.save(out, format="MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(out.getvalue())).format == "MPO"
    media, data = images.prepare(out.getvalue())
    assert media == "image/jpeg" and opened(data).format == "JPEG" and opened(data).size == (1024, 576)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_and_still_resized_exactly():
    out = io.BytesIO()
    Image.new("RGB", (4096, 3072), "white").save(out, format="JPEG")
    media, data = images.prepare(out.getvalue())
    assert media == "image/jpeg" and opened(data).size == (1024, 768)
    truncated = out.getvalue()[: len(out.getvalue()) // 2]
    with pytest.raises(images.ImageError, match="unreadable JPEG"):
        images.prepare(truncated)
