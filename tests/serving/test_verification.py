"""Tamper evidence: `python -m serving audit verify` finds an edited, deleted or added audit row or
event, on SQLite and PostgreSQL, after writers from several processes and after an upgrade from schema
0007, without writing to the store; `audit events` lists the administrative events."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, text, update
from typer.testing import CliRunner, Result

from serving.audit import AuditStore
from serving.cli import app
from serving.database import make_engine, migrate
from serving.events import key_event, model_event
from serving.keys import KeyStore
from serving.seal import AuditKeyError, Seal, load_seal
from serving.tables import AuditChainRow, AuditEventRow, ScoreReadRow, ScoreRow
from tests.serving.servers import TEST_SEAL, audit_events, free_port, score_row, start_server
from tests.serving.stores import upgrade_to

pytestmark = pytest.mark.slow

SCORES = ScoreRow.__table__
READS = ScoreReadRow.__table__
CHAIN = AuditChainRow.__table__
EVENTS = AuditEventRow.__table__


def store_env(url: str, key_file: Path) -> dict:
    return {"REINTEGRA_AUDIT_URL": url, "REINTEGRA_KEYS_URL": url, "REINTEGRA_AUDIT_KEY_FILE": str(key_file)}


def verify(url: str, key_file: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["audit", "verify", *args], env=store_env(url, key_file))


def signed_store(url: str) -> tuple[AuditStore, list[ScoreRow]]:
    """A store holding three scores (one alone, two as a batch) and a read of each, written as the
    server writes them."""
    engine = make_engine(url)
    migrate(engine)
    store = AuditStore(engine, TEST_SEAL)
    store.bind_key()
    rows = [score_row("P-1", result={"risk": {"probability": 0.4}})]
    batch = [score_row("P-2", record={"Gender": "F"}), score_row("P-3", record={"Gender": "M"})]
    store.record(rows)
    store.record(batch)
    store.record_reads("reviewer-key", "req-1", "/v1/scores", [*rows, *batch], None)
    return store, [*rows, *batch]


def anchor_of(result: Result) -> str:
    return re.search(r"^anchor: (\S+)$", result.stdout, re.MULTILINE).group(1)


def test_an_untouched_trail_verifies_and_prints_its_anchor(store_url, key_file):
    store, _ = signed_store(store_url)
    result = verify(store_url, key_file)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("verified 6 signed rows (scores, reads and events); 0 rows from before")
    assert re.fullmatch(r"6:[0-9a-f]{64}", anchor_of(result))
    store.engine.dispose()


MAKE_ONE = "make one with python3 -c 'import secrets; print(secrets.token_hex(32))'"


@pytest.mark.parametrize(
    ("held", "problem"),
    [
        (
            "not a key",
            "the audit key file {} does not hold hex text: an audit key is written as hex digits, 64 or more",
        ),
        ("5eed" * 15, f"the audit key in {{}} has 30 bytes, fewer than 32; {MAKE_ONE}"),
        ("", f"the audit key in {{}} has 0 bytes, fewer than 32; {MAKE_ONE}"),
    ],
)
def test_an_audit_key_file_not_holding_a_key_is_refused_in_one_line(tmp_path, held, problem):
    """A key file overwritten by mistake (a note, a truncated copy) verifies nothing and signs nothing."""
    url = f"sqlite:///{tmp_path}/audit.db"
    store, _ = signed_store(url)
    bad = tmp_path / "bad.key"
    bad.write_text(held)
    for command in (["audit", "verify"], ["keys", "create", "--role", "scorer"]):
        result = CliRunner().invoke(app, command, env=store_env(url, bad))
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [problem.format(bad)]
    assert [k.name for k in KeyStore(store.engine).list()] == []
    store.engine.dispose()


def test_a_key_other_than_the_stores_signs_nothing_and_names_both_keys(tmp_path):
    """Rows signed by two keys could not be verified with either: keys create and rotate-key refuse."""
    url = f"sqlite:///{tmp_path}/audit.db"
    store, _ = signed_store(url)
    other = tmp_path / "other.key"
    other.write_text("ab" * 32)
    new_key_file = tmp_path / "audit-2.key"
    for command in (
        ["keys", "create", "--role", "scorer"],
        ["audit", "rotate-key", "--new-key-file", str(new_key_file)],
    ):
        result = CliRunner().invoke(app, command, env=store_env(url, other))
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [
            f"the audit store is signed with key {TEST_SEAL.fingerprint}, and this key is "
            f"{load_seal(other).fingerprint}: give the key file the store was signed with "
            "(REINTEGRA_AUDIT_KEY_FILE)"
        ]
    assert KeyStore(store.engine).list() == [] and not new_key_file.exists()
    store.engine.dispose()


def test_an_edited_score_or_explanation_is_named(store_url, key_file):
    """What a database administrator can do with any client: rewrite a stored probability or explanation."""
    store, rows = signed_store(store_url)
    with store.engine.begin() as connection:
        connection.execute(update(SCORES).where(SCORES.c.id == rows[1].id).values(risk_probability=0.01))
    result = verify(store_url, key_file)
    assert result.exit_code == 1
    assert f"scores row {rows[1].id} (seq 2) does not match its digest" in result.stderr
    with store.engine.begin() as connection:  # put it back; now change the first one's explanation
        connection.execute(update(SCORES).where(SCORES.c.id == rows[1].id).values(risk_probability=0.4))
        connection.execute(
            update(SCORES).where(SCORES.c.id == rows[0].id).values(result={"risk": {"probability": 0.1}})
        )
    result = verify(store_url, key_file)
    assert result.exit_code == 1
    assert f"scores row {rows[0].id} (seq 1) does not match its digest" in result.stderr
    store.engine.dispose()


def test_a_deleted_read_is_found(store_url, key_file):
    store, rows = signed_store(store_url)
    with store.engine.begin() as connection:
        connection.execute(delete(READS).where(READS.c.score_id == rows[1].id))
    result = verify(store_url, key_file)
    assert result.exit_code == 1
    assert "seq 5 is missing: that row was deleted, or its seq or digest cleared" in result.stderr
    store.engine.dispose()


def test_the_last_row_deleted_with_the_head_left_is_named_by_its_place(store_url, key_file):
    store, _ = signed_store(store_url)
    with store.engine.begin() as connection:
        connection.execute(delete(READS).where(READS.c.seq == 6))
    result = verify(store_url, key_file)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "the audit trail fails verification: seq 6 is missing: that row was deleted, or its seq or digest "
        "cleared"
    )
    store.engine.dispose()


def test_an_anchor_that_names_another_row_or_is_not_one_is_refused(store_url, key_file):
    """An anchor kept from another copy of the store, or a chain rewritten up to it, must not verify; a
    mistyped one is a usage error (2), not tamper evidence (1)."""
    store, rows = signed_store(store_url)
    anchor = anchor_of(verify(store_url, key_file))
    assert verify(store_url, key_file, "--anchor", anchor).exit_code == 0
    result = verify(store_url, key_file, "--anchor", f"2:{'0' * 64}")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"the audit trail fails verification: seq 2 (scores row {rows[1].id}) is not the row the anchor "
        "names: the chain was rewritten"
    )
    for typed in ("6", f"six:{'0' * 64}", f"6:{'0' * 63}", f"6:{'A' * 64}"):
        mistyped = verify(store_url, key_file, "--anchor", typed)
        assert mistyped.exit_code == 2, typed
        assert mistyped.stderr.strip() == (
            f"--anchor {typed!r}: give SEQ:DIGEST as an earlier verify printed it ('anchor: ...')"
        )
    store.engine.dispose()


def test_a_row_added_without_a_digest_is_found(store_url, key_file):
    store, _ = signed_store(store_url)
    forged = score_row("P-forged")
    with store.engine.begin() as connection:
        connection.execute(insert(SCORES).values({c.name: getattr(forged, c.name) for c in SCORES.columns}))
    result = verify(store_url, key_file)
    assert result.exit_code == 1
    assert "1 rows carry no digest, but the store held 0 unsigned rows" in result.stderr
    store.engine.dispose()


def columns(row: ScoreRow) -> dict:
    return {c.name: getattr(row, c.name) for c in SCORES.columns}


def test_a_row_outside_the_chain_is_found(store_url, key_file):
    """A row given a place before the chain's start or past its end is served and listed like the others,
    though a walk from seq 1 to the end never reads it; so is the end moved back over rows kept."""
    store, _ = signed_store(store_url)
    for seq in (7, 1_000_000_000, 0, -3):
        forged = score_row("P-forged", seq=seq, digest="f" * 64)
        with store.engine.begin() as connection:
            connection.execute(insert(SCORES).values(columns(forged)))
        result = verify(store_url, key_file)
        assert result.exit_code == 1
        assert (
            f"scores row {forged.id} is at seq {seq}, outside the chain, which runs from seq 1 to 6: it was "
            "added without the key, or the chain's end was moved back"
        ) in result.stderr
        with store.engine.begin() as connection:
            connection.execute(delete(SCORES).where(SCORES.c.id == forged.id))
    assert verify(store_url, key_file).exit_code == 0
    with store.engine.begin() as connection:
        fifth = connection.execute(select(READS.c.digest).where(READS.c.seq == 5)).scalar_one()
        connection.execute(update(CHAIN).values(seq=5, digest=fifth))
        sixth = connection.execute(select(READS.c.id).where(READS.c.seq == 6)).scalar_one()
    result = verify(store_url, key_file)
    assert result.exit_code == 1
    assert (
        f"score_reads row {sixth} is at seq 6, outside the chain, which runs from seq 1 to 5" in result.stderr
    )
    store.engine.dispose()


def test_a_row_without_a_digest_dated_after_the_chain_began_is_found_though_the_count_was_raised(
    store_url, key_file
):
    """The number of rows from before migration 0008 is a counter in the same store: whoever adds a row
    without a digest can raise it, but the row is then no older than the chain's first, signed row (one
    dated at that row's very time was let through by a `>` that no test told from `>=`)."""
    store, rows = signed_store(store_url)
    with store.engine.begin() as connection:
        first = connection.execute(select(SCORES.c.seq).where(SCORES.c.id == rows[0].id)).scalar_one()
    assert first == 1
    for forged in (score_row("P-forged"), score_row("P-forged-at-start", created_at=rows[0].created_at)):
        with store.engine.begin() as connection:
            connection.execute(insert(SCORES).values(columns(forged)))
            connection.execute(update(CHAIN).values(unsigned_rows=CHAIN.c.unsigned_rows + 1))
        result = verify(store_url, key_file)
        assert result.exit_code == 1
        assert f"scores row {forged.id} carries no digest but is dated " in result.stderr
        assert "not before the chain's first row" in result.stderr
        with store.engine.begin() as connection:
            connection.execute(delete(SCORES).where(SCORES.c.id == forged.id))
            connection.execute(update(CHAIN).values(unsigned_rows=CHAIN.c.unsigned_rows - 1))
    assert verify(store_url, key_file).exit_code == 0
    store.engine.dispose()


