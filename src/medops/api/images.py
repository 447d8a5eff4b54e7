"""Images that a run's items carry (content parts), served by digest from the store."""

from __future__ import annotations

from medops.api.runs import StoreRef, open_store
from medops.content import digests
from medops.errors import NotFound
from medops.store import queries


def run_image(run_ref: str, sha256: str, *, db: StoreRef = None) -> tuple[str, bytes]:
    """(media type, bytes) of an image one of the run's items holds; NotFound for any other digest,
    so a run's page can show only its own images."""
    store = open_store(db)
    run = store.find_run(run_ref)
    stored = queries.item_set(store, run.item_set, images=False) if run.item_set else None
    if stored is None or sha256 not in digests(stored[2]):
        raise NotFound(f"run '{run_ref}' has no image sha256:{sha256}")
    return queries.blob(store, sha256)
