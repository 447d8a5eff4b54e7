"""Every read of a run's rows, in one place: the rest of medops asks here and never opens a
session. Rows come back detached (plain ORM objects or tuples), safe to use after the call."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, func, or_, select

from medops.content import digests, unkeyed
from medops.errors import NotFound, UserError
from medops.grading.judge import Verdict, aggregate
from medops.store.repository import Store
from medops.store.schema import Answer, Blob, Grade, ItemSet, ItemSetMember, Response, Run, StoredItem

Key = tuple[int, int]  # (item_index, repeat)


def responses(store: Store, run_id: int) -> dict[Key, Response]:
    """(example_index, repeat) -> the stored response (or the failure that ended its tries)."""
    with store.session() as s:
        return {(r.example_index, r.repeat): r for r in s.scalars(select(Response).where(Response.run_id == run_id))}


@dataclass(frozen=True)
class _Row:
    """The columns of a grade the aggregation reads."""

    criteria_met: bool | None
    p_met: float | None
    explanation: str | None = None
    ungraded_reason: str | None = None


def _jury(s: Any, run_id: int) -> tuple[str, list[str]] | None:
    """(reducer, juror names) when the run has several judges; None when its rows are one judge's."""
    judges = s.scalar(select(Run.judges).where(Run.id == run_id))
    if not judges or len(judges.get("judges") or []) < 2:
        return None
    return judges["reducer"], [judge["name"] for judge in judges["judges"]]


def _verdict(key: tuple[int, int, int], judge: str, grade: Any) -> Verdict:
    if grade is None:
        return Verdict(judge, key[2], None, reason="no verdict recorded")
    return Verdict(judge, key[2], grade.criteria_met, grade.p_met, grade.explanation, grade.ungraded_reason)


def _aggregate(jury: tuple[str, list[str]], by_key: dict[tuple[int, int, int], dict[str, Any]]):
    """The one aggregation step: each criterion's jurors' verdicts -> the criterion's verdict."""
    reducer, names = jury
    for key, by_judge in by_key.items():
        yield key, aggregate(reducer, [_verdict(key, name, by_judge.get(name)) for name in names])


_GRADE_COLUMNS = (
    Grade.run_id,
    Grade.example_index,
    Grade.repeat,
    Grade.criterion_index,
    Grade.judge,
    Grade.criteria_met,
    Grade.p_met,
    Grade.explanation,
    Grade.ungraded_reason,
)


def grades(store: Store, run_id: int) -> dict[tuple[int, int, int], Any]:
    """(example_index, repeat, criterion_index) -> the criterion's verdict (criteria_met None:
    ungraded): the stored row of a one-judge run, the jurors' verdicts aggregated for a jury. Each
    has the attributes of a ``Grade`` that say what was judged (``_GRADE_COLUMNS``: judge,
    criteria_met, p_met, explanation, ungraded_reason)."""
    with store.session() as s:
        jury = _jury(s, run_id)
        # the columns readers use, not ORM objects: a run's close reads every criterion of every sample
        rows = s.execute(select(*_GRADE_COLUMNS).where(Grade.run_id == run_id)).all()
    if jury is None:
        return {(g.example_index, g.repeat, g.criterion_index): g for g in rows}
    by_key: dict[tuple[int, int, int], dict[str, Grade]] = {}
    for g in rows:
        by_key.setdefault((g.example_index, g.repeat, g.criterion_index), {})[g.judge] = g
    return {
        key: Grade(
            run_id=run_id,
            example_index=key[0],
            repeat=key[1],
            criterion_index=key[2],
            judge=v.judge,
            criteria_met=v.met,
            p_met=v.p_met,
            explanation=v.explanation,
            ungraded_reason=v.reason,
        )
        for key, v in _aggregate(jury, by_key)
    }


def judge_grades(store: Store, run_id: int) -> dict[tuple[int, int, int], dict[str, Grade]]:
    """(example_index, repeat, criterion_index) -> judge name -> that judge's stored verdict."""
    found: dict[tuple[int, int, int], dict[str, Grade]] = {}
    with store.session() as s:
        for g in s.scalars(select(Grade).where(Grade.run_id == run_id)):
            found.setdefault((g.example_index, g.repeat, g.criterion_index), {})[g.judge] = g
    return found


def verdicts(store: Store, run_id: int, judge: str | None = None) -> dict[Key, dict[int, bool | None]]:
    """(example_index, repeat) -> criterion_index -> met (the aggregated verdict, or ``judge``'s
    own); the scoring hot path, so columns only."""
    found: dict[Key, dict[int, bool | None]] = {}
    with store.session() as s:
        jury = _jury(s, run_id) if judge is None else None
        where = [Grade.run_id == run_id] + ([Grade.judge == judge] if judge is not None else [])
        rows = s.execute(
            select(
                Grade.example_index, Grade.repeat, Grade.criterion_index, Grade.criteria_met, Grade.judge, Grade.p_met
            ).where(*where)
        ).all()
    if jury is None:
        for index, repeat, criterion, met, _, _ in rows:
            found.setdefault((index, repeat), {})[criterion] = met
        return found
    by_key: dict[tuple[int, int, int], dict[str, Any]] = {}
    for row in rows:
        by_key.setdefault((row.example_index, row.repeat, row.criterion_index), {})[row.judge] = _Row(
            row.criteria_met, row.p_met
        )
    for (index, repeat, criterion), v in _aggregate(jury, by_key):
        found.setdefault((index, repeat), {})[criterion] = v.met
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
    """(criteria stored, of which ungraded): criteria, not jurors' verdicts."""
    with store.session() as s:
        if _jury(s, run_id) is not None:
            met = [m for criteria in verdicts(store, run_id).values() for m in criteria.values()]
            return len(met), sum(m is None for m in met)
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
    and how many entities of each type were redacted); calls without notes are left out. Equal notes
    may be one object: read them, do not change them."""
    found: list[dict[str, Any]] = []
    with store.session() as s:
        for table in (Response, Grade):
            # most calls of a run carry the same note: each distinct one is read (and decoded) once
            text_of_notes = cast(table.notes, Text)
            distinct = s.execute(
                select(text_of_notes, func.count())
                .where(table.run_id == run_id, table.notes.is_not(None))
                .group_by(text_of_notes)
            )
            for raw, n in distinct:
                note = json.loads(raw) if raw is not None else None
                if note:
                    found += [note] * n
    return found


def failed_call_errors(store: Store, run_id: int) -> list[str]:
    """Why each call of a run that ended in a final failure failed: the model call's error, or
    the criterion's ungraded reason (the same outcomes ``Store.usage`` counts as failed)."""
    with store.session() as s:
        model = s.execute(
            select(Response.error).where(
                Response.run_id == run_id,
                Response.source == "model",
                or_(Response.error.is_not(None), Response.text.is_(None)),
            )
        ).all()
        grader = s.execute(
            select(Grade.ungraded_reason).where(Grade.run_id == run_id, Grade.criteria_met.is_(None))
        ).all()
    return [error or "no answer" for (error,) in [*model, *grader]]
