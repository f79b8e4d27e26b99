"""The audit trail and key store on a real PostgreSQL, shared by several uvicorn workers."""

import re
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, make_url, text

from serving.audit import AuditStore, ScoreFilter, utc_now
from serving.database import make_engine, migrate
from serving.keys import KeyStore
from tests.serving.scenarios import (
    a_key_use_is_written_at_most_once_a_minute,
    a_key_use_waits_briefly_for_a_locked_store,
    a_windows_last_committed_score_moves_whatever_its_time,
    claim_twice,
    ended_sessions_are_remembered_then_forgotten,
    race_on_one_key,
    readiness_gives_up_on_a_locked_store,
    refuse_a_write,
    refuse_odd_key_names,
    the_newest_scores_are_read_and_no_more,
)
from tests.serving.servers import TEST_SEAL, score_row, start_server

pytestmark = pytest.mark.slow


def test_audit_store_round_trip_and_search(postgres_url):
    store = AuditStore(make_engine(postgres_url), TEST_SEAL)
    person = f"pg-{uuid.uuid4()}"
    row = score_row(person, model_version="7", record={"Gender": "M"}, result={"risk": {"band": "moderate"}})
    store.record([row])
    assert store.get(row.id).record == {"Gender": "M"}
    rows, total = store.search(ScoreFilter(person_id=person), limit=10, offset=0)
    assert total == 1 and rows[0].id == row.id
    assert store.writable()


def test_a_search_resumes_after_a_position_among_scores_of_one_time(postgres_url):
    """Scores of one batch share their created_at: the page after one of them goes on by id."""
    store = AuditStore(make_engine(postgres_url), TEST_SEAL)
    person, at = f"pg-{uuid.uuid4()}", utc_now()
    rows = [score_row(person, id=f"{person[:30]}-{i}", created_at=at) for i in range(3)]
    older = score_row(person, created_at=at - timedelta(seconds=1))
    store.record([*rows, older])
    page, total = store.search(ScoreFilter(person_id=person), limit=10, offset=0, before=(at, rows[2].id))
    assert total == 4 and [r.id for r in page] == [rows[1].id, rows[0].id, older.id]


def test_a_taken_idempotency_claim_records_nothing(postgres_url):
    claim_twice(AuditStore(make_engine(postgres_url), TEST_SEAL))


def test_two_requests_racing_on_one_idempotency_key(postgres_url):
    race_on_one_key(AuditStore(make_engine(postgres_url), TEST_SEAL))


def test_a_drift_window_reads_only_its_newest_scores(postgres_url):
    the_newest_scores_are_read_and_no_more(AuditStore(make_engine(postgres_url), TEST_SEAL))


def test_a_windows_last_committed_score_moves_whatever_its_time(postgres_url):
    a_windows_last_committed_score_moves_whatever_its_time(AuditStore(make_engine(postgres_url), TEST_SEAL))


def test_text_with_nul_finds_nothing_instead_of_failing(postgres_url):
    store = AuditStore(make_engine(postgres_url), TEST_SEAL)
    assert store.get("a\x00b") is None
    assert store.search(ScoreFilter(person_id="a\x00b", band="x\x00"), limit=10, offset=0) == ([], 0)


def test_keys_on_postgres(postgres_url):
    keys = KeyStore(make_engine(postgres_url))
    key, secret = keys.create("reviewer", "pg test")
    assert keys.verify(secret).id == key.id
    keys.revoke(key.id)
    assert keys.verify(secret) is None
    ended_sessions_are_remembered_then_forgotten(keys)
    a_key_use_is_written_at_most_once_a_minute(make_engine(postgres_url))
    a_key_use_waits_briefly_for_a_locked_store(make_engine(postgres_url), "SELECT 1 FROM api_keys FOR UPDATE")


def test_two_workers_share_one_audit_store(registry, tmp_path, postgres_url, api_records):
    server = start_server(registry, tmp_path, database=postgres_url, workers=2)
    try:
        person = f"pg-workers-{uuid.uuid4()}"
        with server.client("scorer") as client:
            created = [
                client.post("/v1/scores", json={"person_id": person, "record": r}).json()["id"]
                for r in api_records[:20]
            ]
        with server.client("reviewer") as client:
            page = client.get("/v1/scores", params={"person_id": person, "limit": 100}).json()
    finally:
        server.stop()
    assert page["total"] == 20
    assert {item["id"] for item in page["items"]} == set(created)


def test_servers_starting_at_once_migrate_a_new_database_once(fresh_database):
    engines = [make_engine(fresh_database) for _ in range(4)]
    with ThreadPoolExecutor(len(engines)) as pool:
        list(pool.map(migrate, engines))  # raises if any migration collided with another
    with engines[0].connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    for engine in engines:
        engine.dispose()


