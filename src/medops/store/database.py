"""Opening the store: engine, SQLite pragmas, and migrations to the latest schema.

Opening is safe to race: several medops processes starting together on a new store (a CI
matrix, a shell loop) migrate it exactly once, under a lock that works across processes
(``BEGIN IMMEDIATE`` on SQLite, a transaction-scoped advisory lock on PostgreSQL), and the
revision is read again once the lock is held. A database that is not a medops store, or
one migrated by a newer medops, is refused in one line before anything is written to it.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError, SQLAlchemyError

from medops.errors import UserError

if TYPE_CHECKING:
    from alembic.config import Config

DEFAULT_DB = "medops.db"
VERSION_TABLE = "alembic_version"
# pg_advisory_xact_lock key: the same for every medops process, unlikely to be anyone else's
_PG_LOCK_KEY = int.from_bytes(hashlib.sha256(b"medops store migrations").digest()[:8], "big", signed=True)


def database_url(db: str | None) -> str:
    """``--db`` / ``MEDOPS_DB`` as a URL or a file path; ``./medops.db`` by default."""
    value = db or os.environ.get("MEDOPS_DB") or DEFAULT_DB
    return value if "://" in value else f"sqlite:///{Path(value).expanduser()}"


def describe(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # First, so that a process starting beside another waits for its lock instead of failing
    # (switching a new file to WAL takes one too).
    cursor.execute("PRAGMA busy_timeout=10000")
    # WAL: readers never block the writer; NORMAL: a commit survives a process crash
    # (kill -9), with no fsync per commit.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    return config


def head_revision() -> str:
    """The schema revision this medops migrates every store to."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


