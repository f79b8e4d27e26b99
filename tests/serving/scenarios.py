"""Store scenarios that the SQLite tests and the PostgreSQL tests both run."""

from __future__ import annotations

import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, text, update
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner, Result

from serving.audit import READINESS_WAIT_SECONDS, AuditStore, ScoreFilter, utc_now
from serving.cli import app
from serving.database import LOCK_WAIT_SECONDS, make_engine
from serving.idempotency import answer_once, score_ref
from serving.keys import NAME_LENGTH, KeyStore
from serving.tables import ApiKeyRow, IdempotentRequestRow, ScoreRow
from tests.serving.servers import TEST_SEAL, score_row


def claim_twice(store: AuditStore) -> None:
    """A claim already taken refuses the second transaction whole: its scores are not recorded."""
    person, key = f"P-{uuid.uuid4()}", str(uuid.uuid4())
    first = score_row(person)

    def claim(row: ScoreRow) -> IdempotentRequestRow:
        response = {"score_id": row.id}
        return IdempotentRequestRow(
            key_id="k", idempotency_key=key, request_hash="h", created_at=utc_now(), response=response
        )

    store.record([first], claim(first))
    second = score_row(person)
    with pytest.raises(IntegrityError):
        store.record([second], claim(second))
    assert store.get(second.id) is None
    assert store.claim("k", key).response == {"score_id": first.id}
    assert list(store.get_many([first.id, second.id])) == [first.id]


def race_on_one_key(store: AuditStore) -> None:
    """Both pass the look-up before either commits (a barrier makes sure); the loser's score is
    rolled back and it replays the winner's."""
    person, key, both_scored = f"P-{uuid.uuid4()}", str(uuid.uuid4()), threading.Barrier(2)

    def score() -> tuple[dict, list[ScoreRow]]:
        row = score_row(person)
        both_scored.wait(timeout=10)
        return score_ref(row), [row]

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: answer_once(store, "k", key, "h", score), range(2)))
    assert sorted(a.replayed for a in answers) == [False, True]
    assert answers[0].body == answers[1].body
    assert store.search(ScoreFilter(person_id=person), 10, 0)[1] == 1


def ended_sessions_are_remembered_then_forgotten(keys: KeyStore) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    keys.end_session(first, forget_before=datetime.now(UTC) - timedelta(hours=8))
    keys.end_session(first, forget_before=datetime.now(UTC) - timedelta(hours=8))  # twice is fine
    assert keys.session_ended(first) and not keys.session_ended(second)
    keys.end_session(second, forget_before=datetime.now(UTC) + timedelta(seconds=1))
    assert not keys.session_ended(first), "older than any live cookie: forgotten"
    assert keys.session_ended(second)


def refuse_odd_key_names(database: str) -> None:
    """A name is one printable line that fits its column: a newline or an escape sequence in it could
    forge a line of `keys list`, and a longer name is refused by PostgreSQL with a traceback."""
    env = {"REINTEGRA_KEYS_URL": database, "REINTEGRA_AUDIT_URL": database}

    def keys(*args: str) -> Result:  # in process: a fresh interpreter per call cost ~5 s each
        return CliRunner().invoke(app, ["keys", *args], env=env)

    before = keys("list").stdout.splitlines()
    for name in ("ci\n0000  admin     active  forged", "ci\x1b[2K", "n" * 129):
        result = keys("create", "--role", "scorer", "--name", name)
        assert result.exit_code == 2, result.stderr
        assert result.stderr.startswith("a key name is one line of at most 128 printable characters")
        assert "Traceback" not in result.stderr
    assert keys("list").stdout.splitlines() == before
    longest = "Case system (Élodie's) ".ljust(NAME_LENGTH, "n")  # "at most 128": 128 is allowed
    assert keys("create", "--role", "scorer", "--name", longest).exit_code == 0


# uvicorn's lines are written in the app's format too.
OUR_LINE = re.compile(r"\d{4}-\d\d-\d\d [\d:,]+ [A-Z]+ (reintegra|uvicorn)[.\w]* pid=\d+ \[[\w.:-]+\] ")


AUDIT_TABLES = ("scores", "score_reads", "audit_events", "audit_chain", "idempotent_requests", "readiness")