def test_a_time_spelled_otherwise_in_sqlite_is_named_though_it_is_the_same_time(tmp_path, key_file):
    """SQLite keeps times as text and date filters compare that text: '2026-11-25T00:35' is the same time
    as '2026-11-25 00:35' to the digest, but sorts after every other score of that day."""
    url = f"sqlite:///{tmp_path}/audit.db"
    store, rows = signed_store(url)
    select_time = text("SELECT created_at FROM scores WHERE id = :id")
    with store.engine.connect() as connection:
        stored = connection.execute(select_time, {"id": rows[1].id}).scalar_one()
    for respelled in (stored.replace(" ", "T"), "0" + stored, stored + "+00:00"):
        with store.engine.begin() as connection:
            update_time = text("UPDATE scores SET created_at = :time WHERE id = :id")
            connection.execute(update_time, {"time": respelled, "id": rows[1].id})
        result = verify(url, key_file)
        assert result.exit_code == 1
        assert (
            f"scores row {rows[1].id} (seq 2) holds created_at {respelled!r}, which the server never writes"
        ) in result.stderr
    store.engine.dispose()


def test_verify_beside_a_writer_reads_one_snapshot(store_url, key_file):
    """Rows a server commits while verify runs are neither outside the chain nor missing: they are the
    next run's."""
    store, _ = signed_store(store_url)
    done = threading.Event()

    def write() -> None:
        for _ in range(2_000):
            if done.is_set():
                return
            store.record([score_row(f"P-{uuid.uuid4()}")])

    writer = threading.Thread(target=write)
    writer.start()
    try:
        results = [verify(store_url, key_file) for _ in range(5)]
    finally:
        done.set()
        writer.join()
    assert [r.exit_code for r in results] == [0] * 5, [r.output for r in results]
    store.engine.dispose()


