"""Reading and writing runs. The only module that knows how rows are laid out."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, case, delete, func, or_, select, update
from sqlalchemy.orm import Session

from medops import __version__
from medops.content import keyed
from medops.datasets.jsonl import FileFacts
from medops.errors import NotFound, UserError
from medops.events import EventBus
from medops.models.base import Completion
from medops.store.database import open_engine
from medops.store.schema import (
    Blob,
    CachedCall,
    Dataset,
    Grade,
    ItemSet,
    ItemSetMember,
    Response,
    Run,
    StoredItem,
    utcnow,
)
from medops.store.writer import StoreWriter

RUNNING, INTERRUPTED, COMPLETED, FAILED = "running", "interrupted", "completed", "failed"
INCOMPLETE = "incomplete"  # finished, but some calls ended in a final failure: resumable, never a pass


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def effective_status(run: Run) -> str:
    """A run left 'running' by a process that no longer exists (kill -9, power cut) was interrupted."""
    if run.status == RUNNING and run.hostname == socket.gethostname() and run.pid and not _process_alive(run.pid):
        return INTERRUPTED
    return run.status


@dataclass
class ExistingWork:
    """What a resumed run already has: never asked for again."""

    responses: dict[tuple[int, int], Response]
    grades: dict[tuple[int, int, int, str], Grade]  # (example_index, repeat, criterion_index, judge)


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._cache_connection: Any = None
        self._cache_cursor: Any = None
        self._cache_sql = ""

    @classmethod
    def open(cls, db: str | None, *, create: bool = True) -> Store:
        """The store at ``db``; readers pass ``create=False`` so a mistyped path is an error."""
        return cls(open_engine(db, create=create))

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    # datasets and runs -------------------------------------------------------------
    def register_dataset(self, name: str, facts: FileFacts, n_examples: int) -> int:
        with self.session() as s:
            found = s.scalars(
                select(Dataset).where(Dataset.sha256 == facts.sha256, Dataset.name == name, Dataset.path == facts.path)
            ).first()
            if found:
                return found.id
            row = Dataset(
                name=name, path=facts.path, sha256=facts.sha256, size_bytes=facts.size_bytes, n_examples=n_examples
            )
            s.add(row)
            s.flush()
            return row.id

    def create_run(
        self,
        *,
        name: str | None,
        benchmark: str,
        dataset_id: int,
        model: str | None,
        grader: str | None,
        config: dict[str, Any],
        item_set: str | None = None,
        plan: list[tuple[int, int]] | None = None,
    ) -> int:
        with self.session() as s:
            if name and s.scalars(select(Run.id).where(Run.name == name)).first() is not None:
                raise UserError(f"a run named '{name}' already exists; pick another --name or --resume it")
            run = Run(
                name=name,
                benchmark=benchmark,
                dataset_id=dataset_id,
                status=RUNNING,
                model=model,
                grader=grader,
                config=config,
                medops_version=__version__,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                item_set=item_set,
                plan=[list(job) for job in plan] if plan is not None else None,
            )
            s.add(run)
            s.flush()
            return run.id

    def save_item_set(self, kind: str, meta: dict[str, Any], records: list[dict[str, Any]]) -> str:
        """Store a loaded dataset's items once, by content; returns the set's sha256. Idempotent and
        safe when several processes save the same set at once. Images are kept once, by digest
        (``blobs``); the items carry ``sha256:<hex>`` in their place."""
        blobs: dict[str, tuple[str, bytes]] = {}
        records = [keyed(record, blobs) for record in records]
        hashes = [content_sha256(record) for record in records]
        set_sha = content_sha256({"kind": kind, "meta": meta, "items": hashes})
        with self.session() as s:
            if s.get(ItemSet, set_sha) is not None:
                return set_sha
            if blobs:
                s.execute(
                    _insert_ignoring_duplicates(s, Blob),
                    [
                        {
                            "sha256": sha,
                            "media_type": media,
                            "size_bytes": len(data),
                            "data": data,
                            "created_at": utcnow(),
                        }
                        for sha, (media, data) in blobs.items()
                    ],
                )
            known = set()
            for start in range(0, len(hashes), 500):
                chunk = hashes[start : start + 500]
                known.update(s.scalars(select(StoredItem.sha256).where(StoredItem.sha256.in_(chunk))))
            new = {h: r for h, r in zip(hashes, records, strict=True) if h not in known}
            if new:
                s.execute(
                    _insert_ignoring_duplicates(s, StoredItem), [{"sha256": h, "content": r} for h, r in new.items()]
                )
            s.execute(
                _insert_ignoring_duplicates(s, ItemSet),
                [{"sha256": set_sha, "kind": kind, "meta": meta, "n_items": len(records), "created_at": utcnow()}],
            )
            s.execute(
                _insert_ignoring_duplicates(s, ItemSetMember),
                [{"set_sha256": set_sha, "position": i, "item_sha256": h} for i, h in enumerate(hashes)],
            )
        return set_sha

    def discard_run(self, run_id: int) -> None:
        """Remove a run that never started (its pipeline could not be built): nothing half-written."""
        with self.session() as s:
            s.execute(delete(Run).where(Run.id == run_id))

    def find_run(self, ref: str) -> Run:
        """A run by id or by name."""
        with self.session() as s:
            run = s.get(Run, int(ref)) if ref.isdigit() else None
            run = run or s.scalars(select(Run).where(Run.name == ref)).first()
            if run is None:
                raise NotFound(f"no run '{ref}' in this store (see `medops runs list`)")
            return run

    def dataset(self, dataset_id: int) -> Dataset:
        with self.session() as s:
            return s.get_one(Dataset, dataset_id)

    def list_runs(self) -> list[tuple[Run, Dataset]]:
        with self.session() as s:
            return [(run, dataset) for run, dataset in s.execute(select(Run, Dataset).join(Dataset).order_by(Run.id))]

    def claim_for_resume(self, run_id: int) -> None:
        """Mark the run as ours again; drop failed rows (failed calls, ungraded verdicts) so they are
        asked again, keep everything that succeeded (the pipeline reads it back: ``existing_work``)."""
        with self.session() as s:
            s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(status=RUNNING, hostname=socket.gethostname(), pid=os.getpid(), error=None, finished_at=None)
            )
            s.execute(delete(Grade).where(Grade.run_id == run_id, Grade.criteria_met.is_(None)))
            s.execute(
                delete(Response).where(
                    Response.run_id == run_id, or_(Response.error.is_not(None), Response.text.is_(None))
                )
            )

    def existing_work(self, run_id: int) -> ExistingWork:
        with self.session() as s:
            responses = {
                (r.example_index, r.repeat): r for r in s.scalars(select(Response).where(Response.run_id == run_id))
            }
            grades = {
                (g.example_index, g.repeat, g.criterion_index, g.judge): g
                for g in s.scalars(select(Grade).where(Grade.run_id == run_id))
            }
        return ExistingWork(responses, grades)

    def record_judges(self, run_id: int, judges: dict[str, Any]) -> None:
        """Who grades the run (names, identities, reducer), for readers and resume checks."""
        with self.session() as s:
            s.execute(update(Run).where(Run.id == run_id).values(judges=judges))

    def usage(self, run_id: int) -> dict[str, dict[str, int]]:
        """Per role: network ``calls`` (retries included; none for answers from the store),
        ``rejected`` (attempts the endpoint refused with 429: not calls, not billed), ``cached``
        (call outcomes answered from the store), ``failed`` (outcomes that ended in a final
        failure: an error, null content, an unreadable grader reply), ``recorded`` (every outcome
        stored) and the tokens paid for. One outcome is a response or a criterion verdict."""

        def totals(table, failed, where) -> dict[str, int]:
            live = table.cached.is_(False)
            row = s.execute(
                select(
                    func.coalesce(func.sum(case((live, table.calls), else_=0)), 0),
                    func.coalesce(func.sum(case((live, table.rejected), else_=0)), 0),
                    func.coalesce(func.sum(case((table.cached.is_(True), 1), else_=0)), 0),
                    func.coalesce(func.sum(case((failed, 1), else_=0)), 0),
                    func.count(),
                    func.coalesce(func.sum(case((live, table.prompt_tokens), else_=0)), 0),
                    func.coalesce(func.sum(case((live, table.completion_tokens), else_=0)), 0),
                ).where(table.run_id == run_id, *where)
            ).one()
            keys = ("calls", "rejected", "cached", "failed", "recorded", "prompt_tokens", "completion_tokens")
            return {key: int(value) for key, value in zip(keys, row, strict=True)}

        with self.session() as s:
            return {
                "model": totals(
                    Response, or_(Response.error.is_not(None), Response.text.is_(None)), [Response.source == "model"]
                ),
                "grader": totals(Grade, Grade.criteria_met.is_(None), []),
            }

    def update_summary(self, run_id: int, summary: dict[str, Any]) -> None:
        with self.session() as s:
            s.execute(update(Run).where(Run.id == run_id).values(summary=summary))

    def finish_run(
        self,
        run_id: int,
        status: str,
        *,
        wall_seconds: float,
        summary: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        with self.session() as s:
            s.execute(
                update(Run)
                .where(Run.id == run_id)
                .values(status=status, finished_at=utcnow(), wall_seconds=wall_seconds, summary=summary, error=error)
            )

    # per-call rows -------------------------------------------------------------------
    def writer(self, bus: EventBus | None = None) -> StoreWriter:
        return StoreWriter(self.engine, bus)

    def cache_get(self, key: str) -> Completion | None:
        """One primary-key lookup per model call: on the hot path, so it skips SQLAlchemy's
        statement building and runs a fixed query on a raw DB-API connection."""
        if self._cache_cursor is None:
            self._cache_connection = self.engine.raw_connection()
            self._cache_cursor = self._cache_connection.cursor()
            marker = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
            self._cache_sql = (
                "SELECT text, finish_reason, prompt_tokens, completion_tokens, extra "
                f"FROM call_cache WHERE key = {marker}"
            )
        self._cache_cursor.execute(self._cache_sql, (key,))
        row = self._cache_cursor.fetchone()
        if self.engine.dialect.name != "sqlite":
            self._cache_connection.commit()  # end the read transaction: never hold a snapshot open
        if row is None:
            return None
        extra = row[4]
        if isinstance(extra, str):
            extra = json.loads(extra)
        return Completion(
            text=row[0],
            finish_reason=row[1],
            prompt_tokens=row[2],
            completion_tokens=row[3],
            cached=True,
            extra=extra or {},
        )

    def close(self) -> None:
        if self._cache_connection is not None:
            self._cache_connection.close()
            self._cache_connection = self._cache_cursor = None


def content_sha256(value: Any) -> str:
    """The sha256 of a JSON value in canonical form: the address of stored items and item sets."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _insert_ignoring_duplicates(session: Session, model: type) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL (another process may insert first)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(model).on_conflict_do_nothing()


def response_row(run_id: int, index: int, repeat: int, item_id: str, c: Completion, source: str) -> dict[str, Any]:
    """A ``responses`` row: the answer (or the error that ended its tries) and what it cost."""
    return {
        "run_id": run_id,
        "example_index": index,
        "repeat": repeat,
        "prompt_id": item_id,
        "text": c.text,
        "source": source,
        "finish_reason": c.finish_reason,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "latency_s": c.latency_s,
        "calls": c.calls,
        "rejected": c.rejected,
        "cached": c.cached,
        "error": c.error,
        "notes": c.notes or None,
        "created_at": utcnow(),
    }


def cache_row(key: str, completion: Completion) -> dict[str, Any]:
    return {
        "key": key,
        "text": completion.text,
        "finish_reason": completion.finish_reason,
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "extra": completion.extra or None,
        "created_at": utcnow(),
    }


RESPONSES, GRADES, CACHE = Response.__table__, Grade.__table__, CachedCall.__table__
