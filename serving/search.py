"""The score search shared by GET /v1/scores and the reviewer pages: its bands and its list positions."""

import base64
import hashlib
import json
from datetime import UTC, datetime

from serving.audit import AuditStore, ScoreFilter


def as_utc(value: datetime) -> datetime:
    """Naive times are UTC; a time that cannot be expressed in UTC is refused, not a 500."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("time is out of range once converted to UTC") from exc


def known_bands(serving: list[str], audit: AuditStore, model_name: str) -> list[str]:
    """The serving spec's bands, then those only earlier versions gave (a later spec may drop or
    rename a band, and the scores put in it must stay searchable)."""
    return list(dict.fromkeys([*serving, *audit.bands(model_name)]))


def band_error(band: str, bands: list[str]) -> str | None:
    """Why `band` matches no score of the serving model (None when it is one of `known_bands`): an
    unknown band would otherwise look like a band with no scores."""
    if band in bands:
        return None
    allowed = ", ".join(bands)
    return f"{band!r} is not a risk band of the serving model or of its stored scores; allowed: {allowed}"


def cursor_of(created_at: datetime, score_id: str) -> str:
    """A score's place in the search's order (created_at, then id) as opaque text for an address."""
    text = json.dumps([created_at.isoformat(), score_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def position(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) that `cursor_of` wrote; ValueError for any other text."""
    try:
        at, score_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        created_at = datetime.fromisoformat(at)
        if created_at.tzinfo is None or not isinstance(score_id, str):
            raise ValueError(cursor)
        return as_utc(created_at), score_id
    except (ValueError, TypeError) as exc:  # bad base64, JSON, shape or time are all ValueErrors
        raise ValueError(f"not a position this server gave out: {cursor!r}") from exc


class OtherSearch(ValueError):
    """A next_cursor sent with filters other than those of the search that gave it."""


def next_cursor(created_at: datetime, score_id: str, where: ScoreFilter) -> str:
    """A search's next page: the last score's position, tied to the search's filters (not its page size),
    so a cursor sent with other filters is refused rather than followed from a position in another list."""
    return f"{cursor_of(created_at, score_id)}.{_filters_digest(where)}"


def next_position(cursor: str, where: ScoreFilter) -> tuple[datetime, str]:
    """The position a `next_cursor` of this search holds; OtherSearch when it came from a search with other
    filters, ValueError for any other text."""
    at, dot, digest = cursor.rpartition(".")
    if not dot:
        raise ValueError(f"not a next_cursor this server gave out: {cursor!r}")
    found = position(at)
    if digest != _filters_digest(where):
        raise OtherSearch(cursor)
    return found


def _filters_digest(where: ScoreFilter) -> str:
    """16 hex digits of the filters; times in UTC, so one instant written in two zones is one search."""
    filters = [where.model_name, where.person_id, where.band, where.model_version]
    times = [at.astimezone(UTC).isoformat() if at else None for at in (where.since, where.until)]
    return hashlib.sha256(json.dumps([*filters, *times]).encode()).hexdigest()[:16]