def test_the_end_cut_off_is_found_only_against_an_anchor_kept_elsewhere(store_url, key_file):
    """Without the key nobody can forge a row, but removing the last rows and moving the head back to the
    row before them leaves a valid, shorter chain: only an anchor kept outside the store shows it."""
    store, _ = signed_store(store_url)
    anchor = anchor_of(verify(store_url, key_file))
    with store.engine.begin() as connection:
        connection.execute(delete(READS).where(READS.c.seq == 6))
        fifth = connection.execute(select(READS.c.digest).where(READS.c.seq == 5)).scalar_one()
        connection.execute(update(CHAIN).values(seq=5, digest=fifth))
    assert verify(store_url, key_file).exit_code == 0, "the documented limit"
    result = verify(store_url, key_file, "--anchor", anchor)
    assert result.exit_code == 1
    assert "the anchor is at seq 6 but the chain ends at seq 5" in result.stderr
    store.engine.dispose()


def test_administrative_events_are_chained_listed_and_an_edited_one_is_named(store_url, key_file):
    """Who created and revoked which key, and which version served from when, interleaved with the
    scores in one chain: an event rewritten afterwards (another actor) is named like a score."""
    store, _ = signed_store(store_url)
    keys = KeyStore(store.engine)
    key, _ = keys.create("admin", "alice")
    store.record_event(key_event("key_created", key, "keys create"))
    store.record_event(model_event("reintegra", "2", "run-2", "1", key.id))
    store.record([score_row("P-4", model_version="2", key_id=key.id)])
    store.record_event(key_event("key_revoked", keys.revoke(key.id)[0], "keys revoke"))
    env = store_env(store_url, key_file)
    events = audit_events(env)
    assert [(e["seq"], e["kind"], e["subject"]) for e in events] == [
        (7, "key_created", key.id),
        (8, "model_served", "models:/reintegra/2"),
        (10, "key_revoked", key.id),
    ]
    assert events[0]["detail"] == {"command": "keys create", "role": "admin", "name": "alice"}
    assert events[1]["actor"] == key.id and events[1]["detail"]["previous_version"] == "1"
    assert events[1]["detail"]["process"].endswith(f":{os.getpid()}")
    assert [e["kind"] for e in audit_events(env, "--kind", "key_revoked")] == ["key_revoked"]
    misspelt = CliRunner().invoke(app, ["audit", "events", "--kind", "key_revoke"], env=env)
    assert (misspelt.exit_code, misspelt.stdout) == (2, "")
    assert misspelt.stderr == (
        "--kind 'key_revoke': give one of key_created, key_revoked, model_served, key_rotated\n"
    )
    assert audit_events(env, "--since", events[1]["at"], "--until", events[2]["at"]) == events[1:2]
    assert audit_events(env, "--until", "2020-01-01") == []
    at = datetime.fromisoformat(events[1]["at"]).astimezone(UTC)
    assert audit_events(env, "--since", f"{at:%Y-%m-%d %H:%M:%S.%f}") == events[1:], "naive UTC, to the µs"
    as_a_page_shows_it = f"{at:%Y-%m-%d %H:%M:%S} UTC"
    assert audit_events(env, "--since", as_a_page_shows_it) == [
        e for e in events if datetime.fromisoformat(e["at"]) >= at.replace(microsecond=0)
    ]
    result = verify(store_url, key_file)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("verified 10 signed rows (scores, reads and events)")
    with store.engine.begin() as connection:
        edited = connection.execute(
            update(EVENTS).where(EVENTS.c.seq == 7).values(actor="someone-else").returning(EVENTS.c.id)
        ).scalar_one()
    result = verify(store_url, key_file)
    assert result.exit_code == 1
    assert f"audit_events row {edited} (seq 7) does not match its digest" in result.stderr
    store.engine.dispose()