def test_a_renamed_audit_table_is_a_503_as_readiness_says(registry, tmp_path, fresh_database, api_records):
    refuse_a_write(start_server(registry, tmp_path, database=fresh_database), tmp_path, api_records)


def test_a_locked_audit_table_answers_503_in_bounded_time(registry, tmp_path, fresh_database, api_records):
    """The store's lock wait (10 s), not an unbounded hang or a pool timeout's 500."""
    server = start_server(registry, tmp_path, database=fresh_database)
    locker = make_engine(fresh_database).connect()
    try:
        transaction = locker.begin()
        locker.execute(text("LOCK TABLE scores IN ACCESS EXCLUSIVE MODE"))
        with server.client("scorer") as client:
            started = time.monotonic()
            response = client.post("/v1/scores", json={"record": api_records[0]}, timeout=60)
            waited = time.monotonic() - started
        transaction.rollback()
        with server.client("scorer") as client:
            after = client.post("/v1/scores", json={"record": api_records[0]})
    finally:
        locker.close()
        server.stop()
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert waited < 30
    assert after.status_code == 201


def test_readiness_gives_up_on_a_locked_postgres_store(postgres_url):
    lock = "LOCK TABLE readiness IN ACCESS EXCLUSIVE MODE"
    readiness_gives_up_on_a_locked_store(make_engine(postgres_url), lock)


def test_a_read_only_audit_store_answers_503_as_readiness_says(
    registry, tmp_path, postgres_url, fresh_database, api_records
):
    """A store that turned read-only (a failover onto a standby, default_transaction_read_only) refused
    every score with PostgreSQL's 25006, which SQLAlchemy calls an InternalError: a 500 'Internal error',
    though /readyz said not ready, and a client had no Retry-After to go by. A scrape must still answer: its
    key's last use, which a read-only store refuses, was a 503 too, so monitoring went blind in a failover."""
    server = start_server(registry, tmp_path, database=fresh_database)
    name = make_url(fresh_database).database
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")

    def read_only(on: bool) -> None:
        """New sessions of the database read-only or not; the server's pooled ones end, so it reconnects."""
        setting = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
        with admin.connect() as connection:
            connection.execute(text(f"ALTER DATABASE {name} {setting}"))
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": name},
            )

    try:
        with (
            server.client("scorer") as scorer,
            server.client("reviewer") as monitor,
            server.client() as anonymous,
        ):
            read_only(True)
            refused = scorer.post("/v1/scores", json={"record": api_records[0]})
            ready = anonymous.get("/readyz")
            scraped = monitor.get("/metrics")
            read_only(False)
            accepted = scorer.post("/v1/scores", json={"record": api_records[0]})
    finally:
        server.stop()
        admin.dispose()
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "5" and refused.json()["title"] == "Store unavailable"
    assert ready.status_code == 503 and ready.json()["checks"]["audit_writable"] is False
    assert scraped.status_code == 200, scraped.text
    assert accepted.status_code == 201
    log = (tmp_path / "server.log").read_text()
    assert "could not record the use of API key" in log
    assert "audit or key store unavailable (POST /v1/scores): (psycopg.errors.ReadOnlySqlTransaction)" in log


def test_a_sighup_while_the_store_is_gone_says_so_in_one_line(
    registry, tmp_path, postgres_url, fresh_database
):
    """Each worker a SIGHUP starts opens the store again; with it gone the log got a 40-line traceback per
    worker, then uvicorn's 'was not ready in time', which points at a slow start rather than the store."""
    server = start_server(registry, tmp_path, database=fresh_database, workers=2)
    name = make_url(fresh_database).database
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")

    def rename(old: str, new: str) -> None:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
                {"name": old},
            )
            connection.execute(text(f"ALTER DATABASE {old} RENAME TO {new}"))

    try:
        rename(name, f"{name}_away")
        try:
            server.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and b"aborting the restart" not in server.log.read_bytes():
                time.sleep(0.5)
        finally:
            rename(f"{name}_away", name)
    finally:
        server.stop()
        admin.dispose()
    log = server.log.read_text()
    assert "aborting the restart" in log and "Traceback" not in log
    [line, *_] = [line for line in log.splitlines() if "cannot open the store" in line]
    assert re.search(r" ERROR reintegra.server pid=\d+ \[-\] cannot open the store at postgresql", line), line
    assert f'database "{name}" does not exist' in line


def test_odd_key_names_on_postgres(postgres_url):
    refuse_odd_key_names(postgres_url)
