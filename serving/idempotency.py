"""Safe retries: a request repeated with the same Idempotency-Key replays its first answer instead
of scoring the person again, so a client that lost a 201 cannot put a second score on the record."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError

from serving.audit import AuditStore, utc_now
from serving.scoring import score_public
from serving.tables import IdempotentRequestRow, ScoreRow

HEADER = "Idempotency-Key"
# Printable ASCII, as the IETF Idempotency-Key draft's keys are: HTTP carries other text as Latin-1
# bytes, so a key in UTF-8 would be stored, measured and echoed garbled.
VISIBLE_ASCII = r"^[\x20-\x7e]*$"
REPLAYED_HEADER = "Idempotent-Replayed"
_SCORE = "score_id"


async def _one_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=255,
            pattern=VISIBLE_ASCII,
            description="Any unique printable ASCII text per request (a UUID, say). Sent again with the "
            "same body by the same API key, the first answer comes back (with Idempotent-Replayed: true) "
            "and nothing is scored or recorded again; sent with a different body, 422.",
        ),
    ] = None,
) -> str | None:
    """The request's one key: of two, a retry might send either, and only the first was remembered."""
    sent = request.headers.getlist(HEADER)
    if len(sent) > 1:
        message = f"send one {HEADER}; this request has {len(sent)}"
        error = {
            "type": "idempotency_keys",
            "loc": ("header", HEADER),
            "msg": message,
            "input": ", ".join(sent),
        }
        raise RequestValidationError([error])
    return key


IdempotencyKey = Annotated[str | None, Depends(_one_key)]


REPLAYED_RESPONSE_HEADER = {
    REPLAYED_HEADER: {
        "description": "true when this is the earlier answer to the same Idempotency-Key, replayed",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


@dataclass(frozen=True)
class Answer:
    """A response body, the scores it newly recorded, and whether it replays an earlier answer."""

    body: Any
    recorded: list[ScoreRow]
    replayed: bool


def fingerprint(route: str, body: dict[str, Any]) -> str:
    """What makes two requests the same: the route and the parsed body, key order aside."""
    text = json.dumps([route, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def without_nulls(value: Any) -> Any:
    """A body as sent with its null fields left out, at every depth: validation reads a null field as an
    absent one, so a retry that writes absent fields as null is the same request."""
    if isinstance(value, dict):
        return {name: without_nulls(v) for name, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def score_ref(row: ScoreRow) -> dict[str, str]:
    """A score's place in a response outline; `answer_once` puts the score itself there."""
    return {_SCORE: row.id}


def answer_once(
    audit: AuditStore,
    key_id: str,
    idempotency_key: str | None,
    request_hash: str | None,
    answer: Callable[[], tuple[Any, list[ScoreRow]]],
) -> Answer:
    """Score and record `answer()` (an outline of the response with `score_ref`s, and the new
    scores), or replay the answer this key already got for the same request (`request_hash`, None
    when no Idempotency-Key was sent: nothing is compared then).

    Two concurrent requests with one key both score; the second commit fails on the claim, rolls
    back its scores, and replays the first one's answer.
    """
    earlier = audit.claim(key_id, idempotency_key) if idempotency_key else None
    if earlier is None:
        outline, rows = answer()
        # A key is taken only by an answer that scored someone: a batch refused item by item
        # recorded nothing, so its corrected version may be sent under the same key.
        claim = _claim(key_id, idempotency_key, request_hash, outline) if rows else None
        try:
            audit.record(rows, claim)
            return Answer(_filled(outline, {row.id: row for row in rows}), rows, replayed=False)
        except IntegrityError:
            earlier = audit.claim(key_id, idempotency_key) if idempotency_key else None
            if earlier is None:
                raise
    if earlier.request_hash != request_hash:
        raise RequestValidationError(
            [
                {
                    "type": "idempotency_key_reused",
                    "loc": ("header", HEADER),
                    "msg": f"this key was first sent at {earlier.created_at:%Y-%m-%d %H:%M:%S} UTC with a "
                    "different request; a new request needs a new Idempotency-Key",
                    "input": idempotency_key,
                }
            ]
        )
    return Answer(_filled(earlier.response, audit.get_many(_score_ids(earlier.response))), [], replayed=True)


def _claim(
    key_id: str, idempotency_key: str | None, request_hash: str | None, outline: Any
) -> IdempotentRequestRow | None:
    if idempotency_key is None:
        return None
    return IdempotentRequestRow(
        key_id=key_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        created_at=utc_now(),
        response=outline,
    )


def _filled(outline: Any, rows: dict[str, ScoreRow]) -> Any:
    if isinstance(outline, dict):
        if outline.keys() == {_SCORE}:
            return score_public(rows[outline[_SCORE]])
        return {key: _filled(value, rows) for key, value in outline.items()}
    if isinstance(outline, list):
        return [_filled(value, rows) for value in outline]
    return outline


def _score_ids(outline: Any) -> list[str]:
    if isinstance(outline, dict):
        if outline.keys() == {_SCORE}:
            return [outline[_SCORE]]
        return [i for value in outline.values() for i in _score_ids(value)]
    if isinstance(outline, list):
        return [i for value in outline for i in _score_ids(value)]
    return []
