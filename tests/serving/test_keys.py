"""Ended page sessions in the key store: remembered while a cookie can live, then forgotten."""

import uuid
from datetime import UTC, datetime, timedelta

from serving.database import make_engine, migrate
from serving.keys import KeyStore


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
