"""Opening the store: engine, SQLite pragmas, and migrations to the latest schema."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from medops.errors import UserError

DEFAULT_DB = "medops.db"


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
    # WAL: readers never block the writer; NORMAL: a commit survives a process crash
    # (kill -9), with no fsync per commit.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    return config


def open_engine(db: str | None) -> Engine:
    url = database_url(db)
    try:
        engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    except (ArgumentError, ImportError, SQLAlchemyError) as exc:
        raise UserError(f"cannot use database {describe(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        if engine.url.database and engine.url.database != ":memory:":
            parent = Path(engine.url.database).expanduser().resolve().parent
            if not parent.is_dir():
                raise UserError(f"cannot use database {describe(url)}: folder {parent} does not exist")
    try:
        _migrate(engine)
    except OperationalError as exc:
        raise UserError(f"cannot open database {describe(url)}: {exc.orig}") from None
    return engine


def _migrate(engine: Engine) -> None:
    config = _alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.begin() as connection:
        if MigrationContext.configure(connection).get_current_revision() == head:
            return
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