@functools.cache
def migration_revisions() -> tuple[frozenset[str], str]:
    """(every revision of the migrations directory, the head), read from the scripts' own
    ``revision`` / ``down_revision`` lines: opening a store that is already at the head then needs
    no alembic (its import, with mako and pygments, was a tenth of a run's start-up). Alembic reads
    the same lines (``tests/store`` checks that both agree)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (Path(__file__).with_name("migrations") / "versions").glob("*.py"):
        found = dict(_ASSIGNMENT.findall(script.read_text("utf-8")))
        if "revision" not in found:
            continue
        revisions.add(ast.literal_eval(found["revision"]))
        down = ast.literal_eval(found.get("down_revision", "None"))
        parents.update([down] if isinstance(down, str) else down or ())
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the store's migrations have {len(heads)} heads: {sorted(heads)}")
    return frozenset(revisions), next(iter(heads))


# SQLite files this process has opened. An immutable read takes no locks, and closing its file
# would drop this process's POSIX locks on the file, held by the other connections (SQLite's
# locks are per process): so a file this process may still use is never read immutable.
_OPENED_HERE: set[Path] = set()


def open_engine(db: str | None, *, create: bool = True) -> Engine:
    """The store at ``db``, migrated to the latest schema. ``create=False`` is how every command
    that only reads opens it (audit verify, runs, report, export, gate, serve, monitor checks):
    a missing or empty store is then a UserError naming it, never a new store created by a typo."""
    url = database_url(db)
    try:
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise UserError(f"cannot use database {describe(url)}: {exc}") from None
    where = describe(url)
    sqlite_file = None
    if engine.dialect.name == "sqlite":
        if engine.url.database and engine.url.database != ":memory:":
            sqlite_file = Path(engine.url.database).expanduser()
            where = str(sqlite_file)
            parent = sqlite_file.resolve().parent
            if not parent.is_dir():
                raise UserError(f"cannot use database {describe(url)}: folder {parent} does not exist")
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        _migrate(engine, where, sqlite_file, create)
    except OperationalError as exc:
        raise UserError(f"cannot open database {describe(url)}: {exc.orig}") from None
    except DatabaseError as exc:
        raise UserError(f"cannot open database {describe(url)}: {exc.orig}; is it a medops store?") from None
    if sqlite_file is not None:
        _OPENED_HERE.add(sqlite_file.resolve())
    return engine


def _migrate(engine: Engine, where: str, sqlite_file: Path | None, create: bool = True) -> None:
    """Bring the store to the latest schema; a no-op (and no write) when it already is. Without
    ``create``, a database with no medops schema yet is refused instead of initialised."""
    known, head = migration_revisions()
    revision = _revision_before_writing(engine, known, where, sqlite_file)
    if revision is None and not create:
        raise UserError(f"no medops store at {where}; give --db (or MEDOPS_DB) an existing store")
    if revision == head:
        return
    from alembic import command  # only when a migration is due

    with exclusive_transaction(engine, _PG_LOCK_KEY) as connection:
        if _medops_revision(connection, known, where) == head:  # another process got there first
            return
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _revision_before_writing(engine: Engine, known: frozenset[str], where: str, sqlite_file: Path | None) -> str | None:
    """The store's revision, read without changing anything (see ``_medops_revision``).

    SQLite is read on a connection of its own, without the pragmas: switching a stranger's
    file to WAL would already be a write. A missing or empty file is a new store. A WAL-mode
    file that no process has open (no ``-wal`` beside it) is read as immutable, so that not
    even the ``-wal``/``-shm`` companions a reader creates appear; should that read meet a
    writer that came in between, it is read again the ordinary read-only way. A file this process
    opened before is never read immutable (see ``_OPENED_HERE``).
    """
    if engine.dialect.name != "sqlite":
        with engine.connect() as connection:
            return _medops_revision(connection, known, where)
    if sqlite_file is None or not sqlite_file.is_file() or sqlite_file.stat().st_size == 0:
        return None
    header = _header(sqlite_file)
    if not header.startswith(b"SQLite format 3\x00"):
        raise UserError(
            f"{where} is not a SQLite database, so not a medops store; give --db a new file or a medops store"
        )
    uri = f"file:{quote(str(sqlite_file.resolve()))}?mode=ro"
    wal_mode, wal_file = header[18:20] == b"\x02\x02", sqlite_file.with_name(sqlite_file.name + "-wal")
    if wal_mode and not wal_file.exists() and sqlite_file.resolve() not in _OPENED_HERE:
        try:
            return _read_revision(f"{uri}&immutable=1", known, where)
        except DatabaseError:
            pass
    return _read_revision(uri, known, where)


# One descriptor per SQLite file, kept open for the life of the process. Closing a descriptor of
# a file drops every POSIX lock this process holds on it, the locks of its SQLite connections
# included (SQLite's own connections share their locks and never do that): a writer in another
# process could then reset the WAL under them, and this process would read stale data and at its
# next write leave a malformed database.
_HEADER_FILES: dict[Path, int] = {}


def _header(sqlite_file: Path) -> bytes:
    """The first 20 bytes of the file (the SQLite magic string and the WAL-mode bytes)."""
    path = sqlite_file.resolve()
    fd = _HEADER_FILES.get(path)
    if fd is None or os.fstat(fd).st_ino != path.stat().st_ino:  # new, or replaced by another file
        fd = _HEADER_FILES[path] = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    return os.pread(fd, 20, 0)


def _read_revision(uri: str, known: frozenset[str], where: str) -> str | None:
    reader = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, timeout=10))
    try:
        with reader.connect() as connection:
            return _medops_revision(connection, known, where)
    finally:
        reader.dispose()


@contextlib.contextmanager
def exclusive_transaction(engine: Engine, lock_key: int) -> Iterator[Connection]:
    """A connection in a transaction that holds a store-wide lock until it commits, so a
    read-then-write (migrating, appending to the audit chain) is atomic across processes:
    SQLite's write lock taken up front (``BEGIN IMMEDIATE``), or on PostgreSQL a
    transaction-scoped advisory lock on ``lock_key``."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            # The driver must not open transactions of its own: it would start DDL outside
            # one. BEGIN IMMEDIATE takes the write lock now, so check and write are atomic.
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.exec_driver_sql("ROLLBACK")
                raise
            connection.exec_driver_sql("COMMIT")
        return
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
        yield connection


def _medops_revision(connection: Connection, known: frozenset[str], where: str) -> str | None:
    """The store's schema revision (``None``: a new, empty store), or a UserError when the
    database is not a medops store or comes from a newer medops."""
    from medops.store.schema import Base

    inspector = inspect(connection)
    names = set(inspector.get_table_names()) | set(inspector.get_view_names())
    if not names:
        return None
    medops_tables = names & set(Base.metadata.tables)
    revisions = (
        [row[0] for row in connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]
        if VERSION_TABLE in names
        else []
    )
    if not revisions:
        if names <= {VERSION_TABLE}:
            return None
        shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
        raise UserError(
            f"{where} is not a medops store (it has tables {shown} but no medops schema); "
            "give --db a new file or a medops store"
        )
    unknown = [r for r in revisions if r not in known]
    if unknown and medops_tables:
        raise UserError(f"{where} was migrated by a newer medops (revision {unknown[0]}); upgrade medops to use it")
    if unknown:
        raise UserError(
            f"{where} is not a medops store (its schema revision {unknown[0]} is not medops's); "
            "give --db a new file or a medops store"
        )
    return revisions[0]
