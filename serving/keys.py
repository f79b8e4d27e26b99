"""API keys: created once and shown once, stored as hashes, checked on every request."""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, Engine, Select, bindparam, delete, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from serving.database import driver_reason, waiting_at_most
from serving.tables import ApiKeyRow, EndedSessionRow

# A monitor key only scrapes /metrics: a Prometheus server need not hold a key that reads people's records.
Role = Literal["scorer", "reviewer", "admin", "monitor"]
ROLES: tuple[Role, ...] = ("scorer", "reviewer", "admin", "monitor")
KEY_PREFIX = "rk_"
NAME_LENGTH: int = ApiKeyRow.__table__.c.name.type.length
_KEYS = ApiKeyRow.__table__.c
_ACTIVE = select(_KEYS.id, _KEYS.name, _KEYS.role, _KEYS.created_at, _KEYS.last_used_at).where(
    _KEYS.revoked_at.is_(None)
)
_USED = (
    update(ApiKeyRow.__table__).where(_KEYS.id == bindparam("key_id")).values(last_used_at=bindparam("now"))
)
# A key's last use is written when the stored one is older than this, not on every request.
USE_RECORDED_EVERY = timedelta(minutes=1)
# How long that write waits for a busy store: the score or scrape it rides on waited the store's 10 s for
# it first, then 10 s more for its own write (a 503 after 20 s; a scrape past Prometheus's 10 s timeout).
USE_WRITE_WAIT_SECONDS = 1.0
# How long a key found active may still open /metrics while the key store does not answer.
REMEMBERED_SECONDS = 3600
log = logging.getLogger("reintegra.auth")
_BY_HASH = _ACTIVE.where(_KEYS.key_hash == bindparam("value"))
_BY_ID = _ACTIVE.where(_KEYS.id == bindparam("value"))
_ANY_BY_HASH = select(_KEYS.id).where(_KEYS.key_hash == bindparam("value"))


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None  # None: never used (to the minute: see USE_RECORDED_EVERY)


# Writes a key change's audit event on the connection that makes the change (serving/audit.py).
Recorder = Callable[[Connection, ApiKey], None]


