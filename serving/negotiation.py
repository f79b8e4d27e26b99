"""Content negotiation (RFC 9110 12.5): the API answers in JSON only, so an Accept that allows no JSON
gets a 406 saying what is sent, rather than JSON it said it cannot read; it reads JSON bodies only, so a
body sent as another type gets a 415 naming application/json; a batch's answer is gzipped when
Accept-Encoding allows it."""

from __future__ import annotations

import gzip

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.addresses import app_path
from serving.problems import PROBLEM_JSON, problem

# What /v1 answers in: scores and the model in JSON, every error as a problem.
OFFERED = ("application/json", PROBLEM_JSON)
# 35.6 MB of JSON for 1,000 records: level 1 gives 6.9 MB in 0.43 s, level 6 5.3 MB in 0.93 s, level 9
# (Starlette's GZipMiddleware) 5.0 MB in 2.1 s; the batch itself takes about 4.5 s.
GZIP_LEVEL = 1
NOT_ACCEPTABLE_DETAIL = (
    f"this API answers in {OFFERED[0]} (errors in {OFFERED[1]}) and the request's Accept allows neither; "
    f"send Accept: {OFFERED[0]}, */*, or no Accept header"
)


def acceptable(accept: str, offered: str) -> bool:
    """Whether an Accept header value allows media type `offered`: its most specific matching range
    decides, and q=0 refuses. A blank header allows anything, as no header does."""
    if not accept.strip():
        return True
    kind = offered.split("/")[0]
    best: tuple[int, float] | None = None  # (specificity, q) of the most specific range that matches
    for element in accept.split(","):
        media_range, *parameters = (part.strip() for part in element.split(";"))
        specificity = {offered: 2, f"{kind}/*": 1, "*/*": 0}.get(media_range.lower())
        if specificity is None or (best is not None and best[0] >= specificity):
            continue
        best = (specificity, _quality(parameters))
    return best is not None and best[1] > 0


def is_json(content_type: str) -> bool:
    """Whether a Content-Type names JSON as FastAPI parses it (application/json or application/*+json,
    whatever its parameters, `charset=utf-8` say)."""
    kind, _, subtype = content_type.partition(";")[0].strip().lower().partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def allows_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip: named (or as x-gzip), else through `*`, with q > 0."""
    named: dict[str, float] = {}
    for element in accept_encoding.split(","):
        coding, *parameters = (part.strip() for part in element.split(";"))
        named.setdefault(coding.lower(), _quality(parameters))
    return named.get("gzip", named.get("x-gzip", named.get("*", 0.0))) > 0


def encoded(body: bytes, accept_encoding: str) -> tuple[bytes, dict[str, str]]:
    """The body gzipped when the client allows it, with the headers saying how it was chosen. Called in
    a route's thread-pool thread, so compressing a large answer never holds the event loop."""
    if not allows_gzip(accept_encoding):
        return body, {"Vary": "Accept-Encoding"}
    return gzip.compress(body, GZIP_LEVEL, mtime=0), {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}


def _quality(parameters: list[str]) -> float:
    """A range's q (1 when absent); an unreadable one counts as 1, as the range was still named."""
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 1.0
    return 1.0


class AcceptMiddleware:
    """Answers 406 to a /v1 request whose Accept allows none of the API's types; pages, health checks and
    /metrics keep their own answers."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and app_path(scope).startswith("/v1/"):
            accept = b",".join(value for name, value in scope["headers"] if name == b"accept")
            if accept and not any(acceptable(accept.decode("latin-1"), media) for media in OFFERED):
                response = problem(406, "Not Acceptable", NOT_ACCEPTABLE_DETAIL, Request(scope))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class JsonBodyMiddleware:
    """Answers 415 to a POST to /v1 whose body is sent as anything but JSON (text/plain, a form, no
    Content-Type): FastAPI leaves such a body unparsed, and its 422 said the body was not an object.
    Runs after the key check and before the body is read; a POST without a body passes."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and app_path(scope).startswith("/v1/"):
            headers = dict(scope["headers"])
            declared = headers.get(b"content-length", b"").strip()
            has_body = (declared.isdigit() and int(declared) > 0) or b"transfer-encoding" in headers
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            if has_body and not is_json(content_type):
                media_type = content_type.partition(";")[0].strip()
                sent = f"as {media_type}" if media_type else "without a Content-Type"
                detail = (
                    f"the body is sent {sent}; the API reads {OFFERED[0]} only: send the body as JSON with "
                    f"Content-Type: {OFFERED[0]} (a charset parameter is allowed, the body is read as UTF-8)"
                )
                response = problem(415, "Unsupported Media Type", detail, Request(scope))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
