"""Tables of the audit trail and the API key store."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, DateTime, Float, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Times stored in UTC and read back as aware datetimes (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class ScoreRow(Base):
    """One score as returned: input, outputs, explanations, model version, who and when."""

    __tablename__ = "scores"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[str] = mapped_column(String(36))
    person_id: Mapped[str | None] = mapped_column(String(128), index=True)
    assessment_id: Mapped[str | None] = mapped_column(String(128))
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(32), index=True)
    run_id: Mapped[str] = mapped_column(String(64))
    risk_probability: Mapped[float] = mapped_column(Float)
    risk_band: Mapped[str] = mapped_column(String(32), index=True)
    record: Mapped[dict] = mapped_column(JSON)
    result: Mapped[dict] = mapped_column(JSON)
    # Place in the audit chain and HMAC (serving/seal.py); null only in rows from before migration 0008.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    digest: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_scores_seq", "seq", unique=True),
        Index("ix_scores_person_created", "person_id", "created_at"),
        Index("ix_scores_model_band", "model_name", "risk_band"),  # the bands a model's scores hold
        # Whether a drift window gained a score, read from the index alone (serving/drift.py DriftCache).
        Index("ix_scores_version_created_seq", "model_name", "model_version", "created_at", "seq"),
    )


class ApiKeyRow(Base):
    """An API key, stored only as its SHA-256 hash (keys are long random tokens)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # to the minute (KeyStore)


class IdempotentRequestRow(Base):
    """A request sent with an Idempotency-Key, with its answer (each score by id) for retries to replay.

    Committed in the same transaction as its scores, so a retry finds both or neither.
    """

    __tablename__ = "idempotent_requests"

    key_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    response: Mapped[dict] = mapped_column(JSON)


class EndedSessionRow(Base):
    """A reviewer page session ended by signing out, by the hash of its token; kept as long as a
    session cookie can live, so a copy of the cookie signed before then opens nothing."""

    __tablename__ = "ended_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ReadinessRow(Base):
    """The one row /readyz rewrites and commits: a store that cannot take that write cannot take a score."""

    __tablename__ = "readiness"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScoreReadRow(Base):
    """One score shown to a key (API or page), or a person looked up in vain, so the trail says who read
    whose record and when, not only who made it. Kept as long as the scores."""

    __tablename__ = "score_reads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    key_id: Mapped[str] = mapped_column(String(36), index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    route: Mapped[str] = mapped_column(String(128))
    # None for a person looked up whose search showed no score: the lookup alone says they were looked for.
    score_id: Mapped[str | None] = mapped_column(String(36), index=True)
    person_id: Mapped[str | None] = mapped_column(String(128), index=True)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    digest: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_score_reads_seq", "seq", unique=True),)


class AuditEventRow(Base):
    """An administrative action (an API key created or revoked, a model version put into service), signed
    into the chain with the scores and reads: who could score and which version scored is evidence too."""

    __tablename__ = "audit_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    # The admin key's id, the operator (user@host) who ran a command, or the server itself.
    actor: Mapped[str] = mapped_column(String(128))
    subject: Mapped[str] = mapped_column(String(255))  # the key's id, or models:/name/version
    detail: Mapped[dict] = mapped_column(JSON)
    seq: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_events_seq", "seq", unique=True),)


class AuditChainRow(Base):
    """The one row holding the audit chain's end: every write of scores, reads or events advances it in the
    same transaction, so writers from every worker and host form one sequence."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str | None] = mapped_column(String(64))
    key_fingerprint: Mapped[str | None] = mapped_column(String(16))
    # Rows the store held when migration 0008 ran, which carry no digest.
    unsigned_rows: Mapped[int] = mapped_column(BigInteger)
