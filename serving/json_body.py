"""Request bodies read as JSON, refusing what `json.loads` lets pass without a word: a field given twice
in one object (JSON readers differ on which value they keep, so the score and its audit record could be
of another record than the client's system meant); and saying what is wrong with a body it cannot read
(not UTF-8, or nested too deeply), which FastAPI answers with a bare 400."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

# The deepest body the API takes: a batch, {"items": [{"record": {...}}]}.
DEEPEST_BODY = 4


class NamedTwice(dict):
    """An object of a body that gives some names more than once (`twice`), holding each one's last value
    as `json.loads` would; `each_name_once` refuses it where a body model reads it."""

    twice: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    read = dict(pairs)
    if len(read) == len(pairs):
        return read
    named = NamedTwice(read)
    named.twice = tuple(name for name, times in Counter(name for name, _ in pairs).items() if times > 1)
    return named


def each_name_once(data: Any) -> Any:
    """A before-validator refusing an object of the body that gives a field more than once."""
    if isinstance(data, NamedTwice):
        names = ", ".join(f"'{name}'" for name in data.twice)
        raise ValueError(
            f"{names} given more than once in this object; JSON readers differ on which value they keep, "
            "so send each field once"
        )
    return data


class JsonBodyRequest(Request):
    """A request whose JSON body marks objects that repeat a name (see NamedTwice). A body that is not
    UTF-8 or is too deep to read is refused as a RequestValidationError, which FastAPI hands on as the
    cause of its 400 (serving.problems answers it as the 422 it is)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(body, object_pairs_hook=_object)
            except UnicodeDecodeError as exc:
                raise RequestValidationError([_not_utf8(exc)]) from exc
            except RecursionError as exc:
                message = (
                    "the body's arrays and objects nest too deeply to be read; a request to this API nests "
                    f"{DEEPEST_BODY} levels at most"
                )
                error = {"type": "json_too_deep", "loc": (), "msg": message, "input": None}
                raise RequestValidationError([error]) from exc
        return self._json


def _not_utf8(error: UnicodeDecodeError) -> dict[str, Any]:
    """A body in another encoding (Latin-1, say) is a 422 like any body that is not JSON, saying where."""
    byte = error.object[error.start]
    message = (
        f"the body is not valid JSON: byte 0x{byte:02x} at byte {error.start} (from 0) is not UTF-8; "
        "JSON is sent as UTF-8, whatever charset the Content-Type names"
    )
    return {"type": "json_encoding", "loc": (), "msg": message, "input": None}


class JsonBodyRoute(APIRoute):
    """A route that reads its JSON body with JsonBodyRequest (FastAPI's way to change how a body is read)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def read_as_json_body(request: Request) -> Response:
            return await handler(JsonBodyRequest(request.scope, request.receive))

        return read_as_json_body