def hash_key(key: str) -> str:
    """SHA-256 suffices: keys are 256-bit random tokens, not passwords."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """Keys in the database; every check reads it, so new and revoked keys apply at once."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._found: dict[str, tuple[ApiKey, float]] = {}  # key hash -> (key, when last found active)

    def create(self, role: Role, name: str = "", record: Recorder | None = None) -> tuple[ApiKey, str]:
        """A new key of `role`; the key itself is returned here and never again. `record` writes the
        key's audit event in the same transaction: when it raises, no key is made."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        if len(name) > NAME_LENGTH or not name.isprintable():
            # A newline or an escape sequence could forge a line of `keys list`.
            raise ValueError(
                f"a key name is one line of at most {NAME_LENGTH} printable characters: {name!r}"
            )
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKeyRow(
            id=str(uuid.uuid4()),
            name=name or role,
            role=role,
            key_hash=hash_key(key),
            created_at=datetime.now(UTC),
            revoked_at=None,
        )
        with self._sessions.begin() as session:
            session.add(row)
            if record is not None:
                session.flush()
                record(session.connection(), _public(row))
        return _public(row), key

    def verify(self, key: str, while_down: bool = False) -> ApiKey | None:
        """The active key matching `key`, or None. With `while_down`, a store that does not answer is
        taken to hold what it held when this process last found the key active, up to REMEMBERED_SECONDS
        ago: a monitor keeps its metrics through an outage, when they matter most."""
        digest = hash_key(key)
        try:
            found = self._active(_BY_HASH, digest)
        except SQLAlchemyError:
            remembered = self._found.get(digest) if while_down else None
            if remembered is None or time.monotonic() - remembered[1] > REMEMBERED_SECONDS:
                raise
            return remembered[0]
        if found is None:
            self._found.pop(digest, None)
        else:
            self._found[digest] = (found, time.monotonic())
        return found

    def refusal(self, key: str) -> str:
        """Why `verify` refused `key`, for a log line: a retired key still in use is named by its id,
        never by the key itself."""
        with self._engine.connect() as connection:
            revoked = connection.execute(_ANY_BY_HASH, {"value": hash_key(key)}).scalar()
        return f"API key {revoked}, revoked" if revoked else "unknown API key"

    def active(self, key_id: str) -> ApiKey | None:
        """The key with this id while it is not revoked, or None."""
        return self._active(_BY_ID, key_id)

    def get(self, key_id: str) -> ApiKey | None:
        """The key with this id, revoked or not: who made a score stays known after revocation."""
        with self._sessions() as session:
            row = session.get(ApiKeyRow, key_id)
        return None if row is None else _public(row)

    def _active(self, query: Select, value: str) -> ApiKey | None:
        """A Core query built once, not an ORM session: this runs on every request (0.7 -> 0.16 ms)."""
        with self._engine.connect() as connection:
            found = connection.execute(query, {"value": value}).first()
        if found is None:
            return None
        key_id, name, role, created_at, last_used_at = found
        self._record_use(key_id, last_used_at)
        return ApiKey(key_id, name, role, created_at, revoked_at=None, last_used_at=last_used_at)

    def _record_use(self, key_id: str, last_used_at: datetime | None) -> None:
        """Writes the key's last use when the stored one is a minute old or more: one write a minute
        per key, whatever the number of requests or workers. A store refusing it, or busy for longer than
        USE_WRITE_WAIT_SECONDS, does not refuse or hold up the request (the key was found)."""
        now = datetime.now(UTC)
        if last_used_at is not None and now - last_used_at < USE_RECORDED_EVERY:
            return
        try:
            with self._engine.connect() as connection, waiting_at_most(connection, USE_WRITE_WAIT_SECONDS):
                connection.execute(_USED, {"key_id": key_id, "now": now})
                connection.commit()
        except DBAPIError as exc:  # busy, gone, or read-only (a standby after a failover: InternalError)
            log.warning("could not record the use of API key %s: %s", key_id, driver_reason(exc))

    def readable(self) -> bool:
        """True when keys can be checked right now; with keys in a store of their own, the audit
        store answering says nothing about them."""
        try:
            with self._sessions() as session:
                session.execute(select(ApiKeyRow.id).limit(1)).all()
                session.execute(select(EndedSessionRow.token_hash).limit(1)).all()
        except Exception:  # any driver error means keys cannot be checked; readiness reports it
            return False
        return True

    def list(self) -> list[ApiKey]:
        with self._sessions() as session:
            return [_public(r) for r in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))]

    def end_session(self, token: str, forget_before: datetime) -> None:
        """Mark a page session ended; ended sessions older than any live cookie are forgotten."""
        with self._sessions.begin() as session:
            session.execute(delete(EndedSessionRow).where(EndedSessionRow.ended_at < forget_before))
            session.merge(EndedSessionRow(token_hash=hash_key(token), ended_at=datetime.now(UTC)))

    def session_ended(self, token: str) -> bool:
        """True when the page session with this token was signed out (its cookie may still be valid)."""
        with self._sessions() as session:
            return session.get(EndedSessionRow, hash_key(token)) is not None

    def revoke(self, key_id: str, record: Recorder | None = None) -> tuple[ApiKey, bool]:
        """The key, revoked, and whether this call revoked it (False: it was already, and keeps its time).
        `record` writes the revocation's audit event in the same transaction: when it raises, the key
        stays active; a key already revoked records nothing."""
        with self._sessions.begin() as session:
            row = session.get(ApiKeyRow, key_id)
            if row is None:
                raise KeyError(f"no key with id {key_id}; keys list shows each key's id, in its first column")
            newly = row.revoked_at is None
            if newly:
                row.revoked_at = datetime.now(UTC)
                if record is not None:
                    session.flush()
                    record(session.connection(), _public(row))
            return _public(row), newly


def _public(row: ApiKeyRow) -> ApiKey:
    return ApiKey(row.id, row.name, row.role, row.created_at, row.revoked_at, row.last_used_at)  # type: ignore[arg-type]
