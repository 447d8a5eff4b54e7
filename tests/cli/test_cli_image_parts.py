"""A HealthBench-format set whose user turn holds an image part, end to end through the CLI."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sqlite3

from PIL import Image

from conftest import write_jsonl


def _png() -> bytes:
    """A real 2x2 PNG: images are decoded when a data file is read (datasets/images.py)."""
    out = io.BytesIO()
    Image.new("RGB", (2, 2), "red").save(out, format="PNG")
    return out.getvalue()


PNG = _png()  # small enough to pass through byte for byte


def image_set(tmp_path, *, url: str = "images/rash.png"):
    (tmp_path / "images").mkdir(exist_ok=True)
    (tmp_path / "images" / "rash.png").write_bytes(PNG)
    turn = {
        "role": "user",
        "content": [{"type": "text", "text": "What is this rash?"}, {"type": "image_url", "image_url": {"url": url}}],
    }
    rows = [
        {"prompt": [turn], "prompt_id": f"img{i}", "rubrics": [{"criterion": "Names the rash {met}", "points": 5}]}
        for i in range(2)
    ]
    rows.append(
        {"prompt": [{"role": "user", "content": "Text only."}], "prompt_id": "t", "rubrics": rows[0]["rubrics"]}
    )
    return write_jsonl(tmp_path / "images.jsonl", rows)


def test_the_image_part_goes_on_the_wire_and_is_stored_once(cli, server, tmp_path):
    data = image_set(tmp_path)
    result = cli.run(*cli.eval_args(server, data), "--json", "--name", "img", check=True)
    assert result.json()["metrics"]["overall_score"]["n_samples"] == 3
    model_calls = [c for c in server.server.log if c.model == "fake-model"]
    with_parts = [c.messages[-1]["content"] for c in model_calls if isinstance(c.messages[-1]["content"], list)]
    assert len(with_parts) == 2
    for content in with_parts:
        text, image = content
        assert text == {"type": "text", "text": "What is this rash?"}
        assert image["type"] == "image_url"
        url = image["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        assert base64.b64decode(url.split(",", 1)[1]) == PNG
    # the grader reads the conversation's text: no base64 in its prompt
    grader_text = json.dumps([c.messages for c in server.server.log if c.model == "fake-grader"])
    assert "What is this rash?" in grader_text and "base64" not in grader_text

    db = sqlite3.connect(cli.db)
    digest = hashlib.sha256(PNG).hexdigest()
    assert db.execute("SELECT sha256, media_type, data FROM blobs").fetchall() == [(digest, "image/png", PNG)]
    items = [json.loads(row[0]) for row in db.execute("SELECT content FROM items")]
    stored = json.dumps(items)
    assert f"sha256:{digest}" in stored and "base64" not in stored
    cached = " ".join(str(r) for r in db.execute("SELECT * FROM call_cache").fetchall())
    assert "base64" not in cached

    # readers rebuild the items from the store; exports name each example's images by digest
    shown = cli.run("runs", "show", "img", "--json", check=True).json()
    assert shown["metrics"]["overall_score"]["n_samples"] == 3
    rows = [json.loads(line) for line in cli.run("export", "img", check=True).stdout.splitlines()]
    assert [r["images"] for r in rows] == [[digest], [digest], []]
    assert "base64" not in cli.run("export", "img", "--format", "csv", check=True).stdout


def test_a_text_only_model_is_refused_an_image_set_before_any_call(cli, server, tmp_path):
    data = image_set(tmp_path)
    args = cli.eval_args(server, data)
    args[args.index("openai:fake-model")] = "local:smollm2"
    result = cli.run(*args)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert "\n" not in line and "local:smollm2" in line and "2 item(s)" in line and "images" in line
    assert server.server.log == []
    assert cli.run("runs", "list", "--json", check=True).json() == []


def test_a_missing_image_is_one_line_naming_file_line_and_image(cli, server, tmp_path):
    data = image_set(tmp_path, url="images/missing.png")
    result = cli.run(*cli.eval_args(server, data))
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line
    assert f"{data}:1" in line and "images/missing.png" in line and "prompt.0.content.1.image_url.url" in line
    assert server.server.log == []


def test_a_remote_image_url_is_refused_not_fetched(cli, server, tmp_path):
    data = image_set(tmp_path, url="https://example.org/rash.png")
    result = cli.run(*cli.eval_args(server, data))
    assert result.returncode == 2 and "https://example.org/rash.png" in result.stderr
    assert server.server.log == []
