"""Scores: create one or a batch (scorers), read and search them (reviewers)."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from features.spec import MAX_BAND_LABEL
from serving.addresses import root_path
from serving.audit import ScoreFilter
from serving.conditional import ConditionalRoute
from serving.deps import AuditDep, HolderDep, MetricsDep, ReviewerKey, ScorerKey, record_shown
from serving.idempotency import (
    REPLAYED_HEADER,
    REPLAYED_RESPONSE_HEADER,
    Answer,
    IdempotencyKey,
    answer_once,
    fingerprint,
    score_ref,
    without_nulls,
)
from serving.json_body import JsonBodyRoute, each_name_once
from serving.negotiation import encoded
from serving.observability import Metrics
from serving.problems import PROBLEMS, field_errors, problem_response
from serving.queries import NoQuery, UtcTime, check_window, declared_parameters, query_error
from serving.schemas import (
    PRINTABLE,
    BatchPublic,
    ScorePage,
    ScorePublic,
    ScoreRead,
    ScoreSummary,
    few_unknown_fields,
)
from serving.scoring import response_json, score_public, score_requests
from serving.search import OtherSearch, band_error, known_bands, next_cursor, next_position

MAX_OFFSET = 1_000_000_000
LOCATION_HEADER = {
    "Location": {
        "description": "Where the new score is read again: /v1/scores/{id} (a reviewer key), under "
        "the server's root path (REINTEGRA_ROOT_PATH) when it has one",
        "schema": {"type": "string"},
    }
}
ENCODING_HEADERS = {
    "Content-Encoding": {
        "description": "gzip when the request's Accept-Encoding allows it (a 1,000-record answer is about "
        "35 MB of JSON, 7 MB gzipped); absent otherwise",
        "schema": {"type": "string"},
    },
    "Vary": {"description": "Accept-Encoding", "schema": {"type": "string"}},
}


class ScoreQuery(BaseModel):
    """The search's filters and page; a name not listed here, or an empty filter, is refused, not ignored
    or read as 'match nothing'."""

    model_name: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=PRINTABLE,
        description="Scores of this model (default: the serving one; stores may be shared)",
    )
    person_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=PRINTABLE,
        description="Scores sent with this person_id, exactly as sent (case and spaces count)",
    )
    since: UtcTime | None = Field(None, description="Created at or after this time (naive times are UTC)")
    until: UtcTime | None = Field(None, description="Created before this time (naive times are UTC)")
    band: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_BAND_LABEL,
        pattern=PRINTABLE,
        description="Scores in this risk band (a label of risk_bands in GET /v1/model, or one an earlier "
        "version's scores hold); an unknown band is refused with the known ones",
    )
    model_version: str | None = Field(
        None, min_length=1, max_length=32, pattern=PRINTABLE, description="Scores made by this model version"
    )
    limit: int = Field(50, ge=1, le=500, description="The most scores on the page")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Matching scores to skip, newest first")
    cursor: str | None = Field(
        None, max_length=200, description="A page's `next_cursor`, for the page after it (without offset)"
    )


def scores_router(score_request: type[BaseModel], example: dict[str, Any], max_batch: int) -> APIRouter:
    """Routes for scores; the request model is generated from the serving model's spec."""
    router = APIRouter(prefix="/v1", tags=["scores"], responses=PROBLEMS, route_class=JsonBodyRoute)

    class BatchScoreRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        items: list[Any] = Field(
            min_length=1,
            max_length=max_batch,
            description=f"At most {max_batch} score requests (REINTEGRA_MAX_BATCH), each shaped like "
            "the body of POST /v1/scores; an invalid item is reported in its place without failing "
            "the others.",
            # Items are validated one by one (a bad one, even one that is not an object, fails alone),
            # yet each is a ScoreRequest.
            json_schema_extra={
                "examples": [[example]],
                "items": {"$ref": "#/components/schemas/ScoreRequest"},
            },
        )
        _few_unknown_fields = model_validator(mode="before")(few_unknown_fields(["items"]))
        _each_name_once = model_validator(mode="before")(each_name_once)

    @router.post(
        "/scores",
        status_code=201,
        response_model=ScorePublic,
        summary="Score one record",
        responses={201: {"headers": {**LOCATION_HEADER, **REPLAYED_RESPONSE_HEADER}}},
    )
    def create_score(
        body: score_request,  # type: ignore[valid-type]
        request: Request,
        key: ScorerKey,
        holder: HolderDep,
        audit: AuditDep,
        metrics: MetricsDep,
        idempotency_key: IdempotencyKey,
    ) -> Response:
        """Risk, needs with interventions and exact explanations; committed to the audit trail first."""

        def score() -> tuple[dict, list]:
            rows = score_requests(holder.current, [body], request.state.request_id, key.id)
            return score_ref(rows[0]), rows

        # Fields left out, not null: a version accepting one more field must not make a retry another request.
        # Hashed only when a retry can be compared with it (0.06 ms a request).
        request_hash = (
            fingerprint("scores", body.model_dump(mode="json", by_alias=True, exclude_none=True))
            if idempotency_key
            else None
        )
        answer = answer_once(audit, key.id, idempotency_key, request_hash, score)
        location = f"{root_path(request.scope)}/v1/scores/{answer.body['id']}"
        return _respond(answer, 201, metrics, location=location)

    @router.post(
        "/scores:batch",
        response_model=BatchPublic,
        summary=f"Score up to {max_batch} records",
        responses={200: {"headers": {**REPLAYED_RESPONSE_HEADER, **ENCODING_HEADERS}}},
    )
    def create_scores_batch(
        body: BatchScoreRequest,
        request: Request,
        key: ScorerKey,
        holder: HolderDep,
        audit: AuditDep,
        metrics: MetricsDep,
        idempotency_key: IdempotencyKey,
    ) -> Response:
        """Each item scored or refused on its own; all scores come from one model version."""

        def score() -> tuple[dict, list]:
            valid, items = [], []
            for index, raw in enumerate(body.items):
                try:
                    valid.append((index, score_request.model_validate(raw)))
                except ValidationError as exc:
                    items.append({"index": index, "status": 422, "errors": field_errors(exc.errors())})
            rows = (
                score_requests(holder.current, [v for _, v in valid], request.state.request_id, key.id)
                if valid
                else []
            )
            for (index, _), row in zip(valid, rows, strict=True):
                items.append({"index": index, "status": 201, "score": score_ref(row)})
            items.sort(key=lambda item: item["index"])
            return {"scored": len(rows), "failed": len(body.items) - len(rows), "items": items}, rows

        # The items as sent, null fields aside (as the single score's): they may hold what only an item's
        # own validation refuses (a lone surrogate).
        request_hash = (
            fingerprint("scores:batch", {"items": without_nulls(body.items)}) if idempotency_key else None
        )
        answer = answer_once(audit, key.id, idempotency_key, request_hash, score)
        return _respond(answer, 200, metrics, accept_encoding=request.headers.get("accept-encoding", ""))

    def read_score(
        score_id: Annotated[str, Path(description="The score's `id`, as its 201 or a search gave it")],
        request: Request,
        key: ReviewerKey,
        audit: AuditDep,
    ) -> dict[str, Any]:
        """The score exactly as returned, with the input record and the key that made it, for audit; a
        score never changes, so a client holding it gets a 304 (the read is recorded all the same)."""
        row = audit.get(score_id)
        if row is None:
            raise HTTPException(404, f"no score with id {score_id}")
        record_shown(request, audit, key, [row])
        return {**score_public(row, with_record=True), "key_id": row.key_id}

    router.add_api_route(
        "/scores/{score_id}",
        read_score,
        methods=["GET"],
        response_model=ScoreRead,
        response_model_exclude_unset=True,  # as returned: no `warnings` or `unseen` it did not have
        summary="Read one score",
        responses={404: problem_response("No score with this id")},
        dependencies=[Depends(declared_parameters(NoQuery))],
        route_class_override=ConditionalRoute,
    )

    @router.get(
        "/scores",
        response_model=ScorePage,
        summary="Search scores, newest first",
        dependencies=[Depends(declared_parameters(ScoreQuery))],
    )
    def list_scores(
        request: Request,
        key: ReviewerKey,
        audit: AuditDep,
        holder: HolderDep,
        query: Annotated[ScoreQuery, Query()],
    ) -> dict[str, Any]:
        model_name, band, limit, offset = query.model_name, query.band, query.limit, query.offset
        serving_bands = holder.current.bundle.spec.risk_bands.labels
        if band is not None and band not in serving_bands and model_name in (None, holder.name):
            error = band_error(band, known_bands(serving_bands, audit, holder.name))
            if error:
                raise query_error("band", "enum", error, band)
        check_window(request, query.since, query.until)
        where = ScoreFilter(
            model_name or holder.name, query.person_id, query.since, query.until, band, query.model_version
        )
        before = _position(query.cursor, where) if query.cursor is not None else None
        if before is not None and offset:
            message = "offset cannot be combined with cursor: the cursor already says where the page starts"
            raise query_error("offset", "cursor_offset", message, offset)
        rows, total = audit.search(where, limit + 1, offset, before)
        rows, more = rows[:limit], len(rows) > limit
        record_shown(request, audit, key, rows, query.person_id)
        items = [
            ScoreSummary(
                id=r.id,
                created_at=r.created_at,
                person_id=r.person_id,
                assessment_id=r.assessment_id,
                model_name=r.model_name,
                model_version=r.model_version,
                risk_probability=r.risk_probability,
                risk_band=r.risk_band,
                key_id=r.key_id,
            )
            for r in rows
        ]
        cursor = next_cursor(rows[-1].created_at, rows[-1].id, where) if more else None
        return {"items": items, "total": total, "limit": limit, "offset": offset, "next_cursor": cursor}

    return router


