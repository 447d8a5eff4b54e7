"""Every read of a run's rows, in one place: the rest of medops asks here and never opens a
session. Rows come back detached (plain ORM objects or tuples), safe to use after the call."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import func, select

from medops.content import digests, unkeyed
from medops.errors import NotFound, UserError
from medops.store.repository import Store
from medops.store.schema import Answer, Blob, Grade, ItemSet, ItemSetMember, Response, StoredItem

Key = tuple[int, int]  # (item_index, repeat)


def responses(store: Store, run_id: int) -> dict[Key, Response]:
    """(example_index, repeat) -> the stored response (or the failure that ended its tries)."""
    with store.session() as s:
        return {(r.example_index, r.repeat): r for r in s.scalars(select(Response).where(Response.run_id == run_id))}


def grades(store: Store, run_id: int) -> dict[tuple[int, int, int], Grade]:
    """(example_index, repeat, criterion_index) -> the stored verdict (criteria_met None: ungraded)."""
    with store.session() as s:
        return {
            (g.example_index, g.repeat, g.criterion_index): g
            for g in s.scalars(select(Grade).where(Grade.run_id == run_id))
        }


def verdicts(store: Store, run_id: int) -> dict[Key, dict[int, bool | None]]:
    """(example_index, repeat) -> criterion_index -> met; the scoring hot path, so columns only."""
    found: dict[Key, dict[int, bool | None]] = {}
    with store.session() as s:
        for index, repeat, criterion, met in s.execute(
            select(Grade.example_index, Grade.repeat, Grade.criterion_index, Grade.criteria_met).where(
                Grade.run_id == run_id
            )
        ):
            found.setdefault((index, repeat), {})[criterion] = met
    return found


def response_texts(store: Store, run_id: int) -> dict[Key, str | None]:
    with store.session() as s:
        return {
            (index, repeat): text
            for index, repeat, text in s.execute(
                select(Response.example_index, Response.repeat, Response.text).where(Response.run_id == run_id)
            )
        }


def answers(store: Store, run_id: int) -> dict[Key, Answer]:
    """Exam runs: (item_index, repeat) -> the letter read and whether it was right."""
    with store.session() as s:
        return {(a.item_index, a.repeat): a for a in s.scalars(select(Answer).where(Answer.run_id == run_id))}


def truncated(store: Store, run_id: int) -> set[Key]:
    """Jobs whose generation stopped at the length limit."""
    with store.session() as s:
        return set(
            s.execute(
                select(Response.example_index, Response.repeat).where(
                    Response.run_id == run_id, Response.finish_reason == "length"
                )
            ).all()
        )


def ungraded_counts(store: Store, run_id: int) -> tuple[int, int]:
    """(criteria stored, of which ungraded)."""
    with store.session() as s:
        total, missing = s.execute(
            select(func.count(), func.count().filter(Grade.criteria_met.is_(None))).where(Grade.run_id == run_id)
        ).one()
    return int(total), int(missing)


def item_set(
    store: Store, sha256: str, *, images: bool = True
) -> tuple[str, dict[str, Any], list[dict[str, Any]]] | None:
    """A stored item set: (kind, meta, item records in order), or None when the store lacks it.
    Images come back as ``data:`` URIs read from ``blobs``; with ``images=False`` as the
    ``sha256:<hex>`` the items carry."""
    with store.session() as s:
        found = s.get(ItemSet, sha256)
        if found is None:
            return None
        rows = s.execute(
            select(StoredItem.content)
            .join(ItemSetMember, ItemSetMember.item_sha256 == StoredItem.sha256)
            .where(ItemSetMember.set_sha256 == sha256)
            .order_by(ItemSetMember.position)
        ).all()
        records = [row[0] for row in rows]
        if images and digests(records):
            records = unkeyed(records, functools.cache(lambda sha: _blob(s, sha)))
        return found.kind, dict(found.meta), records


def _blob(session: Any, sha256: str) -> tuple[str, bytes]:
    row = session.get(Blob, sha256)
    if row is None:
        raise UserError(f"the store lacks image sha256:{sha256} that an item refers to")
    return row.media_type, row.data


def blob(store: Store, sha256: str) -> tuple[str, bytes]:
    """An image's (media type, bytes) by digest; NotFound when the store has no such image."""
    with store.session() as s:
        row = s.get(Blob, sha256)
        if row is None:
            raise NotFound(f"no image sha256:{sha256}")
        return row.media_type, row.data


def call_notes(store: Store, run_id: int) -> list[dict[str, Any]]:
    """What before-call subscribers noted on each stored call of a run (e.g. the PHI policy applied
    and how many entities of each type were redacted); calls without notes are left out."""
    with store.session() as s:
        rows = [
            *s.scalars(select(Response.notes).where(Response.run_id == run_id, Response.notes.is_not(None))),
            *s.scalars(select(Grade.notes).where(Grade.run_id == run_id, Grade.notes.is_not(None))),
        ]
    return [row for row in rows if row]
