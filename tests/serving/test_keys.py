"""The key store: keys kept as hashes, ended page sessions remembered while a cookie can live, and
each key's last use recorded without a write per request."""

import hashlib

from sqlalchemy import text

from serving.database import make_engine, migrate
from serving.keys import KeyStore
from tests.serving.scenarios import (
    a_key_use_is_written_at_most_once_a_minute,
    a_key_use_waits_briefly_for_a_locked_store,
    ended_sessions_are_remembered_then_forgotten,
)


def test_ended_sessions_on_sqlite(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/keys.db")
    migrate(engine)
    ended_sessions_are_remembered_then_forgotten(KeyStore(engine))


def test_a_key_use_is_written_at_most_once_a_minute_on_sqlite(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/keys.db")
    migrate(engine)
    a_key_use_is_written_at_most_once_a_minute(engine)


def test_a_key_use_waits_briefly_for_a_locked_sqlite_store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/keys.db")
    migrate(engine)
    a_key_use_waits_briefly_for_a_locked_store(engine, "BEGIN EXCLUSIVE")


def test_a_key_is_stored_only_as_its_sha256(tmp_path):
    """A copy of the key store must not hold a usable key: no column keeps the key itself."""
    engine = make_engine(f"sqlite:///{tmp_path}/keys.db")
    migrate(engine)
    store = KeyStore(engine)
    made, key = store.create("scorer", "case system")
    with engine.connect() as connection:
        [row] = connection.execute(text("SELECT * FROM api_keys")).mappings().all()
    engine.dispose()
    assert not any(key in str(value) for value in row.values())
    assert row["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert store.verify(key).id == made.id
