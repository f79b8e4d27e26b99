"""Checks an audit store's chain of signed rows: every digest, no place missing, the end where it says."""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Row, String, Table, func, or_, select, type_coerce

from serving.seal import AuditKeyError, KeyRotated, Seal, content_hash
from serving.tables import AuditChainRow, AuditEventRow, ScoreReadRow, ScoreRow

CHAIN = AuditChainRow.__table__
EVENTS = AuditEventRow.__table__
TABLES: tuple[Table, ...] = (ScoreRow.__table__, ScoreReadRow.__table__, AuditEventRow.__table__)
# Rows each table's cursor holds at a time: memory stays bounded whatever the chain's length.
PAGE = 500
# Each table's time, which reviewers filter and sort on.
TIMES = {"scores": "created_at", "score_reads": "read_at", "audit_events": "at"}


class TamperEvidence(Exception):
    """The store does not match its chain; the message names the first place it fails."""


@dataclass(frozen=True)
class Verified:
    """What a verification covered: the chain's end is what to keep elsewhere as an anchor."""

    rows: int
    unsigned: int
    seq: int
    digest: str | None


def chain_end(engine: Engine) -> int:
    """The place of the chain's last signed row; 0 before the first is signed."""
    with engine.connect() as connection:
        return connection.execute(select(CHAIN.c.seq).where(CHAIN.c.id == 1)).scalar_one()


def verify(
    engine: Engine,
    seal: Seal,
    anchor: tuple[int, str] | None = None,
    previous: Mapping[Path, Seal] | None = None,
) -> Verified:
    """Walk the chain from its first row to the end its head row names, recomputing each digest; no
    signed row may lie outside it, and no row without a digest may be newer than its first row.

    It reads one snapshot: rows written after it began are left for the next run, so it may run beside
    servers.
    `anchor` (a place and digest printed by an earlier run, kept outside the store) must still be there.
    `previous` are the keys, by file, that signed the rows before each key_rotated event; `seal` signs now.
    """
    with engine.connect() as connection:
        head = connection.execute(select(CHAIN).where(CHAIN.c.id == 1)).one()
        query = select(EVENTS.c.seq, EVENTS.c.detail).where(
            EVENTS.c.kind == "key_rotated", EVENTS.c.seq <= head.seq
        )
        rotations = connection.execute(query.order_by(EVENTS.c.seq)).all()
        if head.key_fingerprint not in (None, seal.fingerprint):
            if any(r.detail["old_key"] == seal.fingerprint for r in rotations):
                raise AuditKeyError(
                    f"{KeyRotated(seal.fingerprint, head.key_fingerprint)}: give the new key's file as "
                    "REINTEGRA_AUDIT_KEY_FILE and this one with --previous-key-file"
                )
            raise TamperEvidence(
                f"the store is signed with key {head.key_fingerprint}, and this key is "
                f"{seal.fingerprint}: give the key file the server signs with (REINTEGRA_AUDIT_KEY_FILE)"
            )
        if anchor is not None and anchor[0] > head.seq:
            raise TamperEvidence(
                f"the anchor is at seq {anchor[0]} but the chain ends at seq {head.seq}: rows were removed "
                "from its end, or the chain was replaced"
            )
        first, handovers = _keys(rotations, seal, previous or {})
        sqlite = engine.dialect.name == "sqlite"
        rows = _in_chain_order(connection, head.seq, sqlite)
        digest = _verify_rows(rows, first, head.seq, anchor, handovers)
        _refuse_rows_outside(connection, head.seq)
        # Only once the rows verify: a rotation event removed also leaves a previous key unused.
        used = [r.detail["old_key"] for r in rotations]
        for path, key in (previous or {}).items():
            if key.fingerprint not in used:
                raise AuditKeyError(
                    f"--previous-key-file {path} holds key {key.fingerprint}, which signs none of this "
                    f"store's rows (its keys: {', '.join([*used, seal.fingerprint])})"
                )
        if rotations and rotations[-1].detail["new_key"] != head.key_fingerprint:
            raise TamperEvidence(
                f"the chain's head names key {head.key_fingerprint}, but its last key_rotated event (seq "
                f"{rotations[-1].seq}) hands it to key {rotations[-1].detail['new_key']}: the head was "
                "changed"
            )
        if head.seq and digest != head.digest:
            raise TamperEvidence(
                f"the chain's head names digest {head.digest} at seq {head.seq}, but its last row's is "
                f"{digest}: the head was changed"
            )
        unsigned = sum(
            connection.execute(select(func.count()).select_from(t).where(t.c.seq.is_(None))).scalar_one()
            for t in TABLES
        )
        if unsigned != head.unsigned_rows:
            raise TamperEvidence(
                f"{unsigned} rows carry no digest, but the store held {head.unsigned_rows} unsigned rows "
                "when migration 0008 added the chain: rows were added without one"
            )
        if unsigned:
            _refuse_unsigned_rows_after(connection, _first_signed_time(connection, sqlite), sqlite)
    return Verified(head.seq, unsigned, head.seq, head.digest)


