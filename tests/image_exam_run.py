"""One stored exam run whose wrong answers carry images (pydicom's CT test file, a 600x300 photo),
answered by the stand-in server: what the report, the dashboard and the export show of images."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from pydicom.data import get_testdata_file

from conftest import write_jsonl
from medops import api
from medops.datasets.images import prepare
from medops.testing.fake_openai import FakeBehaviour, FakeOpenAIServer, ServerThread


def photo() -> bytes:
    image = Image.new("RGB", (600, 300), "white")
    image.paste((180, 40, 40), (0, 0, 300, 300))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass
class ImageRun:
    db: Path
    run_id: int
    images: dict[str, bytes]  # sha256 -> the bytes stored (and sent)


def image_exam_run(tmp: Path, name: str = "imgexam") -> ImageRun:
    ct = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (tmp / "ct.dcm").write_bytes(ct)
    (tmp / "photo.png").write_bytes(photo())
    options = {"A": "benign", "B": "malignant", "C": "artefact"}
    rows = [
        {"id": "ct", "question": "This CT? {model-answer:A}", **options, "answer": "B", "images": ["ct.dcm"]},
        {"id": "pair", "question": "These two? {model-answer:C}", **options, "answer": "A",
         "images": ["photo.png", "ct.dcm"]},
        {"id": "text", "question": "Text only? {model-answer:A}", **options, "answer": "A"},
    ]  # fmt: skip
    data = write_jsonl(tmp / "exam.jsonl", rows)
    db = tmp / "medops.db"
    with ServerThread(FakeOpenAIServer(FakeBehaviour())) as fake:
        config = api.exam_config(
            task="generic", data=str(data), model="openai:fake-vlm", model_base_url=fake.base_url, style="cot"
        )
        outcome = api.evaluate(config, db=str(db), name=name)
    stored = [prepare(ct, name="ct.dcm")[1], photo()]
    return ImageRun(db, outcome.run_id, {hashlib.sha256(b).hexdigest(): b for b in stored})