def _position(cursor: str, where: ScoreFilter) -> tuple[datetime, str]:
    """A `next_cursor`'s position; one of another search, or any other text, is a 422, not a 500."""
    try:
        return next_position(cursor, where)
    except OtherSearch as exc:
        message = (
            "this cursor continues a search with other filters; send model_name, person_id, since, until, "
            "band and model_version as on the page that gave it (limit may change), or leave cursor out to "
            "start from the newest score"
        )
        raise query_error("cursor", "cursor", message, cursor) from exc
    except ValueError as exc:
        message = "not a next_cursor this API returned; leave cursor out to start from the newest score"
        raise query_error("cursor", "cursor", message, cursor) from exc


def _respond(
    answer: Answer,
    status: int,
    metrics: Metrics,
    location: str | None = None,
    accept_encoding: str | None = None,
) -> Response:
    """The answer serialised once, gzipped when `accept_encoding` (given by the batch only: a single
    score's 35 kB would cost more to compress than to send on loopback) allows; a replay says so and
    counts no new scores."""
    for row in answer.recorded:
        metrics.scores.labels(row.risk_band).inc()
    if answer.replayed:
        metrics.replays.inc()
    headers = {REPLAYED_HEADER: "true"} if answer.replayed else {}
    if location is not None:
        headers["Location"] = location
    body = response_json(answer.body)
    if accept_encoding is not None:
        body, encoding = encoded(body, accept_encoding)
        headers.update(encoding)
    return Response(body, status_code=status, media_type="application/json", headers=headers)