def _keys(
    rotations: Sequence[Row], seal: Seal, previous: Mapping[Path, Seal]
) -> tuple[Seal, dict[int, Seal]]:
    """The key that signed the first row, and the key each key_rotated event hands the chain to, by its
    place; AuditKeyError naming a key the chain needs that no file holds. The events are read before
    they are verified: a changed one still fails at its own digest, under the key before it."""
    used = [r.detail["old_key"] for r in rotations] + [seal.fingerprint]
    keys = {key.fingerprint: key for key in (*previous.values(), seal)}
    start = 1
    for rotation in rotations:
        old, new = rotation.detail["old_key"], rotation.detail["new_key"]
        if old not in keys:
            raise AuditKeyError(
                f"rows at seq {start} to {rotation.seq} are signed with key {old} (the key_rotated event at "
                f"seq {rotation.seq} hands the chain to key {new}), and no key file given holds it: give "
                "that key's file with --previous-key-file"
            )
        start = rotation.seq + 1
    handovers = {r.seq: keys[after] for r, after in zip(rotations, used[1:], strict=True)}
    return keys[used[0]], handovers


def _verify_rows(
    rows: Iterator[tuple[int, str, dict[str, Any]]],
    seal: Seal,
    last: int,
    anchor: tuple[int, str] | None,
    handovers: dict[int, Seal],
) -> str:
    """Check the rows at seq 1..last in order, changing keys after each place in `handovers`; returns
    the last one's digest."""
    digest, expected = "", 1
    for seq, name, row in rows:
        if seq != expected:
            raise TamperEvidence(
                f"seq {expected} is missing: that row was deleted, or its seq or digest cleared "
                f"(the next row is {name} {row['id']} at seq {seq})"
            )
        digest = seal.link(digest, seq, content_hash(name, row))
        if digest != row["digest"]:
            raise TamperEvidence(
                f"{name} row {row['id']} (seq {seq}) does not match its digest: it was changed after it was "
                "written, or written without the key"
            )
        if anchor is not None and seq == anchor[0] and digest != anchor[1]:
            raise TamperEvidence(
                f"seq {seq} ({name} row {row['id']}) is not the row the anchor names: the chain was rewritten"
            )
        seal = handovers.get(seq, seal)
        expected += 1
    if expected != last + 1:
        raise TamperEvidence(f"seq {expected} is missing: that row was deleted, or its seq or digest cleared")
    return digest


