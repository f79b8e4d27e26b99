"""Every error as application/problem+json, with the request id; never a stack trace."""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InternalError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from serving.addresses import without_trailing_slash
from serving.audit import CommitUnknown
from serving.idempotency import VISIBLE_ASCII
from serving.model_store import ModelUnavailable, RegistryUnreachable, SchemaChanged
from serving.schemas import PRINTABLE, Problem
from serving.seal import KeyRotated

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
# What our patterns allow, in words: a regular expression tells a caller little.
PATTERN_WORDS = {
    PRINTABLE: "control characters (line breaks, tabs, NUL) are not allowed",
    VISIBLE_ASCII: "only printable ASCII is allowed (space to ~): no tabs, line breaks or other alphabets",
}
NOT_AN_OBJECT = {"missing", "model_attributes_type", "dict_type"}
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
STORE_RETRY_SECONDS = 5
# Where a request whose commit is in doubt is retried under its Idempotency-Key.
SCORING_ROUTES = {"/v1/scores", "/v1/scores:batch"}
# MLflow's own answer may take 20 s (2 retries of 10 s); the alias poller's default interval.
REGISTRY_RETRY_SECONDS = 30
# PostgreSQL's undefined_table and undefined_column (a table renamed or dropped under the server), and
# read_only_sql_transaction (a store turned read-only, a standby after a failover, say).
UNAVAILABLE_SQLSTATES = {"42P01", "42703", "25006"}
log = logging.getLogger("reintegra.errors")
# Sent on every answer by RequestContextMiddleware, which no route's documentation knows of.
REQUEST_ID_DOC = {
    "description": "The request's X-Request-ID when it is 1-64 letters, digits or . _ : -, else a new "
    "one; the answer's problem body and the server's log lines carry it",
    "schema": {"type": "string"},
}
# Sent on every /v1 answer by RequestContextMiddleware, unless the route sets its own (serving.conditional).
NO_STORE_DOC = {
    "description": "no-store: the answer may hold a person's record, so no cache may keep it",
    "schema": {"type": "string"},
}


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    if request is not None:
        body["instance"] = request.url.path
        body["request_id"] = getattr(request.state, "request_id", None)
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_response(description: str) -> dict[str, Any]:
    """An error response for the OpenAPI document: problem+json only, as sent (a response `model`
    would list it as application/json too)."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}}


# The errors every /v1 route may answer, documented once for all the API's routers (the limits' 400, 408
# and 413, which any address may get, are added to every operation: see serving.limits.LIMIT_PROBLEMS).
PROBLEMS = {
    status: problem_response(text)
    for status, text in {
        401: "Missing or unknown API key",
        403: "The key's role may not do this",
        406: "The Accept header allows neither application/json nor application/problem+json",
        415: "A body sent as anything but application/json (text/plain, a form, no Content-Type), or "
        "compressed (any Content-Encoding but identity): send JSON, uncompressed",
        422: "Invalid request: every bad field (of the body, a query parameter or a header) with what "
        "is allowed",
        503: "No model loaded, the audit or key store did not answer, or the worker is answering its most "
        "requests at once (REINTEGRA_MAX_IN_FLIGHT); the detail says whether anything may have been "
        "recorded, Retry-After when to send again",
    }.items()
}
PROBLEMS[401]["headers"] = {
    "WWW-Authenticate": {"description": "Bearer: the scheme the key is sent in", "schema": {"type": "string"}}
}
PROBLEMS[415]["headers"] = {
    "Accept-Encoding": {
        "description": "identity: the only encoding taken (sent when the body was compressed)",
        "schema": {"type": "string"},
    }
}
PROBLEMS[503]["headers"] = {
    "Retry-After": {
        "description": "Seconds to wait before sending again: 1 when the worker is answering its most "
        "requests at once (REINTEGRA_MAX_IN_FLIGHT), 5 when the audit or key store did not answer, 30 when "
        "MLflow did not (a reload); absent when a retry cannot help (the alias points at nothing, or the "
        "audit key was rotated and the server must restart)",
        "schema": {"type": "integer"},
    }
}


def field_errors(errors: list[dict]) -> list[dict]:
    """Pydantic errors as {field, message, value}: what is wrong and what is allowed."""
    out = []
    for error in errors:
        location = [str(p) for p in error.get("loc", ()) if p != "body"]
        message = error.get("msg", "invalid")
        if error.get("type") == "json_invalid":  # its location is the character where parsing stopped
            where = f" at character {location[0]} (from 0)" if location else ""
            location, message = [], f"the body is not valid JSON: {error.get('ctx', {}).get('error')}{where}"
        elif error.get("type") == "extra_forbidden" and "record" in location[:-1]:
            message = "unknown field; the record accepts only the model's release-time inputs"
        elif error.get("type") == "extra_forbidden":
            message = "unknown field; the request body's fields are in the API schema (GET /docs)"
        elif error.get("type") == "too_long" and location == ["items"]:  # a batch (no other body has items)
            ctx = error.get("ctx", {})
            message = (
                f"a batch holds at most {ctx.get('max_length')} items (REINTEGRA_MAX_BATCH), not "
                f"{ctx.get('actual_length')}: send the rest in another batch"
            )
        elif error.get("type") == "too_short" and location == ["items"]:
            message = "an empty batch scores no one: send at least one item"
        elif error.get("type") == "value_error":  # our own validators' words, without pydantic's prefix
            message = str(error.get("ctx", {}).get("error", message))
        elif (
            error.get("type") == "string_too_short" and location[:1] == ["query"] and error.get("input") == ""
        ):
            message = "an empty filter would match no score; leave the parameter out to match every value"
        elif error.get("type") == "string_pattern_mismatch":
            message = PATTERN_WORDS.get(error.get("ctx", {}).get("pattern"), message)
        elif not location and error.get("type") == "model_type":  # only a batch item meets this one
            message = "each item must be a JSON object shaped like the body of POST /v1/scores"
        elif (
            not location and error.get("type") in NOT_AN_OBJECT
        ):  # JSON, but no object (another type is a 415)
            message = f"{_body_kind(error)}; send a JSON object shaped like the schema (GET /docs)"
        out.append(
            {"field": ".".join(location) or "(body)", "message": message, "value": _echo(error.get("input"))}
        )
    return out


def _body_kind(error: dict) -> str:
    """What a JSON body that is not an object was (FastAPI reads an empty one as missing); JSON has no
    other kind of value, so what is left is a float."""
    if error.get("type") == "missing":
        return "the request has no body"
    kinds = {type(None): "null", list: "an array", str: "a string", bool: "a boolean", int: "a number"}
    return f"the body is {kinds.get(type(error.get('input')), 'a number')}"


def _echo(value: Any) -> str | int | float | bool | None:
    """The rejected value as any JSON writer can carry it: NaN, infinities, integers beyond 64 bits
    (orjson writes batch answers and the audit store) and lone surrogates become text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value if isinstance(value, int | float | bool | None) else None


