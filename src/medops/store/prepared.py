"""Prepared views of finished runs: written once (as the run ends, else on its first view), read a
page at a time (the dashboard) or whole (``medops report``).

A run page of a large run would otherwise read and rebuild every row of the run on its first view
in each server process. ``save`` keeps the summary the page shows and each sample's plain data in
list order; ``summary``, ``page`` and ``sample`` read them back under the run's key (its status and
end time), so a resumed run's old view is never read: it is prepared anew and replaces the old.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from medops.store.repository import Store
from medops.store.schema import PreparedSample, PreparedView


def summary(store: Store, run_id: int, key: str) -> dict[str, Any] | None:
    """The prepared summary of run ``run_id`` under ``key``; None when there is none (or it is stale)."""
    with store.session() as s:
        row = s.get(PreparedView, run_id)
        return row.summary if row is not None and row.key == key else None


def save(store: Store, run_id: int, key: str, prepared: dict[str, Any], samples: list[tuple[list[str], dict]]) -> bool:
    """Keep ``prepared`` and ``samples`` ((flags, record) in list order) for run ``run_id`` under ``key``,
    replacing an older view; when another process has just prepared the same run, its copy stays.
    False when the store cannot be written (a read-only copy): the caller serves what it built."""
    try:
        with store.session() as s:
            s.execute(delete(PreparedSample).where(PreparedSample.run_id == run_id))
            s.execute(delete(PreparedView).where(PreparedView.run_id == run_id))
            if samples:
                s.execute(  # the table's Core insert: one executemany, no ORM bulk bookkeeping per row
                    insert(PreparedSample.__table__),
                    [
                        {"run_id": run_id, "position": i, "flags": "|" + "|".join(flags) + "|", "record": record}
                        for i, (flags, record) in enumerate(samples)
                    ],
                )
            s.add(PreparedView(run_id=run_id, key=key, summary=prepared))
    except IntegrityError:  # prepared at the same moment elsewhere: the same content
        return True
    except SQLAlchemyError:
        return False
    return True


def page(store: Store, run_id: int, flag: str | None, offset: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
    """(position, record) of the prepared samples, in order, with ``flag`` when given, ``limit`` from ``offset``."""
    query = select(PreparedSample.position, PreparedSample.record).where(PreparedSample.run_id == run_id)
    if flag is not None:
        query = query.where(PreparedSample.flags.contains(f"|{flag}|"))
    query = query.order_by(PreparedSample.position).offset(max(offset, 0)).limit(max(limit, 0))
    with store.session() as s:
        return [(position, record) for position, record in s.execute(query)]


def records(store: Store, run_id: int) -> list[dict[str, Any]]:
    """Every prepared sample's plain data, in list order (a report lists them all)."""
    query = select(PreparedSample.record).where(PreparedSample.run_id == run_id).order_by(PreparedSample.position)
    with store.session() as s:
        return list(s.scalars(query))


def sample(store: Store, run_id: int, position: int) -> dict[str, Any] | None:
    with store.session() as s:
        row = s.get(PreparedSample, (run_id, position))
        return row.record if row is not None else None
