"""Engines and schema: SQLite in WAL mode by default, PostgreSQL by URL; migrations by Alembic."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event


def make_engine(url: str) -> Engine:
    """An engine whose SQLite connections use WAL and wait for locks instead of failing.

    JSON columns go through orjson: every score writes a ~35 kB explanation before its 201.
    Statement parameters stay out of error messages: they hold people's records.
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        pool_pre_ping=True,
        hide_parameters=True,
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives the process being killed (not a power cut).
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _json_text(value: object) -> str:
    return orjson.dumps(value).decode()


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (idempotent)."""
    folder = resources.files("serving") / "migrations"
    config = Config()
    config.set_main_option("script_location", str(folder))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
