"""Over real HTTP against `medops serve`: an exam's image item on the example page is a thumbnail
<img> served from the store by a /runs/.../images/<sha256> URL (with alt text, no base64 in the
page); the URL returns the image's bytes to an admin, 403 to a viewer (whose page withholds it),
and nothing without credentials."""

from __future__ import annotations

import re

import httpx
import pytest
from dashboard_store import Dashboard, start_server

from image_exam_run import image_exam_run
from medops import api


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exam-images-http")
    found = image_exam_run(tmp)
    store = api.open_store(str(found.db))
    dashboard = Dashboard(db=found.db, tmp=tmp)
    for role in ("viewer", "admin"):
        api.add_user(store, f"{role}-user", role, "correct horse battery staple", actor="os:test")
        dashboard.tokens[role], _ = api.create_token(store, f"{role}-token", role, actor="os:test")
    proc = start_server(dashboard, {"MEDOPS_CACHE_DIR": str(tmp / "cache")})
    try:
        yield dashboard, found
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def get(dashboard: Dashboard, path: str, role: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {dashboard.tokens[role]}"} if role else {}
    return httpx.get(dashboard.base_url + path, headers=headers, follow_redirects=False, timeout=30)


def test_the_admin_sees_each_picture_as_a_thumbnail_and_its_url_returns_the_bytes(site):
    dashboard, found = site
    page = get(dashboard, f"/runs/{found.run_id}/examples/1", "admin")  # the item with two images
    assert page.status_code == 200 and "These two?" in page.text
    thumbs = re.findall(r'<img class="thumbnail" src="(/runs/\d+/images/([0-9a-f]{64}))" alt="([^"]+)"', page.text)
    assert [sha for _, sha, _ in thumbs] == list(found.images)[::-1]  # the photo, then the CT
    assert [alt[:11] for _, _, alt in thumbs] == ["image 1 of ", "image 2 of "] and "base64" not in page.text
    assert thumbs[0][2] == f"image 1 of 2 (sha256 {thumbs[0][1][:12]})"
    for url, sha, _ in thumbs:
        image = get(dashboard, url, "admin")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert image.content == found.images[sha]


def test_a_viewer_gets_the_page_without_the_picture_and_403_for_its_url(site):
    dashboard, found = site
    page = get(dashboard, f"/runs/{found.run_id}/examples/0", "viewer")
    assert page.status_code == 200 and "This CT?" in page.text and "withheld" in page.text
    assert not any(sha in page.text for sha in found.images) and '<img class="thumbnail"' not in page.text
    for sha in found.images:
        assert get(dashboard, f"/runs/{found.run_id}/images/{sha}", "viewer").status_code == 403
        assert get(dashboard, f"/runs/{found.run_id}/images/{sha}", None).status_code in (302, 303, 401)