@pytest.mark.parametrize(
    ("window", "refusal"),
    [
        (
            ["--since", "2026-11-25", "--until", "2026-11-24"],
            "--until 2026-11-24 00:00:00 UTC is not later than --since 2026-11-25 00:00:00 UTC, so no event "
            "can be in the window (--since inclusive, --until exclusive): give the earlier time as --since",
        ),
        (
            ["--since", "0001-01-01T00:00:00+05:00"],
            "--since 0001-01-01 00:00:00+05:00: time is out of range once converted to UTC",
        ),
    ],
    ids=["swapped", "before_year_1_in_utc"],
)
def test_events_refuse_a_window_no_event_can_be_in(window, refusal, store_url, key_file):
    """Times swapped listed nothing and exited 0, as if nothing had happened; a time before year 1 in UTC
    was a traceback. Either is a mistake in the command, said in one line, exit 2."""
    signed_store(store_url)[0].engine.dispose()
    result = CliRunner().invoke(app, ["audit", "events", *window], env=store_env(store_url, key_file))
    assert result.exit_code == 2
    assert result.stderr.strip() == refusal


def test_verify_reads_a_store_behind_or_ahead_of_this_release_without_migrating_it(store_url, key_file):
    """A verifier must not write: a store at an older schema is named with the one this release reads
    and what to run, and left as it was; so is one a newer release migrated."""
    engine = make_engine(store_url)
    upgrade_to(engine, "0009")
    for command_args in (["audit", "verify"], ["audit", "events"]):
        result = CliRunner().invoke(app, command_args, env=store_env(store_url, key_file))
        assert result.exit_code == 2
        assert result.stderr.splitlines()[-1].endswith(
            "it is at schema 0009, and this release reads schema 0011: migrate it with `python -m serving "
            "migrate` (a server of this release does so at start-up), then run this again; this command "
            "does not write to the store"
        )
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0009"
    migrated = CliRunner().invoke(app, ["migrate"], env=store_env(store_url, key_file))
    assert migrated.exit_code == 0, migrated.output
    assert verify(store_url, key_file).exit_code == 0, "the command it names makes the store readable"
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    result = verify(store_url, key_file)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].endswith(
        "it is at schema 0099, which this release does not know (its newest is 0011): a newer release "
        "migrated it; run this command with that release"
    )
    engine.dispose()


def test_verify_of_a_missing_sqlite_store_makes_no_file(tmp_path, key_file):
    database = tmp_path / "audit.db"
    result = verify(f"sqlite:///{database}", key_file)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"cannot read the store at sqlite:///{database}: no such file {database}"
    assert not database.exists()


def test_verify_before_anything_was_signed_says_where_the_key_comes_from(store_url, tmp_path):
    """Right after `migrate` there is no key file yet; "No such file or directory" alone read as a fault."""
    engine = make_engine(store_url)
    migrate(engine)
    engine.dispose()
    result = verify(store_url, tmp_path / "audit.key")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"cannot read the audit key file {tmp_path / 'audit.key'}: No such file or directory; the store "
        "holds no signed row yet: a server's first start, or a keys command, makes the key"
    )


def test_another_key_is_refused(store_url, tmp_path):
    store, _ = signed_store(store_url)
    other = tmp_path / "other.key"
    other.write_text("ab" * 32)
    result = verify(store_url, other)
    assert result.exit_code == 1
    assert f"the store is signed with key {TEST_SEAL.fingerprint}, and this key is" in result.stderr
    store.engine.dispose()


def test_writers_of_several_processes_form_one_chain(store_url, key_file):
    """Each engine stands for a worker: its own connections, writing at the same moment as the others."""
    signed_store(store_url)[0].engine.dispose()
    stores = [AuditStore(make_engine(store_url), TEST_SEAL) for _ in range(4)]
    start = threading.Barrier(len(stores))

    def write(store: AuditStore) -> None:
        start.wait()
        for index in range(10):
            rows = [score_row(f"P-{uuid.uuid4()}") for _ in range(1 + index % 3)]
            store.record(rows)
            store.record_reads("k", "r", "/v1/scores", rows, None)

    with ThreadPoolExecutor(len(stores)) as pool:
        list(pool.map(write, stores))
    result = verify(store_url, key_file)
    assert result.exit_code == 0, result.output
    written = sum(1 + index % 3 for index in range(10))
    assert result.stdout.startswith(f"verified {6 + len(stores) * 2 * written} signed rows")
    for store in stores:
        store.engine.dispose()


