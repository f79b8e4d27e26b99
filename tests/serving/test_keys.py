"""The key store: ended page sessions remembered while a cookie can live, then forgotten; each key's
last use recorded without a write per request."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, event, update

from serving.database import make_engine, migrate
from serving.keys import KeyStore
from serving.tables import ApiKeyRow


def ended_sessions_are_remembered_then_forgotten(keys: KeyStore) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    keys.end_session(first, forget_before=datetime.now(UTC) - timedelta(hours=8))
    keys.end_session(first, forget_before=datetime.now(UTC) - timedelta(hours=8))  # twice is fine
    assert keys.session_ended(first) and not keys.session_ended(second)
    keys.end_session(second, forget_before=datetime.now(UTC) + timedelta(seconds=1))
    assert not keys.session_ended(first), "older than any live cookie: forgotten"
    assert keys.session_ended(second)


def test_ended_sessions_on_sqlite(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/keys.db")
    migrate(engine)
    ended_sessions_are_remembered_then_forgotten(KeyStore(engine))


def a_key_use_is_written_at_most_once_a_minute(engine: Engine) -> None:
    """Keys had no last-used time, so a key nobody uses any more could not be told from one in use."""
    keys = KeyStore(engine)
    key, secret = keys.create("scorer", "case system")
    assert keys.get(key.id).last_used_at is None
    writes = []

    def count(connection, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("UPDATE API_KEYS"):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        before = datetime.now(UTC)
        for _ in range(50):
            assert keys.verify(secret).id == key.id
        assert keys.active(key.id) is not None, "a page session's look-up counts as a use too"
        assert len(writes) == 1, "one write for 51 uses within the minute"
        first = keys.get(key.id).last_used_at
        assert first >= before - timedelta(seconds=1)
        with engine.begin() as connection:  # as if that use were two minutes old
            connection.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.id == key.id)
                .values(last_used_at=first - timedelta(minutes=2))
            )
        writes.clear()
        keys.verify(secret)
        keys.verify(secret)
        assert len(writes) == 1 and keys.get(key.id).last_used_at >= first
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_key_use_is_written_at_most_once_a_minute_on_sqlite(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/keys.db")
    migrate(engine)
    a_key_use_is_written_at_most_once_a_minute(engine)
