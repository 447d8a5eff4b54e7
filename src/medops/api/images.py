"""Images that a run's items carry (content parts), served by digest from the store, and written
beside an export when asked (``medops export --with-images``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medops.api.runs import StoreRef, export, open_store
from medops.content import digests
from medops.errors import NotFound
from medops.reports.export import render_rows
from medops.store import queries

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def run_image(run_ref: str, sha256: str, *, db: StoreRef = None) -> tuple[str, bytes]:
    """(media type, bytes) of an image one of the run's items holds; NotFound for any other digest,
    so a run's page can show only its own images."""
    store = open_store(db)
    run = store.find_run(run_ref)
    stored = queries.item_set(store, run.item_set, images=False) if run.item_set else None
    if stored is None or sha256 not in digests(stored[2]):
        raise NotFound(f"run '{run_ref}' has no image sha256:{sha256}")
    return queries.blob(store, sha256)


def image_folder(destination: str | Path) -> Path:
    """Where ``--with-images`` puts an export's images: ``<rows file stem>_images/`` beside it."""
    destination = Path(destination)
    return destination.with_name(f"{destination.stem}_images")


def export_with_images(
    run_ref: str, destination: str | Path, *, db: StoreRef = None, fmt: str = "jsonl", actor: str | None = None
) -> tuple[str, dict[str, bytes]]:
    """A run's export rows (as ``export``) with ``image_files``: each row's images as paths relative
    to the rows file (``<stem>_images/<sha256>.<ext>``); and those files' bytes by name, each image
    once, as the store keeps it (pixels only: no EXIF or DICOM tag). The caller writes both."""
    store = open_store(db, create=False)
    rows: list[dict[str, Any]] = export(run_ref, db=store, destination=destination, actor=actor)  # type: ignore[assignment]
    folder = image_folder(destination).name
    files: dict[str, bytes] = {}
    names: dict[str, str] = {}
    for row in rows:
        for sha in row.get("images") or ():
            if sha not in names:
                media_type, data = queries.blob(store, sha)
                names[sha] = f"{sha}.{EXTENSIONS.get(media_type, 'bin')}"
                files[names[sha]] = data
        if "images" in row:
            row["image_files"] = [f"{folder}/{names[sha]}" for sha in row["images"]]
    return render_rows(rows, fmt), files
