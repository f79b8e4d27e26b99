"""Engines and schema: SQLite in WAL mode by default, PostgreSQL by URL; migrations by Alembic."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from importlib import resources
from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text

# How long a request waits for the store before it answers 503 (problems.py), on either backend.
LOCK_WAIT_SECONDS = 10
POSTGRES_LIMITS = {
    "connect_timeout": 5,
    "options": f"-c lock_timeout={LOCK_WAIT_SECONDS}s -c statement_timeout={2 * LOCK_WAIT_SECONDS}s",
}
# Serialises migrations of several servers starting at once on one PostgreSQL database.
MIGRATION_LOCK = 7_318_204_561


def make_engine(url: str, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """An engine that waits for a busy store at most about LOCK_WAIT_SECONDS instead of failing at
    once or hanging: SQLite connections use WAL and a busy timeout, PostgreSQL ones lock and
    statement timeouts, and a request waits as long for a pooled connection.

    JSON columns go through orjson: every score writes a ~35 kB explanation before its 201.
    Statement parameters stay out of error messages: they hold people's records.
    """
    if url.startswith("sqlite:///"):  # the default store's folder; settings refuse any other missing one
        Path(url.removeprefix("sqlite:///")).parent.mkdir(exist_ok=True)
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=LOCK_WAIT_SECONDS,
        hide_parameters=True,
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
        connect_args=POSTGRES_LIMITS if url.startswith("postgresql") else {},
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        if engine.url.database:
            event.listen(engine, "do_connect", partial(_refuse_read_only, Path(engine.url.database)))
    return engine


def make_reader(url: str) -> Engine:
    """An engine whose connections cannot write, for whoever checks a store rather than serves it:
    SQLite opened read-only (a missing file is not created), PostgreSQL transactions read-only. Each
    transaction reads one snapshot, so a check sees no row that a writer committed halfway through it."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise FileNotFoundError(f"no such file {path}")
        url = f"sqlite:///file:{path.resolve()}?mode=ro&uri=true"
    postgresql = url.startswith("postgresql")
    options = f"{POSTGRES_LIMITS['options']} -c default_transaction_read_only=on"
    engine = create_engine(
        url,
        hide_parameters=True,
        json_deserializer=orjson.loads,
        connect_args={**POSTGRES_LIMITS, "options": options} if postgresql else {},
        **({"isolation_level": "REPEATABLE READ"} if postgresql else {}),
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_reader)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


@contextmanager
def waiting_at_most(connection: Connection, seconds: float) -> Iterator[None]:
    """Lock waits of at most `seconds` for what `connection` does inside, for bookkeeping that a request
    must not wait the store's full LOCK_WAIT_SECONDS for. PostgreSQL's lasts the transaction; a SQLite
    connection keeps its own, so it is dropped after and the pool opens a new one with the full wait."""
    milliseconds = round(seconds * 1000)
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{milliseconds}ms'")
        yield
        return
    connection.exec_driver_sql(f"PRAGMA busy_timeout={milliseconds}").close()  # the row it answers
    try:
        yield
    finally:
        connection.invalidate()


def _refuse_read_only(path: Path, *_) -> None:
    """No connection to a file this process cannot write: SQLite would open it read-only, and while one
    such is open every new connection to it here is read-only too, once it can be written again as well
    (a file system remounted read-only and back left each score a 503 until a restart)."""
    if path.exists() and not os.access(path, os.W_OK):
        raise sqlite3.OperationalError(f"attempt to write a readonly database: {path} cannot be written")


def _sqlite_busy_timeout(connection, _record) -> None:
    connection.execute(f"PRAGMA busy_timeout={LOCK_WAIT_SECONDS * 1000}")


def _sqlite_reader(connection, record) -> None:
    """The driver's own transaction handling off: it begins none before a SELECT, so each statement would
    read its own snapshot (SQLAlchemy's recipe for pysqlite transactions, with `_sqlite_begin`)."""
    _sqlite_busy_timeout(connection, record)
    connection.isolation_level = None


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _sqlite_pragmas(connection, record) -> None:
    _sqlite_busy_timeout(connection, record)
    cursor = connection.cursor()
    _switch_to_wal(cursor)
    # NORMAL in WAL mode: a commit survives the process being killed (not a power cut).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """Switching a new file to WAL needs its lock and answers "database is locked" at once, not
    after the busy timeout, while another server starting beside this one holds it: so retry."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _json_text(value: object) -> str:
    return orjson.dumps(value).decode()


class SchemaTooNew(RuntimeError):
    """The store was migrated by a newer release: this one cannot read or migrate it."""


def migrate(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the database to the newest schema (idempotent, and safe for servers starting at once);
    returns its revision before (None: a new store) and after."""
    config = _alembic_config()
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        else:
            # The write lock first (waiting out the busy timeout), so the next server reads the
            # version this one wrote instead of creating the same tables beside it.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        _refuse_unknown_revisions(connection, ScriptDirectory.from_config(config))
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        return before, MigrationContext.configure(connection).get_current_revision()


def driver_reason(exc: Exception) -> str:
    """The first line of what the driver said (SQL and parameters follow it), else of the error."""
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def schema_change(shown_url: str, before: str | None, after: str | None) -> str | None:
    """What a migration did to the store, when it did something an operator should hear of: a new store
    is often a mistyped URL (its keys and scores are elsewhere), an upgrade a step to record."""
    if before is None:
        return f"created a new store at {shown_url}, at schema {after}"
    if before != after:
        return f"migrated the store at {shown_url} from schema {before} to {after}"
    return None


class SchemaMismatch(RuntimeError):
    """The store is not at the schema this release reads, and the caller may not migrate it."""


def require_current_schema(engine: Engine) -> None:
    """SchemaMismatch, saying which schema the store is at, which this release reads and what to run,
    unless the store is at this release's newest. Reads only."""
    scripts = ScriptDirectory.from_config(_alembic_config())
    head = scripts.get_current_head()
    known = {script.revision for script in scripts.walk_revisions()}
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current == head:
        return
    if current in known or current is None:
        at = f"schema {current}" if current else "no schema (never migrated)"
        raise SchemaMismatch(
            f"it is at {at}, and this release reads schema {head}: migrate it with `python -m serving "
            "migrate` (a server of this release does so at start-up), then run this again; this command "
            "does not write to the store"
        )
    raise SchemaMismatch(
        f"it is at schema {current}, which this release does not know (its newest is {head}): a newer "
        "release migrated it; run this command with that release"
    )


def _alembic_config() -> Config:
    """Alembic's configuration for this release's migrations, wherever the package is installed."""
    config = Config()
    config.set_main_option("script_location", str(resources.files("serving") / "migrations"))
    return config


def _refuse_unknown_revisions(connection: Connection, scripts: ScriptDirectory) -> None:
    """A release rolled back after a newer one migrated the store finds a revision it lacks: say so,
    rather than Alembic's traceback."""
    known = {script.revision for script in scripts.walk_revisions()}
    for revision in MigrationContext.configure(connection).get_current_heads():
        if revision not in known:
            raise SchemaTooNew(
                f"its schema is at revision {revision}, which this release does not know (its newest is "
                f"{scripts.get_current_head()}): a newer release migrated it; serve that release, or restore "
                "a backup taken before it"
            )
