"""A small KorMedMCQA-V file in its published layout (Hugging Face ``seongsubae/KorMedMCQA-V``,
config ``doctor``): KorMedMCQA's columns plus ``images``, a list of ``{pic_num, modality,
image_base64}``. The pictures are real: pydicom's CT and MR test files rendered by
medops.datasets.images, and a PNG."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from pydicom.data import get_testdata_file

from medops.datasets.images import prepare

SCHEMA = pa.schema(
    [
        ("subject", pa.string()),
        ("year", pa.int64()),
        ("period", pa.int64()),
        ("q_number", pa.int64()),
        ("question", pa.string()),
        *[(letter, pa.string()) for letter in "ABCDE"],
        ("answer", pa.int64()),
        (
            "images",
            pa.list_(pa.struct([("pic_num", pa.string()), ("modality", pa.string()), ("image_base64", pa.string())])),
        ),
    ]
)
OPTIONS = {"A": "폐렴", "B": "기흉", "C": "폐색전증", "D": "심근경색", "E": "정상"}


def rendered(name: str) -> bytes:
    """A pydicom test file as the PNG medops sends (window applied, tags dropped)."""
    return prepare(Path(get_testdata_file(name)).read_bytes(), name=name)[1]


def ecg_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (12, 6), "pink").save(out, format="PNG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def rows() -> list[dict]:
    ct, mr, ecg = rendered("CT_small.dcm"), rendered("MR_small.dcm"), "data:image/png;base64," + b64(ecg_png())
    base = {"subject": "doctor", "year": 2023, "period": 1, **OPTIONS}
    return [
        {**base, "q_number": 18, "question": "사진18의 CT 소견은? {model-answer:B}", "answer": 2,
         "images": [{"pic_num": "18", "modality": "ct", "image_base64": b64(ct)}]},
        {**base, "q_number": 25, "question": "사진25-1, 25-2의 진단은? {model-answer:A}", "answer": 3,
         "images": [{"pic_num": "25-1", "modality": "mri", "image_base64": b64(mr)},
                    {"pic_num": "25-2", "modality": "ct", "image_base64": b64(ct)}]},
        {**base, "year": 2022, "period": 2, "q_number": 7, "question": "사진7의 심전도는? {model-answer:E}",
         "answer": 5, "images": [{"pic_num": "7", "modality": "ecg", "image_base64": ecg}]},
    ]  # fmt: skip


def write_parquet(path: Path, table_rows: list[dict] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(table_rows or rows(), schema=SCHEMA), path)
    return path