def test_rows_from_before_the_migration_are_kept_unsigned_and_counted(store_url, key_file):
    """A store of schema 0007 holding a score and its read is upgraded; its old rows carry no digest
    (nothing can say they were unchanged before), the new ones are chained after them."""
    engine = make_engine(store_url)
    old = score_row("P-old")
    upgrade_to(engine, "0007")
    with engine.begin() as connection:
        columns = {c.name: getattr(old, c.name) for c in SCORES.columns if c.name not in ("seq", "digest")}
        connection.execute(insert(SCORES).values(columns))
        read = {"id": "read-1", "read_at": old.created_at, "key_id": "k", "request_id": "r", "route": "/"}
        connection.execute(insert(READS).values({**read, "score_id": old.id, "person_id": "P-old"}))
    assert migrate(engine)[0] == "0007"
    before = verify(store_url, key_file)
    assert before.exit_code == 0, before.output
    assert before.stdout.startswith("verified 0 signed rows (scores, reads and events); 2 rows from before")
    store = AuditStore(engine, TEST_SEAL)
    store.record([score_row("P-new")])
    result = verify(store_url, key_file)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "verified 1 signed rows (scores, reads and events); 2 rows from before migration"
    )
    engine.dispose()


def test_two_workers_on_postgresql_keep_one_chain(registry, tmp_path, fresh_database, api_records, key_file):
    server = start_server(registry, tmp_path, database=fresh_database, workers=2)
    try:

        def score(index: int) -> str:
            with server.client("scorer") as client:
                body = {"person_id": f"P-{index}", "record": api_records[index]}
                return client.post("/v1/scores", json=body).json()["id"]

        with ThreadPoolExecutor(4) as pool:
            created = list(pool.map(score, range(24)))
        with server.client("reviewer") as client:
            for score_id in created[:6]:
                assert client.get(f"/v1/scores/{score_id}").status_code == 200
    finally:
        server.stop()
    result = verify(fresh_database, key_file)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("verified 32 signed rows"), "24 scores, 6 reads, each worker's start"
    started = audit_events(store_env(fresh_database, key_file), "--kind", "model_served")
    assert len({e["detail"]["process"] for e in started}) == 2, "which worker served which version"


