"""Backups of a store and restoring them (``medops store backup`` / ``medops store restore``).

SQLite: SQLite's online backup API (``sqlite3.Connection.backup``), page by page under a read
transaction, so the copy is consistent while the gateway and other commands keep writing; a
restore is the same copy the other way, into the store at ``--db``. PostgreSQL: ``pg_dump
--format=custom`` (one snapshot, so consistent and online) and ``pg_restore --clean
--if-exists --single-transaction``; the password goes to them in ``PGPASSWORD``, never on the
command line. The file's first bytes say which it is, and a backup only restores into a store of
its own kind.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import make_url

from medops.errors import UserError
from medops.store.database import database_url, describe

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"


def kind_of_file(path: Path) -> str:
    """``sqlite`` or ``postgresql`` from a backup file's first bytes; UserError for anything else."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise UserError(f"{path} is not a medops backup (neither a SQLite file nor a pg_dump archive)")


def _sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise UserError(f"cannot back up or restore {describe(url)}: not a file")
    return Path(database).expanduser()


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as libpq reads it (no driver, no password) and the environment carrying the password."""
    parsed = make_url(url)
    env = {**os.environ}
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise UserError(f"{name} is not installed (PostgreSQL's client tools, e.g. Debian's postgresql-client)")
    return found


def backup(db: str | None, output: Path) -> str:
    """Write a consistent copy of the store at ``db`` to ``output`` (atomically: a partial copy is
    never left under the name); returns the store's kind."""
    url = database_url(db)
    output = Path(output)
    parent = output.expanduser().resolve().parent
    if not parent.is_dir():
        raise UserError(f"cannot write {output}: folder {parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{output.name}.")
    os.close(fd)
    try:
        if url.startswith("sqlite"):
            kind = "sqlite"
            with (
                closing(sqlite3.connect(_sqlite_file(url), timeout=30)) as source,
                closing(sqlite3.connect(tmp)) as copy,
            ):
                source.backup(copy)
                copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
                checked = copy.execute("PRAGMA quick_check").fetchone()
                if checked != ("ok",):
                    raise UserError(f"the backup of {describe(url)} does not check out: {checked[0][:200]}")
        elif make_url(url).get_backend_name() == "postgresql":
            kind = "postgresql"
            plain, env = _libpq(url)
            done = subprocess.run(
                [_tool("pg_dump"), "--format=custom", "--no-owner", "--file", tmp, plain],
                capture_output=True,
                text=True,
                env=env,
            )
            if done.returncode != 0:
                raise UserError(f"pg_dump of {describe(url)} failed: {_last_line(done.stderr)}")
        else:
            raise UserError(f"cannot back up {describe(url)}: only SQLite and PostgreSQL stores")
        os.replace(tmp, output)
    except sqlite3.Error as exc:
        raise UserError(f"cannot back up {describe(url)}: {exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return kind


def restore(backup_file: Path, db: str | None) -> str:
    """Replace the store at ``db`` with the backup's content; returns its kind. The services
    writing to it should be stopped first."""
    url = database_url(db)
    kind = kind_of_file(backup_file)
    target = "sqlite" if url.startswith("sqlite") else make_url(url).get_backend_name()
    if kind != target:
        raise UserError(f"{backup_file} is a {kind} backup; --db {describe(url)} is a {target} store")
    if kind == "sqlite":
        path = _sqlite_file(url)
        if not path.resolve().parent.is_dir():
            raise UserError(f"cannot restore into {path}: folder {path.resolve().parent} does not exist")
        try:
            source = sqlite3.connect(f"file:{Path(backup_file).resolve()}?mode=ro", uri=True)
            with closing(source), closing(sqlite3.connect(path)) as store_file:
                source.backup(store_file)
        except sqlite3.Error as exc:
            raise UserError(f"cannot restore {backup_file} into {path}: {exc}") from None
        return kind
    plain, env = _libpq(url)
    done = subprocess.run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "-d",
            plain,
            str(backup_file),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise UserError(f"pg_restore into {describe(url)} failed: {_last_line(done.stderr)}")
    return kind


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no message"
