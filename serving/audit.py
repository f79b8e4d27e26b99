"""The audit trail: every score committed before it is returned, and found again by reviewers."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Select,
    Table,
    Transaction,
    Update,
    and_,
    bindparam,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker

from serving.database import driver_reason, waiting_at_most
from serving.events import Event, EventKind, rotation_event
from serving.seal import AuditKeyError, KeyRotated, Seal, content_hash, create_seal, load_seal
from serving.tables import (
    AuditChainRow,
    AuditEventRow,
    IdempotentRequestRow,
    ReadinessRow,
    ScoreReadRow,
    ScoreRow,
)

# Free space a SQLite store's disk needs to count as writable: a few scores' worth.
MIN_FREE_BYTES = 256 * 1024
# A readiness probe gives up on a locked store after this long: probes time out in a second or two
# (Kubernetes's default is 1 s), so waiting the store's full lock wait only held a thread per probe.
READINESS_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class ScoreFilter:
    """What a search matches; every field left None matches all.

    Several models may share one audit store, so a version means something only with its model name.
    """

    model_name: str | None = None
    person_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    band: str | None = None
    model_version: str | None = None
    upto: tuple[datetime, str] | None = None  # (created_at, id) of the newest score a paged list shows


@dataclass(frozen=True)
class ServedScore:
    """What drift reads of a score: its record and outputs, not its explanations (most of its 35 kB)."""

    created_at: datetime
    record: dict
    risk_probability: float
    risk_band: str
    needs: list[dict]


CHAIN = AuditChainRow.__table__
EVENTS = AuditEventRow.__table__
SCORES = ScoreRow.__table__
READS = ScoreReadRow.__table__
# Statements built once, not per score: building them and their cache keys cost more than the SQLite
# writes themselves (a signed score row 0.64 -> 0.39 ms, median of 2,000 in process).
_ADVANCE = (
    update(CHAIN)
    .where(CHAIN.c.id == 1)
    .values(seq=CHAIN.c.seq + bindparam("rows"))
    .returning(CHAIN.c.seq, CHAIN.c.digest, CHAIN.c.key_fingerprint)
)
_SIGNER = select(CHAIN.c.key_fingerprint).where(CHAIN.c.id == 1)
_SEAL_END = update(CHAIN).where(CHAIN.c.id == 1).values(digest=bindparam("end_digest"))
_INSERT_CLAIM = insert(IdempotentRequestRow.__table__)
_INSERT_SCORES = insert(SCORES)
_INSERT_READS = insert(READS)
_INSERT_EVENTS = insert(EVENTS)


def _untouched(table: Table) -> Update:
    """A write of no row of `table`, which fails all the same when the table is gone."""
    key = next(iter(table.primary_key.columns))
    return update(table).where(false()).values({key: key})


# Every table a score, a read or an event is written to: one renamed or dropped fails every such write,
# so readiness must fail with it.
_WRITTEN_TO = [_untouched(table) for table in (SCORES, READS, EVENTS, CHAIN, IdempotentRequestRow.__table__)]


class CommitUnknown(RuntimeError):
    """The connection was lost while the scores were committed, and the store could not be asked whether
    they were: the client may retry with its Idempotency-Key to find out without scoring twice."""


class AuditStore:
    """Scores in a SQL database (SQLite or PostgreSQL), newest first, each signed by `seal`."""

    def __init__(self, engine: Engine, seal: Seal):
        self.engine = engine
        self.seal = seal
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def record(self, rows: list[ScoreRow], claim: IdempotentRequestRow | None = None) -> None:
        """Commit the rows, and the idempotency claim they answer, in one transaction; returns only
        once they are durable. A claim already taken raises IntegrityError and records nothing. A commit
        whose connection was lost returns when the rows are found stored; CommitUnknown when no one can say.
        A claim comes only with rows: a key is taken only by an answer that scored someone.

        Core inserts, not the ORM unit of work: this runs on every score, before the 201.
        """
        if not rows:
            return
        values = [_values(row) for row in rows]
        with self.engine.connect() as connection:
            transaction = connection.begin()
            if claim is not None:
                connection.execute(_INSERT_CLAIM, _values(claim))
            self._append(connection, _INSERT_SCORES, values, timed=rows)
            self._commit(transaction, SCORES, rows[0].id)

    def _commit(self, transaction: Transaction, table: Table, row_id: str) -> None:
        """Commit a transaction that wrote row `row_id` of `table`. A connection lost during COMMIT may
        have committed, so "nothing was recorded" could be false: the row is then looked for on a new
        connection, and the error raised only when it is not there (CommitUnknown when no one can say)."""
        try:
            transaction.commit()
        except DBAPIError as exc:
            if not exc.connection_invalidated or not self._stored(table, row_id):
                raise

    def _stored(self, table: Table, row_id: str) -> bool:
        try:
            with self.engine.connect() as connection:
                found = connection.execute(select(table.c.id).where(table.c.id == row_id)).first()
        except DBAPIError as exc:
            raise CommitUnknown(driver_reason(exc)) from exc
        return found is not None

    def record_reads(
        self, key_id: str, request_id: str, route: str, rows: Iterable[ScoreRow], person_id: str | None
    ) -> None:
        """Commit that these scores were shown to `key_id`, one row each, before they are sent: the
        trail then says who read whose record, not only who made it. A search for `person_id` that shows
        no score is one row without a score: that the person was looked for is itself about them."""
        read_at = utc_now()
        looked_up = [(None, person_id)] if person_id and _could_be_person(person_id) else []
        shown = [(row.id, row.person_id) for row in rows] or looked_up
        values = [
            {
                "id": new_score_id(),
                "read_at": read_at,
                "key_id": key_id,
                "request_id": request_id,
                "route": route,
                "score_id": score_id,
                "person_id": person,
            }
            for score_id, person in shown
        ]
        if values:
            self._commit_appended(_INSERT_READS, values)

    def record_event(self, event: Event, change: Connection | None = None) -> None:
        """Commit an administrative event at the chain's end, before what it announces takes effect.
        `change` is the connection of the transaction making that change: in this store, the event
        joins it (both commit or neither); in another store, the event commits first."""
        values = _event_values(event)
        if change is not None and change.engine.url == self.engine.url:
            self._append(change, _INSERT_EVENTS, [values])
            return
        self._commit_appended(_INSERT_EVENTS, [values])

    def _commit_appended(self, rows: Insert, values: list[dict]) -> None:
        """Append `values` with the `rows` statement at the chain's end in a transaction of their own, and
        commit it."""
        with self.engine.connect() as connection:
            transaction = connection.begin()
            self._append(connection, rows, values)
            self._commit(transaction, rows.table, values[0]["id"])

    def rotate_key(self, new: Seal, command: str) -> int:
        """Hand the chain to `new`: a key_rotated event signed by this store's key and the chain's new
        signer commit together, so the next row links from this key's last digest under the new key.
        Returns the event's place, the last one this key signs."""
        values = _event_values(rotation_event(self.seal.fingerprint, new.fingerprint, command))
        with self.engine.begin() as connection:
            end = self._append(connection, _INSERT_EVENTS, [values])
            connection.execute(update(CHAIN).where(CHAIN.c.id == 1).values(key_fingerprint=new.fingerprint))
        return end

    def _append(
        self,
        connection: Connection,
        rows: Insert,
        values: list[dict],
        timed: Sequence[ScoreRow] = (),
    ) -> int:
        """Insert rows with the `rows` statement at the chain's end, each with its place and digest;
        returns the last place. Advancing the chain row first locks it (a row lock on PostgreSQL, the
        write lock on SQLite) until the commit, so concurrent writers, from any worker or host, take
        turns and never fork the chain. It also names the chain's signer: a process whose key was
        rotated away writes nothing (the transaction rolls back), since no one could verify its rows.

        Scores (`timed`) without a time are timed here, holding the lock: a score then commits before any
        later-timed one, so a search paged by time never passes a time under which a score is still to
        appear (timed at scoring, a batch of 1,000 committed 1.2 s after its time, and a walk begun
        meanwhile skipped it)."""
        end, digest, signer = connection.execute(_ADVANCE, {"rows": len(values)}).one()
        if signer not in (None, self.seal.fingerprint):
            raise KeyRotated(self.seal.fingerprint, signer)
        if timed:
            now = utc_now()
            for row, value in zip(timed, values, strict=True):
                if value["created_at"] is None:  # a row given its time (a test's, a benchmark's) keeps it
                    row.created_at = value["created_at"] = now
        digest = digest or ""
        for seq, value in zip(range(end - len(values) + 1, end + 1), values, strict=True):
            digest = self.seal.link(digest, seq, content_hash(rows.table.name, value))
            value["seq"], value["digest"] = seq, digest
        connection.execute(rows, values)
        connection.execute(_SEAL_END, {"end_digest": digest})
        return end

    def bind_key(self) -> None:
        """Record which key signs this store, or refuse a key other than the one its rows are signed with:
        rows signed by two keys could not be verified with either."""
        fingerprint = self.seal.fingerprint
        with self.engine.begin() as connection:
            claim = update(CHAIN).where(CHAIN.c.id == 1, CHAIN.c.key_fingerprint.is_(None))
            connection.execute(claim.values(key_fingerprint=fingerprint))
            signer = connection.execute(_SIGNER).scalar_one()
            rotated = signer != fingerprint and _rotated_from(connection, fingerprint)
        if rotated:
            raise AuditKeyError(
                f"{KeyRotated(fingerprint, signer)}: set REINTEGRA_AUDIT_KEY_FILE to the new key's file, and "
                "keep this one: `audit verify --previous-key-file` needs it for the rows it signed"
            )
        if signer != fingerprint:
            raise AuditKeyError(
                f"the audit store is signed with key {signer}, and this key is {fingerprint}: "
                "give the key file the store was signed with (REINTEGRA_AUDIT_KEY_FILE)"
            )

    def signs_current_key(self) -> bool:
        """False once the chain was handed to another key (audit rotate-key): this process's writes are
        refused until it restarts with the new key. A store that does not answer is writable()'s to report."""
        try:
            with self.engine.connect() as connection:
                signer = connection.execute(_SIGNER).scalar_one()
        except Exception:  # any driver error: not this check's to report
            return True
        return signer in (None, self.seal.fingerprint)

    def claim(self, key_id: str, idempotency_key: str) -> IdempotentRequestRow | None:
        """The request an API key first sent with this Idempotency-Key, if any."""
        with self._sessions() as session:
            return session.get(IdempotentRequestRow, (key_id, idempotency_key))

    def get_many(self, score_ids: list[str]) -> dict[str, ScoreRow]:
        """Scores by id, in one query (a replayed batch holds up to REINTEGRA_MAX_BATCH)."""
        with self._sessions() as session:
            rows = session.scalars(select(ScoreRow).where(ScoreRow.id.in_(score_ids))).all()
        return {row.id: row for row in rows}

    def get(self, score_id: str) -> ScoreRow | None:
        if not _storable(score_id):
            return None
        with self._sessions() as session:
            return session.get(ScoreRow, score_id)

    def search(
        self, where: ScoreFilter, limit: int, offset: int, before: tuple[datetime, str] | None = None
    ) -> tuple[list[ScoreRow], int]:
        """One page of matching scores, newest first (then by id, as scores of one batch share their
        time), and how many match in all; `before` starts the page after that (created_at, id)."""
        query = _matching(where)
        if query is None:
            return [], 0
        with self._sessions() as session:
            total = session.scalar(_count_of(query))
            if before is not None:
                at, score_id = before
                query = query.where(
                    or_(ScoreRow.created_at < at, and_(ScoreRow.created_at == at, ScoreRow.id < score_id))
                )
            page = session.scalars(_newest_first(query).limit(limit).offset(offset)).all()
        return list(page), int(total or 0)

    def newest(self, where: ScoreFilter) -> ScoreRow | None:
        """The newest matching score, without counting the rest (a paged list pins itself there)."""
        query = _matching(where)
        if query is None:
            return None
        with self._sessions() as session:
            return session.scalars(_newest_first(query).limit(1)).first()

    def newest_served(self, where: ScoreFilter, limit: int) -> list[ServedScore]:
        """The newest `limit` matching scores' records and outputs, newest first: a bounded read, however
        many scores match."""
        query = _matching(where)
        if query is None:
            return []
        needs = ScoreRow.result["needs"]  # JSON path on SQLite and PostgreSQL alike
        columns = (ScoreRow.created_at, ScoreRow.record, ScoreRow.risk_probability, ScoreRow.risk_band, needs)
        with self.engine.connect() as connection:
            rows = connection.execute(_newest_first(query.with_only_columns(*columns)).limit(limit)).all()
        return [ServedScore(*row) for row in rows]

    def newest_seq(self, where: ScoreFilter) -> int | None:
        """The chain place of the matching score committed last: places are given at commit, so it
        changes exactly when a matching score is added, whatever time that score carries."""
        query = _matching(where)
        if query is None:
            return None
        with self.engine.connect() as connection:
            return connection.execute(query.with_only_columns(func.max(ScoreRow.seq))).scalar()

    def count(self, where: ScoreFilter) -> int:
        """How many scores match."""
        query = _matching(where)
        if query is None:
            return 0
        with self._sessions() as session:
            return int(session.scalar(_count_of(query)) or 0)

    def model_versions(self, model_name: str) -> list[str]:
        """Every version of `model_name` that has produced a score."""
        query = select(ScoreRow.model_version).where(ScoreRow.model_name == model_name).distinct()
        with self._sessions() as session:
            return sorted(session.scalars(query).all(), key=_numeric)

    def run_of(self, model_name: str, version: str) -> str | None:
        """The training run a version's stored scores name: the audit trail outlives the registry."""
        query = select(ScoreRow.run_id).where(
            ScoreRow.model_name == model_name, ScoreRow.model_version == version
        )
        with self._sessions() as session:
            return session.scalar(query.limit(1))

    def bands(self, model_name: str) -> list[str]:
        """Every risk band a score of `model_name` was put in, by whichever version's spec."""
        query = select(ScoreRow.risk_band).where(ScoreRow.model_name == model_name).distinct()
        with self._sessions() as session:
            return sorted(session.scalars(query).all())

    def writable(self) -> bool:
        """True when a write commits within READINESS_WAIT_SECONDS. An empty write or a rollback would
        pass on a full disk (nothing reaches it), so one small row is rewritten and committed."""
        if not self._room_for_scores():
            return False
        try:
            with self.engine.connect() as connection, waiting_at_most(connection, READINESS_WAIT_SECONDS):
                for statement in _WRITTEN_TO:
                    connection.execute(statement)
                probe = update(ReadinessRow).where(ReadinessRow.id == 1).values(checked_at=utc_now())
                rewritten = connection.execute(probe).rowcount == 1
                connection.commit()
                return rewritten
        except Exception:  # any driver error means not writable; readiness reports it
            return False

    def _room_for_scores(self) -> bool:
        """A SQLite disk that scores filled still takes the probe's one-row rewrite, into WAL space a
        failed score had allocated, while every score (~75 kB in the WAL) fails: so ask for room."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database:
            return True
        return shutil.disk_usage(Path(database).resolve().parent).free >= MIN_FREE_BYTES


def open_seal(engine: Engine, path: Path) -> tuple[Seal, bool]:
    """The key in `path`, or a new one made there (True) when the store has signed nothing yet; a store
    already signed with a key whose file is missing is refused, not signed on with a new key."""
    if path.exists():
        return load_seal(path), False
    with engine.connect() as connection:
        signer = connection.execute(_SIGNER).scalar_one()
    if signer is not None:
        raise AuditKeyError(
            f"the audit key file {path} does not exist, and the audit store is signed with key "
            f"{signer}: put that key's file there or set REINTEGRA_AUDIT_KEY_FILE to it"
        )
    return create_seal(path), True


def read_events(
    engine: Engine, since: datetime | None, until: datetime | None, kind: EventKind | None
) -> list[AuditEventRow]:
    """Administrative events in chain order (the order they happened), `since` inclusive and `until`
    exclusive; reading needs no key, so it takes an engine that may be read-only."""
    query = select(AuditEventRow).order_by(AuditEventRow.seq)
    if since is not None:
        query = query.where(AuditEventRow.at >= since)
    if until is not None:
        query = query.where(AuditEventRow.at < until)
    if kind is not None:
        query = query.where(AuditEventRow.kind == kind)
    with sessionmaker(engine)() as session:
        return list(session.scalars(query))


def _rotated_from(connection: Connection, fingerprint: str) -> bool:
    """Whether a key_rotated event hands the chain on from the key `fingerprint`."""
    rotations = select(EVENTS.c.detail).where(EVENTS.c.kind == "key_rotated")
    return any(detail.get("old_key") == fingerprint for detail in connection.execute(rotations).scalars())


def _event_values(event: Event) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "at": utc_now(),
        "kind": event.kind,
        "actor": event.actor,
        "subject": event.subject,
        "detail": event.detail,
    }


def _values(row: ScoreRow | IdempotentRequestRow) -> dict:
    return {column.name: getattr(row, column.name) for column in row.__table__.columns}


def _storable(text: str) -> bool:
    """False for text no stored row can hold: PostgreSQL refuses NUL, and ids never contain it."""
    return "\x00" not in text


def _could_be_person(person_id: str) -> bool:
    """Whether a looked-up id fits the column a score's person is stored in; longer text, or text with
    NUL, names nobody a score could have, and PostgreSQL would refuse the row."""
    return len(person_id) <= ScoreRow.__table__.c.person_id.type.length and _storable(person_id)


def new_score_id() -> str:
    return str(uuid.uuid4())


def utc_now() -> datetime:
    return datetime.now(UTC)


def _numeric(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (10**9, version)


def _matching(where: ScoreFilter) -> Select[tuple[ScoreRow]] | None:
    """The scores `where` matches; None when a text in it could never have been stored."""
    texts = (where.model_name, where.person_id, where.band, where.model_version)
    if not all(_storable(v) for v in texts if v):
        return None
    query = select(ScoreRow)
    if where.model_name is not None:
        query = query.where(ScoreRow.model_name == where.model_name)
    if where.person_id is not None:
        query = query.where(ScoreRow.person_id == where.person_id)
    if where.since is not None:
        query = query.where(ScoreRow.created_at >= where.since)
    if where.until is not None:
        query = query.where(ScoreRow.created_at < where.until)
    if where.band is not None:
        query = query.where(ScoreRow.risk_band == where.band)
    if where.model_version is not None:
        query = query.where(ScoreRow.model_version == where.model_version)
    if where.upto is not None:
        at, score_id = where.upto
        query = query.where(
            or_(ScoreRow.created_at < at, and_(ScoreRow.created_at == at, ScoreRow.id <= score_id))
        )
    return query


def _newest_first(query: Select[tuple[ScoreRow]]) -> Select[tuple[ScoreRow]]:
    return query.order_by(ScoreRow.created_at.desc(), ScoreRow.id.desc())


def _count_of(query: Select[tuple[ScoreRow]]) -> Select[tuple[int]]:
    return select(func.count()).select_from(query.subquery())