def test_the_first_start_makes_the_key_and_a_later_one_without_it_is_refused(registry, tmp_path):
    """`make run` needs no step to make the key; a store signed with a key since lost is not signed on
    with a new one, which would leave its old rows unverifiable."""
    database = f"sqlite:///{tmp_path}/audit.db"
    key = tmp_path / "keys" / "audit.key"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REINTEGRA_")},
        "MLFLOW_TRACKING_URI": registry.uri,
        "REINTEGRA_AUDIT_URL": database,
        "REINTEGRA_KEYS_URL": database,
        "REINTEGRA_AUDIT_KEY_FILE": str(key),
        "REINTEGRA_POLL_SECONDS": "0",
    }
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "serving", "--port", str(free_port())]
    with open(log, "wb") as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        for _ in range(300):  # bounded: 90 s at most
            if b"Application startup complete" in log.read_bytes() or process.poll() is not None:
                break
            time.sleep(0.3)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    fingerprint = load_seal(key).fingerprint
    assert f"created the audit key {key} (key {fingerprint}), which signs every audit row" in log.read_text()
    assert key.stat().st_mode & 0o777 == 0o600
    key.unlink()
    refused = subprocess.run(
        [sys.executable, "-m", "serving", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert refused.stderr.splitlines()[-1] == (
        f"the audit key file {key} does not exist, and the audit store is signed with key "
        f"{fingerprint}: put that key's file there or set REINTEGRA_AUDIT_KEY_FILE to it"
    )


def rotate(url: str, key_file: Path, new_key_file: Path) -> Result:
    env = store_env(url, key_file)
    return CliRunner().invoke(app, ["audit", "rotate-key", "--new-key-file", str(new_key_file)], env=env)


def test_a_rotated_trail_verifies_with_both_keys_and_names_the_one_missing(store_url, key_file, tmp_path):
    """The rotation event is signed by the old key, the rows after it by the new one; verify needs both,
    and a store still holding the old key can no longer sign."""
    store, _ = signed_store(store_url)
    new_key_file = tmp_path / "keys" / "audit-2.key"
    rotated = rotate(store_url, key_file, new_key_file)
    assert rotated.exit_code == 0, rotated.output
    new, old = load_seal(new_key_file).fingerprint, TEST_SEAL.fingerprint
    assert f"the audit key is now {new} ({new_key_file})" in rotated.stdout
    assert "set REINTEGRA_AUDIT_KEY_FILE" in rotated.stdout and str(key_file) in rotated.stdout
    assert new_key_file.stat().st_mode & 0o777 == 0o600 and key_file.exists()
    just_rotated = verify(store_url, new_key_file, "--previous-key-file", str(key_file))
    assert just_rotated.exit_code == 0, just_rotated.output  # its rotation event is the chain's last row
    assert just_rotated.stdout.startswith("verified 7 signed rows")
    with pytest.raises(AuditKeyError, match=f"the audit key {old} was rotated to {new}"):
        store.record([score_row("P-too-late")])
    AuditStore(store.engine, load_seal(new_key_file)).record([score_row("P-after")])
    events = audit_events(store_env(store_url, key_file), "--kind", "key_rotated")
    assert [(e["seq"], e["subject"], e["detail"]) for e in events] == [
        (7, f"audit key {old} -> {new}", {"command": "audit rotate-key", "old_key": old, "new_key": new})
    ]
    both = verify(store_url, new_key_file, "--previous-key-file", str(key_file))
    assert both.exit_code == 0, both.output
    assert both.stdout.startswith("verified 8 signed rows (scores, reads and events)")
    missing = verify(store_url, new_key_file)
    assert missing.exit_code == 2
    assert missing.stderr.strip() == (
        f"rows at seq 1 to 7 are signed with key {old} (the key_rotated event at seq 7 hands the chain to "
        f"key {new}), and no key file given holds it: give that key's file with --previous-key-file"
    )
    other = tmp_path / "other.key"
    other.write_text("ab" * 32)
    wrong = verify(
        store_url, new_key_file, "--previous-key-file", str(key_file), "--previous-key-file", str(other)
    )
    assert wrong.exit_code == 2
    assert wrong.stderr.strip() == (
        f"--previous-key-file {other} holds key {load_seal(other).fingerprint}, which signs none of this "
        f"store's rows (its keys: {old}, {new})"
    )
    old_only = verify(store_url, key_file)
    assert old_only.exit_code == 2
    assert old_only.stderr.strip() == (
        f"the audit key {old} was rotated to {new} (audit rotate-key): give the new key's file as "
        "REINTEGRA_AUDIT_KEY_FILE and this one with --previous-key-file"
    )
    store.engine.dispose()


def test_a_row_changed_before_the_rotation_or_the_rotation_removed_is_named(store_url, key_file, tmp_path):
    store, rows = signed_store(store_url)
    new_key_file = tmp_path / "audit-2.key"
    assert rotate(store_url, key_file, new_key_file).exit_code == 0
    AuditStore(store.engine, load_seal(new_key_file)).record([score_row("P-after")])
    with store.engine.begin() as connection:
        connection.execute(update(SCORES).where(SCORES.c.id == rows[1].id).values(risk_probability=0.01))
    both = ("--previous-key-file", str(key_file))
    result = verify(store_url, new_key_file, *both)
    assert result.exit_code == 1
    assert f"scores row {rows[1].id} (seq 2) does not match its digest" in result.stderr
    with store.engine.begin() as connection:  # put it back; now remove the rotation itself
        connection.execute(update(SCORES).where(SCORES.c.id == rows[1].id).values(risk_probability=0.4))
    assert verify(store_url, new_key_file, *both).exit_code == 0
    with store.engine.begin() as connection:
        connection.execute(delete(EVENTS).where(EVENTS.c.kind == "key_rotated"))
    result = verify(store_url, new_key_file, *both)
    assert result.exit_code == 1, "tamper evidence, not a key file given wrongly"
    assert f"scores row {rows[0].id} (seq 1) does not match its digest" in result.stderr
    store.engine.dispose()


def test_a_head_handed_back_to_the_old_key_after_a_rotation_is_named(store_url, key_file, tmp_path):
    """Setting the head's key back to the rotated-away one would let servers still holding it sign again;
    their rows verify under that key, but the head no longer names the key the last rotation gave it to."""
    store, _ = signed_store(store_url)
    new_key_file = tmp_path / "audit-2.key"
    assert rotate(store_url, key_file, new_key_file).exit_code == 0
    with store.engine.begin() as connection:
        connection.execute(update(CHAIN).values(key_fingerprint=TEST_SEAL.fingerprint))
    store.record([score_row("P-old-key-again")])
    result = verify(store_url, key_file)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "the audit trail fails verification: "
        f"the chain's head names key {TEST_SEAL.fingerprint}, but its last key_rotated event (seq 7) hands "
        f"it to key {load_seal(new_key_file).fingerprint}: the head was changed"
    )
    store.engine.dispose()


def test_a_key_rotated_twice_verifies_with_all_three(store_url, key_file, tmp_path):
    store, _ = signed_store(store_url)
    second, third = tmp_path / "audit-2.key", tmp_path / "audit-3.key"
    assert rotate(store_url, key_file, second).exit_code == 0
    AuditStore(store.engine, load_seal(second)).record([score_row("P-second")])
    taken = rotate(store_url, key_file, third)
    assert taken.exit_code == 2, "the old key no longer signs"
    assert not third.exists(), "a key the store refused is not left behind"
    assert rotate(store_url, second, third).exit_code == 0
    AuditStore(store.engine, load_seal(third)).record([score_row("P-third")])
    again = rotate(store_url, third, second)
    assert again.exit_code == 2
    assert again.stderr.strip() == (
        f"the new key file {second} already exists: rotate-key makes the new key itself and never "
        "replaces a file; give a path that does not exist"
    )
    previous = ["--previous-key-file", str(key_file), "--previous-key-file", str(second)]
    result = verify(store_url, third, *previous)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("verified 10 signed rows")
    missing = verify(store_url, third, "--previous-key-file", str(key_file))
    assert missing.exit_code == 2
    assert missing.stderr.startswith(
        f"rows at seq 8 to 9 are signed with key {load_seal(second).fingerprint}"
    )
    store.engine.dispose()


def test_a_new_key_file_under_a_file_is_named_as_unmakeable_not_as_existing(tmp_path, key_file):
    """A folder in the path that is a file: it said the new key file already existed, or ended in a
    NotADirectoryError traceback, exit 1."""
    url = f"sqlite:///{tmp_path}/audit.db"
    store, _ = signed_store(url)
    (tmp_path / "a-file").write_text("not a folder")
    for new_key_file, reason in (
        (tmp_path / "a-file" / "audit-2.key", f"File exists ({tmp_path / 'a-file'})"),
        (tmp_path / "a-file" / "keys" / "audit-2.key", f"Not a directory ({tmp_path / 'a-file' / 'keys'})"),
    ):
        result = rotate(url, key_file, new_key_file)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == (
            f"cannot make the new key file {new_key_file}: {reason}; give a path in a folder you can write"
        )
    assert audit_events(store_env(url, key_file), "--kind", "key_rotated") == []
    store.engine.dispose()


def test_a_rotation_another_made_meanwhile_wins_and_this_ones_key_is_removed(tmp_path, key_file, monkeypatch):
    """Two operators rotating at once: both find the old key current, the second to write is refused by the
    chain, and its new key, which signed nothing, must not be left beside the one that won."""
    url = f"sqlite:///{tmp_path}/audit.db"
    store, _ = signed_store(url)
    winner = Seal(bytes.fromhex("ab" * 32))
    bind_key = AuditStore.bind_key

    def then_another_rotates(audit: AuditStore) -> None:
        bind_key(audit)
        AuditStore(audit.engine, TEST_SEAL).rotate_key(winner, "audit rotate-key")

    monkeypatch.setattr(AuditStore, "bind_key", then_another_rotates)
    new_key_file = tmp_path / "audit-2.key"
    result = rotate(url, key_file, new_key_file)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"the audit key {TEST_SEAL.fingerprint} was rotated to {winner.fingerprint} (audit rotate-key) while "
        f"this one ran: {new_key_file} was removed, as it signs nothing"
    ]
    assert not new_key_file.exists()
    monkeypatch.undo()
    events = audit_events(store_env(url, key_file), "--kind", "key_rotated")
    assert [e["detail"]["new_key"] for e in events] == [winner.fingerprint]
    store.engine.dispose()


