"""Images carry pixels only: EXIF (with its GPS position), XMP, comments and PNG text chunks are
stripped when a data file's image is read, so neither the store nor a request holds them."""

from __future__ import annotations

import io
import json

from PIL import Image, PngImagePlugin

from medops.content import decode_data_uri
from medops.datasets.images import has_metadata, image_part, prepare
from medops.datasets.mcqa import load_mcqa

GPS_IFD = 0x8825
GPS = {1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 40.0)}  # a hospital's latitude, longitude


def _photo(fmt: str = "JPEG", *, orientation: int | None = None, size=(40, 20)) -> bytes:
    image = Image.new("RGB", size, "white")
    image.paste((200, 30, 30), (0, 0, size[0] // 2, size[1]))  # left half red: shows a rotation
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    exif[0x0110] = "Model X"
    exif[GPS_IFD] = GPS
    if orientation:
        exif[0x0112] = orientation
    out = io.BytesIO()
    image.save(out, format=fmt, exif=exif, **({"comment": b"patient 12345"} if fmt == "JPEG" else {}))
    return out.getvalue()


def _opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_jpeg_with_exif_gps_is_sent_without_any_metadata():
    original = _photo()
    assert _opened(original).getexif().get_ifd(GPS_IFD)  # the fixture really carries GPS
    media, data = prepare(original)
    assert media == "image/jpeg" and data != original
    cleaned = _opened(data)
    assert not cleaned.getexif() and "exif" not in cleaned.info and "comment" not in cleaned.info
    assert not has_metadata(cleaned)
    assert b"Model X" not in data and b"patient 12345" not in data and b"GPS" not in data
    assert cleaned.size == (40, 20)


def test_the_orientation_exif_gave_is_kept_in_the_pixels():
    _, data = prepare(_photo(orientation=6))  # 6: rotate 90 degrees clockwise to view
    cleaned = _opened(data)
    assert cleaned.size == (20, 40) and not cleaned.getexif()
    assert cleaned.getpixel((10, 2))[0] > 150  # the red half is now on top


def test_webp_and_png_metadata_is_stripped_too():
    _, webp = prepare(_photo("WEBP"))
    assert "exif" not in _opened(webp).info and b"Model X" not in webp
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "Patient: Kim Minji, MRN 0042")
    out = io.BytesIO()
    Image.new("L", (4, 4), 128).save(out, format="PNG", pnginfo=info)
    _, png = prepare(out.getvalue())
    assert b"Kim Minji" not in png and not _opened(png).info


def test_an_image_without_metadata_still_passes_through_byte_for_byte():
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "blue").save(out, format="JPEG")
    assert prepare(out.getvalue())[1] == out.getvalue()


def test_a_resized_image_carries_no_metadata(monkeypatch):
    monkeypatch.setenv("MEDOPS_IMAGE_MAX_SIDE", "16")
    _, data = prepare(_photo(size=(64, 32)))
    cleaned = _opened(data)
    assert cleaned.size == (16, 8) and not cleaned.getexif() and b"Model X" not in data


def test_what_an_exam_item_stores_has_no_gps(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(_photo())
    row = {"question": "What is shown?", "A": "a", "B": "b", "answer": "A", "images": ["photo.jpg"]}
    (tmp_path / "exam.jsonl").write_text(json.dumps(row) + "\n")
    item = load_mcqa("generic", tmp_path / "exam.jsonl").items[0]
    _, data = decode_data_uri(item.images[0]["image_url"]["url"])
    assert not _opened(data).getexif() and b"Model X" not in data
    part = image_part("photo.jpg", data_file=tmp_path / "exam.jsonl", line=1, field="images.0")
    assert part == item.images[0]
