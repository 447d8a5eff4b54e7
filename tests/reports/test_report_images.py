"""The HTML report shows each image item's pictures as small thumbnails embedded in the page (it
stays self-contained: nothing fetched), with alt text; the images come from the store's blobs."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image

from image_exam_run import image_exam_run, photo
from medops import api


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    return image_exam_run(tmp_path_factory.mktemp("report-images"))


def test_the_report_embeds_a_small_thumbnail_of_every_image_of_the_wrong_answers(found):
    html = api.report(str(found.run_id), db=str(found.db))
    thumbs = re.findall(
        r'<img class="thumb" src="data:(image/\w+);base64,([^"]+)" width="(\d+)" height="(\d+)" alt="([^"]+)"', html
    )
    assert len(thumbs) == 3  # the CT item's one, the pair's two; the right text answer is not listed
    alts = [t[4] for t in thumbs]
    assert alts == ["image 1 of 1, item ct", "image 1 of 2, item pair", "image 2 of 2, item pair"]
    sizes = []
    for media, payload, width, height, _ in thumbs:
        image = Image.open(io.BytesIO(base64.b64decode(payload)))
        assert media == "image/png" and image.size == (int(width), int(height))
        assert max(image.size) <= 160 and not image.info.get("exif")
        sizes.append(image.size)
    assert sizes == [(128, 128), (160, 80), (128, 128)]  # the 600x300 photo made small, aspect kept
    assert base64.b64encode(photo()).decode()[:200] not in html  # the photo only as its thumbnail
    assert not re.search(r'src="(?!data:)', html) and "img-src data:" in html  # self-contained


def test_the_markdown_report_has_no_image_markup(found):
    md = api.report(str(found.run_id), db=str(found.db), fmt="md")
    assert "<img" not in md
