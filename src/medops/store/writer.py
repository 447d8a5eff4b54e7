"""Persisting results as they complete, off the event loop.

Each finished call is queued and written by one background thread. The thread commits
whatever has queued up in one transaction (group commit): under load that is tens of rows
per commit, at idle it is one. A kill -9 therefore loses only the calls still in flight and
the few microseconds of rows not yet handed to SQLite.
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, Table, insert
from sqlalchemy.dialects import postgresql, sqlite

from medops.events import EventBus, RowWritten

_STOP = object()


class StoreWriter:
    def __init__(self, engine: Engine, bus: EventBus | None = None):
        self._engine = engine
        self._bus = bus if bus is not None and bus.wants(RowWritten) else None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self.rows_written = 0
        self._inserts: dict[Table, Any] = {}
        self._thread = threading.Thread(target=self._run, name="medops-store-writer", daemon=True)
        self._thread.start()

    def add(self, table: Table, row: dict[str, Any]) -> None:
        if self._error is not None:
            raise RuntimeError("the store writer failed") from self._error
        self._queue.put((table, row))

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is _STOP:
                stopping = True
                batch.pop()
            if batch:
                try:
                    self._write(batch)
                except BaseException as exc:  # surfaced to the producer on its next add()
                    self._error = exc
                    return

    def _write(self, batch: list[tuple[Table, dict[str, Any]]]) -> None:
        by_table: dict[Table, list[dict[str, Any]]] = defaultdict(list)
        for table, row in batch:
            by_table[table].append(row)
        with self._engine.begin() as connection:
            for table, rows in by_table.items():
                connection.execute(self._insert(table), rows)
        self.rows_written += len(batch)
        if self._bus is not None:  # after the commit: subscribers see only rows that are stored
            for table, row in batch:
                self._bus.publish(RowWritten(table.name, row))

    def _insert(self, table: Table):
        """The table's insert, built once per table (every batch reuses it, and with it SQLAlchemy's
        cached compilation)."""
        statement = self._inserts.get(table)
        if statement is None:
            statement = self._inserts[table] = self._build_insert(table)
        return statement

    def _build_insert(self, table: Table):
        if table.name != "call_cache":
            return insert(table)
        # Two runs (or two identical criteria) may cache the same call at once: first one wins.
        dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(self._engine.dialect.name)
        return dialect.insert(table).on_conflict_do_nothing() if dialect else insert(table)

    def close(self) -> None:
        """Write everything queued, then stop. Raises if any write failed."""
        self._queue.put(_STOP)
        self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"the store writer failed: {self._error}") from self._error
