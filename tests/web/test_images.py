"""Image parts on the example page: a thumbnail served from the store by digest (admin), withheld
from the redacted view below admin, and only for the run's own images."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from medops import api
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread
from medops.web import create_app


def _png() -> bytes:
    """A real 2x2 PNG: images are decoded when a data file is read (datasets/images.py)."""
    out = io.BytesIO()
    Image.new("RGB", (2, 2), "red").save(out, format="PNG")
    return out.getvalue()


PNG = _png()  # small enough to pass through byte for byte


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("images")
    (tmp / "rash.png").write_bytes(PNG)
    turn = {
        "role": "user",
        "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "rash.png"}}],
    }
    row = {"prompt": [turn], "prompt_id": "img", "rubrics": [{"criterion": "Names it {met}", "points": 5}]}
    data = tmp / "set.jsonl"
    data.write_text(json.dumps(row) + "\n")
    db = tmp / "medops.db"
    with ServerThread(FakeOpenAIServer(FakeBehaviour())) as fake:
        config = api.healthbench_config(
            data=str(data),
            model="openai:fake-model",
            model_base_url=fake.base_url,
            grader="openai:fake-grader",
            grader_base_url=fake.base_url,
        )
        api.evaluate(config, db=str(db), name="img")
    store = api.open_store(str(db))
    tokens = {}
    for role in ("viewer", "admin"):
        api.add_user(store, role[:3] + "-user", role, "correct horse battery staple", actor="os:test")
        tokens[role], _ = api.create_token(store, f"{role}-token", role, actor="os:test")
    return create_app(str(db)), tokens


def get(site, role, path):
    app, tokens = site
    c = TestClient(app, follow_redirects=False)
    c.headers["Authorization"] = f"Bearer {tokens[role]}"
    return c.get(path)


def test_the_admin_page_shows_the_image_as_a_thumbnail_from_the_store(site):
    digest = hashlib.sha256(PNG).hexdigest()
    page = get(site, "admin", "/runs/img/examples/0")
    assert page.status_code == 200
    assert f'src="/runs/1/images/{digest}"' in page.text and "base64" not in page.text
    image = get(site, "admin", f"/runs/1/images/{digest}")
    assert image.status_code == 200 and image.content == PNG and image.headers["content-type"] == "image/png"


def test_below_admin_the_image_is_withheld_and_not_served(site):
    digest = hashlib.sha256(PNG).hexdigest()
    page = get(site, "viewer", "/runs/img/examples/0")
    assert page.status_code == 200 and "What is this?" in page.text
    assert digest not in page.text and "withheld" in page.text
    assert get(site, "viewer", f"/runs/1/images/{digest}").status_code == 403


def test_a_digest_the_run_does_not_hold_is_404(site):
    assert get(site, "admin", f"/runs/1/images/{'0' * 64}").status_code == 404