def refuse_a_write(server, tmp_path, api_records: list[dict]) -> None:
    """No 201 without a stored record; the failure says retry, and the log holds no personal data. Any
    table a score, read or event is written to renamed away, readiness fails (it touched only scores)."""
    engine = make_engine(server.database)
    body = {"person_id": "P-secret-7731", "record": api_records[8]}
    readiness = {}
    try:
        with server.client() as anonymous:
            for table in AUDIT_TABLES:
                with engine.begin() as connection:
                    connection.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
                readiness[table] = anonymous.get("/readyz").status_code
                with engine.begin() as connection:
                    connection.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))
            readiness["none"] = anonymous.get("/readyz").status_code
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE scores RENAME TO scores_away"))
        with server.client("reviewer") as reviewer, server.page_client() as pages:
            refused_read = reviewer.get("/v1/scores")
            refused_page = pages.get("/review/people/P-secret-7731")
        with server.client("scorer") as client:
            refused = client.post("/v1/scores", json=body)
            with engine.begin() as connection:
                connection.execute(text("ALTER TABLE scores_away RENAME TO scores"))
            accepted = client.post("/v1/scores", json=body)
    finally:
        server.stop()
    assert readiness == {**dict.fromkeys(AUDIT_TABLES, 503), "none": 200}
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    assert refused.json()["title"] == "Store unavailable"
    assert refused.json()["detail"] == (
        "the audit or key store is unavailable; nothing was recorded, try again"
    )
    assert refused_read.status_code == 503, "a read is not told that nothing was recorded"
    assert refused_read.json()["detail"] == "the audit or key store is unavailable; try again"
    assert refused_page.status_code == 503, "a person's page too, and the log names its route, not the person"
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    assert accepted.status_code == 201
    log = (tmp_path / "server.log").read_text()
    assert f"[{refused.json()['request_id']}] audit or key store unavailable (POST /v1/scores): " in log
    assert "audit or key store unavailable (GET /review/people/{person_id:path}): " in log
    untagged = [line for line in log.splitlines() if not OUR_LINE.match(line)]
    assert untagged == [], (
        "the error is one line with its request id, not SQL and links on lines of their own"
    )
    assert "P-secret-7731" not in log and "Prison_Years" not in log
    _, stored = AuditStore(engine, TEST_SEAL).search(ScoreFilter(person_id="P-secret-7731"), 10, 0)
    assert stored == 1, "only the accepted score is in the audit trail"


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


def a_key_use_waits_briefly_for_a_locked_store(engine: Engine, lock: str) -> None:
    """A key's last-use write waited the store's full 10 s lock wait, then the score it rode on waited 10 s
    more for its own (a 503 after 20 s), and a metrics scrape outlasted Prometheus's 10 s timeout."""
    keys = KeyStore(engine)
    key, secret = keys.create("scorer", "case system")
    locker = make_engine(str(engine.url)).connect()
    try:
        locker.exec_driver_sql(lock)
        started = time.monotonic()
        found = keys.verify(secret)
        waited = time.monotonic() - started
        unrecorded = keys.get(key.id).last_used_at
    finally:
        locker.rollback()
        locker.close()
    assert found.id == key.id, "the key was found: bookkeeping does not refuse the request"
    assert waited < LOCK_WAIT_SECONDS / 2, f"waited {waited:.1f} s for the store's lock"
    assert unrecorded is None
    assert keys.verify(secret).id == key.id and keys.get(key.id).last_used_at is not None


def readiness_gives_up_on_a_locked_store(engine: Engine, lock: str) -> None:
    """Readiness waited the store's full 10 s lock wait for its probe row, past any probe's timeout, with
    a thread held per probe; it says not ready once READINESS_WAIT_SECONDS have passed, and ready after."""
    store = AuditStore(engine, TEST_SEAL)
    locker = make_engine(str(engine.url)).connect()
    try:
        locker.exec_driver_sql(lock)
        with ThreadPoolExecutor(1) as pool:
            probe = pool.submit(store.writable)
            wait([probe], timeout=READINESS_WAIT_SECONDS * 5)
            locker.rollback()
            ready_while_locked = probe.result()
    finally:
        locker.close()
    assert ready_while_locked is False
    assert store.writable()


def the_newest_scores_are_read_and_no_more(store: AuditStore) -> None:
    """A drift window reads its newest `limit` scores, newest first: records, outputs and flags only."""
    person, at = f"P-{uuid.uuid4()}", utc_now()
    needs = [{"need": "housing", "flagged": True, "probability": 0.7}]
    rows = [
        score_row(
            person,
            created_at=at - timedelta(minutes=i),
            record={"Gender": "F", "n": i},
            risk_probability=i / 10,
            result={"needs": needs, "explanation": {"risk": "large"}},
        )
        for i in range(4)
    ]
    store.record(rows)
    served = store.newest_served(ScoreFilter(person_id=person, since=at - timedelta(minutes=2)), 2)
    assert [(s.created_at, s.record["n"], s.risk_probability) for s in served] == [
        (at, 0, 0.0),
        (rows[1].created_at, 1, 0.1),
    ]
    assert served[0].needs == needs and served[0].risk_band == "moderate"


def a_windows_last_committed_score_moves_whatever_its_time(store: AuditStore) -> None:
    """What says whether a cached drift report still holds: the chain place of the window's last
    committed score, which a score stamped earlier but committed later (a slower worker's) moves too."""
    version, at = f"v-{uuid.uuid4().hex[:8]}", utc_now()
    window = ScoreFilter(model_name="reintegra", model_version=version, since=at - timedelta(hours=1))
    assert store.newest_seq(window) is None
    store.record([score_row("P-1", model_version=version, created_at=at)])
    first = store.newest_seq(window)
    store.record([score_row("P-2", model_version=version, created_at=at - timedelta(minutes=5))])
    later = store.newest_seq(window)
    store.record([score_row("P-3", model_version=version, created_at=at - timedelta(hours=2))])
    assert first is not None and later > first
    assert store.newest_seq(window) == later, "a score outside the window does not move it"
