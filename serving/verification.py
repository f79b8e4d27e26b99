"""Checks an audit store's chain of signed rows: every digest, no place missing, the end where it says."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter

from sqlalchemy import Connection, Engine, Row, Table, func, select

from serving.seal import Seal, content_hash
from serving.tables import AuditChainRow, AuditEventRow, ScoreReadRow, ScoreRow

CHAIN = AuditChainRow.__table__
TABLES: tuple[Table, ...] = (ScoreRow.__table__, ScoreReadRow.__table__, AuditEventRow.__table__)
# Rows each table's cursor holds at a time: memory stays bounded whatever the chain's length.
PAGE = 500


class TamperEvidence(Exception):
    """The store does not match its chain; the message names the first place it fails."""


@dataclass(frozen=True)
class Verified:
    """What a verification covered: the chain's end is what to keep elsewhere as an anchor."""

    rows: int
    unsigned: int
    seq: int
    digest: str | None


def verify(engine: Engine, seal: Seal, anchor: tuple[int, str] | None = None) -> Verified:
    """Walk the chain from its first row to the end its head row names, recomputing each digest.

    Rows written after the head is read are left for the next run, so it may run beside servers.
    `anchor` (a place and digest printed by an earlier run, kept outside the store) must still be there.
    """
    with engine.connect() as connection:
        head = connection.execute(select(CHAIN).where(CHAIN.c.id == 1)).one()
        if head.key_fingerprint not in (None, seal.fingerprint):
            raise TamperEvidence(
                f"the store is signed with key {head.key_fingerprint}, and this key is "
                f"{seal.fingerprint}: give the key file the server signs with (REINTEGRA_AUDIT_KEY_FILE)"
            )
        if anchor is not None and anchor[0] > head.seq:
            raise TamperEvidence(
                f"the anchor is at seq {anchor[0]} but the chain ends at seq {head.seq}: rows were removed "
                "from its end, or the chain was replaced"
            )
        digest = _verify_rows(_in_chain_order(connection, head.seq), seal, head.seq, anchor)
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
            f"{unsigned} rows carry no digest, but the store held {head.unsigned_rows} unsigned rows when "
            "migration 0008 added the chain: rows were added without one"
        )
    return Verified(head.seq, unsigned, head.seq, head.digest)


def _verify_rows(
    rows: Iterator[tuple[int, str, Row]], seal: Seal, last: int, anchor: tuple[int, str] | None
) -> str:
    """Check the rows at seq 1..last in order; returns the last one's digest."""
    digest, expected = "", 1
    for seq, name, row in rows:
        if seq != expected:
            raise TamperEvidence(
                f"seq {expected} is missing: that row was deleted, or its seq or digest cleared "
                f"(the next row is {name} {row.id} at seq {seq})"
            )
        digest = seal.link(digest, seq, content_hash(name, row._asdict()))
        if digest != row.digest:
            raise TamperEvidence(
                f"{name} row {row.id} (seq {seq}) does not match its digest: it was changed after it was "
                "written, or written without the key"
            )
        if anchor is not None and seq == anchor[0] and digest != anchor[1]:
            raise TamperEvidence(
                f"seq {seq} ({name} row {row.id}) is not the row the anchor names: the chain was rewritten"
            )
        expected += 1
    if expected != last + 1:
        raise TamperEvidence(f"seq {expected} is missing: that row was deleted, or its seq or digest cleared")
    return digest


def _in_chain_order(connection: Connection, last: int) -> Iterator[tuple[int, str, Row]]:
    """Every table's rows at seq 1..last merged by seq, each table read by one streaming cursor in seq
    order (its unique index), PAGE rows at a time: one query per table, not one per page."""
    streams = [_stream(connection, table, last) for table in TABLES]
    return heapq.merge(*streams, key=itemgetter(0))


def _stream(connection: Connection, table: Table, last: int) -> Iterator[tuple[int, str, Row]]:
    """The rows of `table` at seq 1..last, read through the table's types as the server wrote them."""
    query = select(table).where(table.c.seq.between(1, last)).order_by(table.c.seq)
    for row in connection.execute(query.execution_options(yield_per=PAGE)):
        yield row.seq, table.name, row