def _in_chain_order(
    connection: Connection, last: int, sqlite: bool
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """Every table's rows at seq 1..last merged by seq, each table read by one streaming cursor in seq
    order (its unique index), PAGE rows at a time: one query per table, not one per page."""
    streams = [_stream(connection, table, last, sqlite) for table in TABLES]
    return heapq.merge(*streams, key=itemgetter(0))


def _stream(
    connection: Connection, table: Table, last: int, sqlite: bool
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """The rows of `table` at seq 1..last, read through the table's types as the server wrote them; on
    SQLite, its time as the text stored, which must be the one spelling the server writes."""
    time = TIMES[table.name]
    columns = [_time_selected(table, sqlite) if c.name == time else c for c in table.c]
    query = select(*columns).where(table.c.seq.between(1, last)).order_by(table.c.seq)
    for row in connection.execute(query.execution_options(yield_per=PAGE)):
        yield row.seq, table.name, {**row._asdict(), time: _time_read(table, row, sqlite)}


def _time_selected(table: Table, sqlite: bool) -> Any:
    """A table's time as selected: on SQLite the text stored, which `_time_read` checks."""
    time = table.c[TIMES[table.name]]
    return type_coerce(time, String).label(time.name) if sqlite else time


def _time_read(table: Table, row: Row, sqlite: bool) -> datetime:
    column = TIMES[table.name]
    return _sqlite_time(table.name, row, column) if sqlite else getattr(row, column)


def _sqlite_time(table: str, row: Row, column: str) -> datetime:
    """A time stored as SQLite text, read back as the aware time the server wrote, or TamperEvidence
    naming the row when the text is not the one spelling the server writes: SQL compares the text, so
    another spelling of the same time moves a row in or out of a date range while its digest matches."""
    text = getattr(row, column)
    try:  # fromisoformat takes other spellings too (a "T", an offset): the canonical check refuses them
        time = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        time = None
    if time is None or time.tzinfo is not None or time.isoformat(sep=" ", timespec="microseconds") != text:
        place = f" (seq {row.seq})" if row.seq is not None else " (no seq)"
        raise TamperEvidence(
            f"{table} row {row.id}{place} holds {column} {text!r}, which the server never writes (it writes "
            "'YYYY-MM-DD HH:MM:SS.ffffff', UTC): it was changed after it was written, and date filters "
            "compare that text"
        )
    return time.replace(tzinfo=UTC)


def _refuse_rows_outside(connection: Connection, last: int) -> None:
    """A row placed before the chain's start or after its end would be served and listed like any other,
    and the walk from seq 1 to the head would never read it."""
    for table in TABLES:
        outside = or_(table.c.seq < 1, table.c.seq > last)
        row = connection.execute(select(table.c.id, table.c.seq).where(outside).limit(1)).first()
        if row is not None:
            raise TamperEvidence(
                f"{table.name} row {row.id} is at seq {row.seq}, outside the chain, which runs from seq 1 to "
                f"{last}: it was added without the key, or the chain's end was moved back"
            )


def _first_signed_time(connection: Connection, sqlite: bool) -> datetime | None:
    """When the chain's first row was written (its time is signed): every row without a digest is older."""
    for table in TABLES:
        query = select(table.c.id, table.c.seq, _time_selected(table, sqlite)).where(table.c.seq == 1)
        row = connection.execute(query).first()
        if row is not None:
            return _time_read(table, row, sqlite)
    return None


def _refuse_unsigned_rows_after(connection: Connection, first: datetime | None, sqlite: bool) -> None:
    """Rows without a digest are the ones migration 0008 found; one dated after the chain began was added
    since (its number alone is a counter in the same store, which whoever adds the row can raise too)."""
    if first is None:
        return
    for table in TABLES:
        query = select(table.c.id, table.c.seq, _time_selected(table, sqlite)).where(table.c.seq.is_(None))
        for row in connection.execute(query.execution_options(yield_per=PAGE)):
            written = _time_read(table, row, sqlite)
            if written >= first:
                raise TamperEvidence(
                    f"{table.name} row {row.id} carries no digest but is dated {written:%Y-%m-%d %H:%M:%S} "
                    f"UTC, not before the chain's first row ({first:%Y-%m-%d %H:%M:%S} UTC): every row "
                    "written since migration 0008 is signed, so it was added without the key"
                )
