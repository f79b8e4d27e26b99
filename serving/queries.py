"""Query parameters shared by the API's searches: UTC times, refused unknown or repeated names, a window's
order."""

import re
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, BeforeValidator

from serving.schemas import MAX_UNKNOWN_FIELDS
from serving.search import as_utc

# Digits past the microsecond: pydantic drops them, which would move `until` before a score it holds.
FINER_THAN_MICROSECONDS = re.compile(r"[.,]\d{7,}")
# What pydantic would read as a Unix time rather than a date and time.
NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")
# A time whose zone lost its "+": an address reads an unencoded "+" as a space (`...T09:30:00+01:00`).
ZONE_WITHOUT_PLUS = re.compile(r"\d:\d{2}(:\d{2}([.,]\d+)?)? (\d{2}(:?\d{2})?)$")


def _to_the_microsecond(value: Any) -> Any:
    if isinstance(value, str) and FINER_THAN_MICROSECONDS.search(value):
        raise ValueError("scores are timed to the microsecond: give at most 6 digits after the seconds")
    return value


def _not_a_number(value: Any) -> Any:
    """The document says date-time; pydantic reads a number as seconds since 1970, so `since=20261124`
    (a date in ISO 8601's basic format) would silently search from August 1970."""
    if isinstance(value, str) and NUMBER.fullmatch(value):
        raise ValueError(
            f"{value.strip()!r} is a number, not a time: write a date and time as in RFC 3339, "
            "2026-11-24T09:30:00Z (naive times are UTC)"
        )
    return value


def _plus_kept(value: Any) -> Any:
    """pydantic's own message, "unexpected extra characters at the end of the input", does not say that
    the "+" of the zone the client wrote arrived as a space."""
    if isinstance(value, str) and (found := ZONE_WITHOUT_PLUS.search(value)):
        written = f"{value[: found.start(3) - 1]}%2B{found.group(3)}"
        raise ValueError(
            f"{value!r} has a space before its zone: an address reads a '+' as a space, so write the zone's "
            f"'+' as %2B ({written}), or give the time in UTC with Z"
        )
    return value


UtcTime = Annotated[
    datetime,
    BeforeValidator(_to_the_microsecond),
    BeforeValidator(_not_a_number),
    BeforeValidator(_plus_kept),
    AfterValidator(as_utc),
]


class NoQuery(BaseModel):
    """For an address that takes no query parameter: `?version=2` on GET /v1/model answered the serving
    version's audit as if it were version 2's."""


def declared_parameters(query: type[BaseModel]) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """A dependency refusing a query parameter `query` does not name, or one given more than once: a
    misspelt filter (`personid=`) would otherwise be ignored and widen the answer, and of a repeated one
    (`person_id=a&person_id=b`) only the last would be searched, answering for b alone without a word."""
    allowed = list(query.model_fields)

    async def check(request: Request) -> None:
        items = request.query_params.multi_items()
        unknown = [(name, value) for name, value in items if name not in allowed]
        if len(unknown) > MAX_UNKNOWN_FIELDS:  # one error each would answer 30 times the address's size
            first = ", ".join(name for name, _ in unknown[:MAX_UNKNOWN_FIELDS])
            message = (
                f"{len(unknown)} unknown query parameters; the first {MAX_UNKNOWN_FIELDS}: {first}; "
                f"allowed: {', '.join(allowed)}"
            )
            raise RequestValidationError([{"type": "unknown_parameter", "loc": ("query",), "msg": message}])
        message = (
            f"unknown query parameter; allowed: {', '.join(allowed)}"
            if allowed
            else "unknown query parameter; this address takes none"
        )
        errors = [
            {"type": "unknown_parameter", "loc": ("query", name), "msg": message, "input": value}
            for name, value in unknown
        ]
        counts = Counter(name for name, _ in items if name in allowed)
        errors += [
            {
                "type": "repeated_parameter",
                "loc": ("query", name),
                "msg": f"given {n} times; a search takes one {name}: make a request for each value",
                "input": None,
            }
            for name, n in counts.items()
            if n > 1
        ]
        if errors:
            raise RequestValidationError(errors)

    return check


def check_window(request: Request, since: datetime | None, until: datetime | None) -> None:
    """An `until` at or before `since` is a 422 naming query.until, not an empty answer."""
    if since is not None and until is not None and until <= since:
        start = since.isoformat().replace("+00:00", "Z")
        message = f"until must be later than since ({start}, in UTC); until is exclusive"
        raise query_error("until", "time_range", message, request.query_params["until"])


def query_error(parameter: str, kind: str, message: str, value: Any) -> RequestValidationError:
    """A 422 on one query parameter, shaped as pydantic's own so it reads like every other field error."""
    error = {"type": kind, "loc": ("query", parameter), "msg": message, "input": value}
    return RequestValidationError([error])