def test_a_rotation_the_store_refuses_changes_nothing_and_leaves_no_new_key(
    fresh_database, key_file, tmp_path
):
    """The chain held by another writer past the lock timeout: the rotation rolls back, so the new key
    signs nothing. It said the store 'did not answer' and kept the file, sending the operator to
    `audit events` to find out what the store had already said."""
    store, _ = signed_store(fresh_database)
    new_key_file = tmp_path / "audit-2.key"
    with store.engine.connect() as holder, holder.begin():
        holder.execute(text("SELECT seq FROM audit_chain WHERE id = 1 FOR UPDATE"))
        result = rotate(fresh_database, key_file, new_key_file)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("the audit store refused the rotation (canceling statement due to lock timeout")
    assert line.endswith(
        f"; nothing changed: key {TEST_SEAL.fingerprint} still signs the trail, and {new_key_file} was "
        "removed"
    )
    assert not new_key_file.exists()
    store.record([score_row("P-same-key")])
    assert verify(fresh_database, key_file).exit_code == 0
    store.engine.dispose()


def test_a_sighup_after_rotating_the_key_says_why_the_restart_failed_in_one_line(registry, tmp_path):
    """SIGHUP does not change the key file the workers read: each new worker then stopped with a 30-line
    traceback in the log, then the parent's 'was not ready in time', which sent the operator looking
    for a slow start rather than the key."""
    server = start_server(registry, tmp_path, workers=2)
    new_key_file = tmp_path / "audit-2.key"
    try:
        assert (
            rotate(server.database, Path(server.env["REINTEGRA_AUDIT_KEY_FILE"]), new_key_file).exit_code == 0
        )
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and b"aborting the restart" not in server.log.read_bytes():
            time.sleep(0.5)
    finally:
        server.stop()
    new, old = load_seal(new_key_file).fingerprint, TEST_SEAL.fingerprint
    log = server.log.read_text()
    assert "aborting the restart" in log and "Traceback" not in log
    [line] = [line for line in log.splitlines() if f"the audit key {old} was rotated to {new}" in line]
    assert re.search(r" ERROR reintegra.server pid=\d+ \[-\] the audit key ", line), line
    assert "set REINTEGRA_AUDIT_KEY_FILE to the new key's file" in line