def install(app: FastAPI, on_every_operation: dict[str, dict[str, Any]]) -> None:
    """Register the handlers that turn every error into a problem, and its schema in the OpenAPI document,
    with the responses `on_every_operation` (answers sent before any route) listed on every operation."""
    openapi = app.openapi

    def with_problem_schema() -> dict[str, Any]:
        """FastAPI lists the schemas of response models only; errors name Problem by reference."""
        document = openapi()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, schema in {**problem_schema.pop("$defs", {}), "Problem": problem_schema}.items():
            schemas.setdefault(name, schema)
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, response in on_every_operation.items():
                    responses.setdefault(status, copy.deepcopy(response))
                for response in responses.values():
                    headers = response.setdefault("headers", {})
                    headers.setdefault("X-Request-ID", REQUEST_ID_DOC)
                    # Not on the answers the protocol sends before the app, which close the connection.
                    if path.startswith("/v1/") and "Connection" not in headers:
                        headers.setdefault("Cache-Control", NO_STORE_DOC)
        return document

    app.openapi = with_problem_schema  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = field_errors(list(exc.errors()))
        return problem(422, "Invalid request", f"{len(errors)} invalid field(s)", request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, RequestValidationError):  # FastAPI's 400 for a body json_body refused
            return await invalid_request(request, exc.__cause__)
        headers, detail = exc.headers, str(exc.detail)
        if exc.status_code == 405 and (allowed := _allowed_methods(request, (headers or {}).get("Allow"))):
            headers = {**(headers or {}), "Allow": allowed}
            # Not the method by name: a HEAD reaches this as the GET it is run as (serving.head).
            detail = f"this address does not take that method; it takes {allowed}"
        if exc.status_code == 404 and (address := without_trailing_slash(request)):
            detail = f"no route at {request.url.path}; without the trailing slash: {address}"
        return problem(exc.status_code, _title(exc.status_code), detail, request, headers)

    @app.exception_handler(SchemaChanged)
    async def needs_restart(request: Request, exc: SchemaChanged) -> JSONResponse:
        detail = f"{exc}; the loaded version keeps serving"
        return problem(409, "Conflict", detail, request, record_changes=exc.changes)

    async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        """The store refused, timed out, or every pooled connection stayed busy past its wait."""
        # The first line only: the rest is the SQL statement and a link, lines without the request id.
        reason = str(exc).splitlines()[0]
        log.error("audit or key store unavailable (%s %s): %s", request.method, _route_of(request), reason)
        # Which of the two failed is not known here (they may be one database); a read records nothing.
        writes = "" if request.method in ("GET", "HEAD") else " nothing was recorded,"
        detail = f"the audit or key store is unavailable;{writes} try again"
        headers = {"Retry-After": str(STORE_RETRY_SECONDS)}
        return problem(503, "Store unavailable", detail, request, headers)

    app.add_exception_handler(OperationalError, store_unavailable)
    app.add_exception_handler(PoolTimeout, store_unavailable)

    async def store_refused(request: Request, exc: Exception) -> JSONResponse:
        """A table or column this server migrated was renamed or dropped under it, or the store became
        read-only: PostgreSQL's ProgrammingError and InternalError (SQLite calls both OperationalError),
        and readiness already says 503. Any other such error is a bug and stays a 500."""
        if getattr(getattr(exc, "orig", None), "sqlstate", None) not in UNAVAILABLE_SQLSTATES:
            raise exc
        return await store_unavailable(request, exc)

    app.add_exception_handler(ProgrammingError, store_refused)
    app.add_exception_handler(InternalError, store_refused)

    @app.exception_handler(CommitUnknown)
    async def commit_unknown(request: Request, exc: CommitUnknown) -> JSONResponse:
        """Not "nothing was recorded": the scores, the read or the event may have been committed as the
        connection was lost."""
        route = _route_of(request)
        log.error("audit store lost during a commit (%s %s): %s", request.method, route, exc)
        if request.method == "POST" and route in SCORING_ROUTES:
            detail = (
                "the connection to the audit store was lost as the score was committed, and the store "
                "cannot say yet whether it was: retry with the same Idempotency-Key, which returns the "
                "score if it was"
            )
        else:
            detail = (
                "the connection to the audit store was lost as this request's audit record was committed, "
                "and the store cannot say yet whether it was: try again"
            )
        return problem(503, "Store unavailable", detail, request, {"Retry-After": str(STORE_RETRY_SECONDS)})

    @app.exception_handler(KeyRotated)
    async def old_audit_key(request: Request, exc: KeyRotated) -> JSONResponse:
        """Only a restart with the new key file lets this process write again: no Retry-After."""
        log.error("%s; this server still holds the old key", exc)
        detail = (
            f"{exc}; this server still holds the old key: restart it with REINTEGRA_AUDIT_KEY_FILE naming "
            "the new key's file; nothing was recorded"
        )
        return problem(503, "Audit key rotated", detail, request)

    @app.exception_handler(ModelUnavailable)
    async def no_model(request: Request, exc: ModelUnavailable) -> JSONResponse:
        headers = (
            {"Retry-After": str(REGISTRY_RETRY_SECONDS)} if isinstance(exc, RegistryUnreachable) else None
        )
        return problem(503, "Model unavailable", str(exc), request, headers)


def _allowed_methods(request: Request, named: str | None) -> str | None:
    """Every method a route takes at this path: Starlette's 405 names only the first route's, and
    /v1/scores is two routes (GET searches, POST scores). Mounted apps keep their own answer."""
    methods = {m.strip() for m in named.split(",")} if named else set()
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    for method in HTTP_METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in routes):
            methods.add(method)
    if "GET" in methods:  # answered as GET without the body (serving.head)
        methods.add("HEAD")
    return ", ".join(sorted(methods)) or None


def _route_of(request: Request) -> str:
    """The route's template: a person page's path holds the person's id, which the log must not."""
    return getattr(request.scope.get("route"), "path", "unmatched")


# RFC 9110's name, which the 413 of a declared length uses; Python 3.11's HTTPStatus still says "Request
# Entity Too Large", so a streamed body cut off at the limit was titled otherwise.
TITLES = {413: "Content Too Large"}


def _title(status: int) -> str:
    from http import HTTPStatus

    return TITLES.get(status) or HTTPStatus(status).phrase
