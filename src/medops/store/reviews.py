"""Review sets and their labels: every read and write of the review tables (medops.review)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from medops.errors import NotFound, UserError
from medops.store.repository import Store
from medops.store.schema import ReviewAdjudication, ReviewExample, ReviewLabel, ReviewSet


def create_set(store: Store, fields: dict[str, Any], examples: list[dict[str, Any]]) -> ReviewSet:
    """One transaction: the set and every example, or nothing (a taken name is a UserError)."""
    try:
        with store.session() as s:
            review_set = ReviewSet(**fields)
            s.add(review_set)
            s.flush()
            s.add_all(ReviewExample(set_id=review_set.id, **example) for example in examples)
    except IntegrityError:
        raise UserError(f"a review set named '{fields['name']}' already exists") from None
    return review_set


def find_set(store: Store, name: str) -> ReviewSet:
    with store.session() as s:
        found = s.scalar(select(ReviewSet).where(ReviewSet.name == name))
    if found is None:
        raise NotFound(f"no review set named '{name}' (see `medops review list`)")
    return found


def list_sets(store: Store) -> list[tuple[ReviewSet, int]]:
    """Every set, oldest first, with its number of labels."""
    with store.session() as s:
        counts = dict(s.execute(select(ReviewLabel.set_id, func.count()).group_by(ReviewLabel.set_id)).all())
        return [(r, counts.get(r.id, 0)) for r in s.scalars(select(ReviewSet).order_by(ReviewSet.id))]


def sets_of_run(store: Store, run_id: int) -> list[ReviewSet]:
    with store.session() as s:
        return list(s.scalars(select(ReviewSet).where(ReviewSet.run_id == run_id).order_by(ReviewSet.id)))


def examples(store: Store, set_id: int) -> list[ReviewExample]:
    with store.session() as s:
        return list(
            s.scalars(select(ReviewExample).where(ReviewExample.set_id == set_id).order_by(ReviewExample.position))
        )


def labels(store: Store, set_id: int) -> list[ReviewLabel]:
    with store.session() as s:
        return list(
            s.scalars(
                select(ReviewLabel)
                .where(ReviewLabel.set_id == set_id)
                .order_by(ReviewLabel.position, ReviewLabel.criterion_index, ReviewLabel.id)
            )
        )


def save_labels(
    store: Store,
    set_id: int,
    reviewer: str,
    rows: list[tuple[int, int, bool | None]],
    source: str,
    comments: dict[int, str] | None = None,
) -> None:
    """A reviewer's labels ``(position, criterion_index, met)`` in one transaction (``met`` None:
    unsure); a label the reviewer gave before for the same criterion is replaced. ``comments``:
    criterion index -> the reviewer's note on it."""
    comments = comments or {}
    with store.session() as s:
        for position, criterion, met in rows:
            s.execute(
                delete(ReviewLabel).where(
                    ReviewLabel.set_id == set_id,
                    ReviewLabel.position == position,
                    ReviewLabel.criterion_index == criterion,
                    ReviewLabel.reviewer == reviewer,
                )
            )
            s.add(
                ReviewLabel(
                    set_id=set_id,
                    position=position,
                    criterion_index=criterion,
                    reviewer=reviewer,
                    met=met,
                    source=source,
                    comment=comments.get(criterion) or None,
                )
            )


def set_blinded(store: Store, set_id: int, blinded: bool) -> None:
    with store.session() as s:
        s.get(ReviewSet, set_id).blinded = blinded


def adjudications(store: Store, set_id: int) -> list[ReviewAdjudication]:
    with store.session() as s:
        return list(s.scalars(select(ReviewAdjudication).where(ReviewAdjudication.set_id == set_id)))


def save_adjudication(store: Store, set_id: int, position: int, criterion: int, met: bool, actor: str) -> None:
    """The final label of one criterion (replacing an earlier final label; reviewers' labels untouched)."""
    with store.session() as s:
        s.execute(
            delete(ReviewAdjudication).where(
                ReviewAdjudication.set_id == set_id,
                ReviewAdjudication.position == position,
                ReviewAdjudication.criterion_index == criterion,
            )
        )
        s.add(ReviewAdjudication(set_id=set_id, position=position, criterion_index=criterion, met=met, actor=actor))