def test_a_server_holding_the_old_key_refuses_to_sign_and_one_with_the_new_key_does(
    registry, tmp_path, api_records
):
    """Servers running when the key rotates must not sign under the old key what the chain says is under
    the new one: they answer 503 and report not ready; started again with the old key they stop, with
    the new one they score, and the chain verifies with both keys."""
    server = start_server(registry, tmp_path)
    old_key_file, new_key_file = Path(server.env["REINTEGRA_AUDIT_KEY_FILE"]), tmp_path / "audit-2.key"
    body = {"person_id": "P-1", "record": api_records[0]}
    try:
        with server.client("scorer") as scorer, server.client() as anonymous:
            assert scorer.post("/v1/scores", json=body).status_code == 201
            assert rotate(server.database, old_key_file, new_key_file).exit_code == 0
            refused = scorer.post("/v1/scores", json=body)
            ready = anonymous.get("/readyz")
    finally:
        server.stop()
    new, old = load_seal(new_key_file).fingerprint, TEST_SEAL.fingerprint
    assert refused.status_code == 503 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"] == (
        f"the audit key {old} was rotated to {new} (audit rotate-key); this server still holds the old "
        "key: restart it with REINTEGRA_AUDIT_KEY_FILE naming the new key's file; nothing was recorded"
    )
    assert ready.status_code == 503 and ready.json()["checks"]["audit_key_current"] is False
    assert "audit_key_current" in ready.json()["detail"]
    with pytest.raises(RuntimeError, match=f"the audit key {old} was rotated to {new}"):
        start_server(registry, tmp_path, database=server.database)
    restarted = start_server(
        registry,
        tmp_path,
        database=server.database,
        extra_env={"REINTEGRA_AUDIT_KEY_FILE": str(new_key_file)},
    )
    try:
        with restarted.client("scorer") as scorer:
            assert scorer.post("/v1/scores", json=body).status_code == 201
    finally:
        restarted.stop()
    result = verify(server.database, new_key_file, "--previous-key-file", str(old_key_file))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("verified 5 signed rows"), "2 scores, 2 starts, 1 rotation"


def _edited(value: object) -> object:
    """Another value of the same column type."""
    if isinstance(value, datetime):
        return value + timedelta(seconds=1)
    if isinstance(value, float):
        return value + 0.125
    if isinstance(value, dict):
        return {**value, "edited": True}
    return "edited"


def test_a_change_to_any_column_of_a_signed_row_is_named(store_url, key_file):
    """Every column is signed, not only those a test happened to edit: a column left out of the digest
    (the band a reviewer filters on, the key that made a score, the person a read names) could be
    rewritten unseen."""
    store, _ = signed_store(store_url)
    store.record_event(model_event("reintegra", "2", "run-2", "1", "admin-key"))
    for table in (SCORES, READS, EVENTS):
        for column in [c for c in table.c if c.name not in ("seq", "digest")]:
            with store.engine.begin() as connection:
                row_id, seq, old = connection.execute(
                    select(table.c.id, table.c.seq, column).order_by(table.c.seq).limit(1)
                ).one()
                new = _edited(old)
                connection.execute(update(table).where(table.c.id == row_id).values({column.name: new}))
            result = verify(store_url, key_file)
            with store.engine.begin() as connection:
                now_id = new if column.name == "id" else row_id
                connection.execute(update(table).where(table.c.id == now_id).values({column.name: old}))
            assert result.exit_code == 1, f"{table.name}.{column.name} changed unseen"
            named = f"{table.name} row {now_id} (seq {seq}) does not match its digest"
            assert named in result.stderr, (column.name, result.stderr)
    assert verify(store_url, key_file).exit_code == 0, "every change was put back"
    store.engine.dispose()


def test_a_row_from_another_copy_of_the_store_put_in_place_of_one_is_named(tmp_path, key_file):
    """Each digest covers every row before it: a row validly signed at the same place in a copy of the
    store (a backup restored, then written on) does not fit in the middle of this chain, and an anchor
    vouches for every row before it, not only its own."""
    url = f"sqlite:///{tmp_path}/audit.db"
    store, _ = signed_store(url)
    store.engine.dispose()
    shutil.copy(tmp_path / "audit.db", tmp_path / "copy.db")
    copy = AuditStore(make_engine(f"sqlite:///{tmp_path}/copy.db"), TEST_SEAL)
    for person in ("P-copy-7", "P-copy-8"):
        copy.record([score_row(person)])
    for person in ("P-7", "P-8", "P-9"):
        store.record([score_row(person)])
    assert verify(url, key_file).exit_code == 0
    with copy.engine.connect() as connection:
        spliced = connection.execute(select(SCORES).where(SCORES.c.seq == 8)).one()._asdict()
    with store.engine.begin() as connection:
        connection.execute(delete(SCORES).where(SCORES.c.seq == 8))
        connection.execute(insert(SCORES).values(spliced))
    result = verify(url, key_file)
    assert result.exit_code == 1
    assert f"scores row {spliced['id']} (seq 8) does not match its digest" in result.stderr
    copy.engine.dispose()
    store.engine.dispose()


def test_a_head_moved_back_over_a_deleted_row_or_given_another_digest_is_named(store_url, key_file):
    """The head's digest is the anchor `verify` prints: one that is not the last row's would have an
    auditor keep an anchor no row matches, and a head moved back without it means rows were removed."""
    store, _ = signed_store(store_url)
    with store.engine.begin() as connection:
        sixth = connection.execute(select(READS.c.digest).where(READS.c.seq == 6)).scalar_one()
        connection.execute(update(CHAIN).values(digest="0" * 64))
    result = verify(store_url, key_file)
    assert result.exit_code == 1
    changed = f"the chain's head names digest {'0' * 64} at seq 6, but its last row's is {sixth}"
    assert changed in result.stderr
    with store.engine.begin() as connection:
        connection.execute(delete(READS).where(READS.c.seq == 6))
        connection.execute(update(CHAIN).values(seq=5, digest=sixth))
    result = verify(store_url, key_file)
    assert result.exit_code == 1
    assert f"the chain's head names digest {sixth} at seq 5" in result.stderr
    store.engine.dispose()
