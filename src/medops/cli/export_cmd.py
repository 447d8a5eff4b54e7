"""``medops export``: one row per graded criterion (or exam answer), for analysis elsewhere."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from enum import Enum
from pathlib import Path

import typer

from medops import api
from medops.api.images import image_folder
from medops.cli.options import DB_OPTION
from medops.errors import UserError
from medops.store.repository import Store

_IMAGE_NAME = re.compile(r"[0-9a-f]{64}\.(png|jpg|webp|bin)")


class ExportFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"


def export(
    run_ref: str = typer.Argument(..., metavar="RUN", help="Run id or name."),
    fmt: ExportFormat = typer.Option(ExportFormat.jsonl, "--format"),
    output: Path = typer.Option(None, "-o", "--output", help="File to write [default: stdout]."),
    with_images: bool = typer.Option(
        False,
        "--with-images",
        help="Also write the items' images (as stored: pixels only) to <output stem>_images/ beside "
        "the file; each row's image_files names them. Needs -o. Without it rows carry image sha256s only.",
    ),
    db: str = DB_OPTION,
) -> None:
    """Export a run: one row per criterion (example_index, prompt_id, criterion, points, tags, criteria_met, ...)
    or per exam answer (item_id, gold, predicted, rule, correct, ...)."""
    if with_images and output is None:
        raise UserError("--with-images needs -o FILE: the images are written to a folder beside it")
    store = Store.open(db, create=False)
    if with_images:
        text, images = api.export_with_images(run_ref, output, db=store, fmt=fmt.value)
        _write_folder(image_folder(output), images)
    else:
        text = api.export(run_ref, db=store, fmt=fmt.value, destination=output)
    if output is None:
        sys.stdout.write(text)
        return
    # Write beside the target, then rename: a failure never leaves half a file.
    fd, tmp = tempfile.mkstemp(dir=output.resolve().parent, prefix=f".{output.name}.")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    os.replace(tmp, output)


def _write_folder(folder: Path, files: dict[str, bytes]) -> None:
    """The images in a folder filled beside the target and renamed into place (never half written)."""
    parent = folder.resolve().parent
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{folder.name}."))
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data)
        if folder.is_dir():
            strangers = [f.name for f in folder.iterdir() if not _IMAGE_NAME.fullmatch(f.name)]
            if strangers:
                raise UserError(f"{folder} holds files medops did not export ({strangers[0]}, ...); choose another -o")
            shutil.rmtree(folder)  # an earlier export's images: replaced whole
        elif folder.exists():
            raise UserError(f"{folder} exists and is not a folder; move it or choose another -o")
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
