"""Conditional GET (RFC 9110 13.1.2, RFC 9111 5.2.2): a strong ETag on a read, and 304 to a client that
holds that representation, so a case-management system polling the model or re-reading a score (which
never changes) does not fetch 35-100 kB again."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

# Personal data: a browser's or client's own cache may keep it, a shared cache (a proxy) may not; and each
# use is revalidated, so every read of a score still reaches the server and its audit trail.
CACHE_CONTROL = "private, no-cache"
_ENTITY_TAG = re.compile(r'(?:W/)?"([^"]*)"')
_HEADERS_DOC = {
    "ETag": {
        "description": "A strong entity tag of this representation: send it as If-None-Match to get a 304 "
        "while it is unchanged",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": f"{CACHE_CONTROL}: no shared cache may keep it, and a client's cache revalidates "
        "before each use",
        "schema": {"type": "string"},
    },
}
_IF_NONE_MATCH_DOC = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "ETags of representations the client holds (or *): a 304 without a body when one matches",
    "schema": {"type": "string"},
}


def entity_tag(body: bytes) -> str:
    """A strong validator: the same bytes give the same tag, any other bytes another."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def none_match(if_none_match: str, tag: str) -> bool:
    """Whether If-None-Match is `*` or names `tag`, compared weakly (a `W/` prefix ignored) as RFC 9110
    13.1.2 asks of this header."""
    if if_none_match.strip() == "*":
        return True
    return tag.strip('"') in _ENTITY_TAG.findall(if_none_match)


class ConditionalRoute(APIRoute):
    """A GET route whose 200 carries an ETag and Cache-Control, and which answers 304 when If-None-Match
    names its ETag. The handler runs either way (a score's read is recorded before the 304 too: the client
    is shown the data it holds), and documents both in the OpenAPI document."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any):
        responses = dict(kwargs.get("responses") or {})
        responses[200] = {**responses.get(200, {}), "headers": dict(_HEADERS_DOC)}
        responses[304] = {
            "description": "Not modified: the representation If-None-Match names",
            "headers": dict(_HEADERS_DOC),
        }
        extra = kwargs.get("openapi_extra") or {}
        kwargs.update(
            responses=responses,
            openapi_extra={**extra, "parameters": [*extra.get("parameters", []), _IF_NONE_MATCH_DOC]},
        )
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def conditional(request: Request) -> Response:
            response = await handler(request)
            if response.status_code != 200:
                return response
            headers = {"ETag": entity_tag(response.body), "Cache-Control": CACHE_CONTROL}
            if none_match(",".join(request.headers.getlist("if-none-match")), headers["ETag"]):
                return Response(status_code=304, headers=headers)
            response.headers.update(headers)
            return response

        return conditional
