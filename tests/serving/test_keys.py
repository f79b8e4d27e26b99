"""The key store: ended page sessions remembered while a cookie can live, then forgotten; each key's
last use recorded without a write per request."""

from serving.database import make_engine, migrate
from serving.keys import KeyStore
from tests.serving.scenarios import (
    a_key_use_is_written_at_most_once_a_minute,
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
