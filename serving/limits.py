"""Request limits: an oversized body is refused with 413 before it is read into memory, a compressed
one with 415 (decoded, it could pass the limit many times over), an oversized head with 400, a head
sent too slowly or a body that stops arriving with 408, and an API body without a valid key with 401
before it is read."""

from __future__ import annotations

import asyncio
import logging
import uuid
from http import HTTPStatus
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.addresses import app_path
from serving.deps import authenticate
from serving.observability import (
    EVERY_ANSWER_HEADERS,
    REFUSED_BEFORE_APP,
    REQUEST_ID_HEADER,
    request_id_var,
)
from serving.problems import problem, problem_response

MAX_HEAD_BYTES = 64 * 1024
HEAD_SECONDS = 10
BODY_IDLE_SECONDS = 20
log = logging.getLogger("reintegra.limits")
CLOSES = {"Connection": {"description": "close: the connection is closed", "schema": {"type": "string"}}}
# What these limits answer at any address, before any route: listed on every operation of the OpenAPI
# document, so a generated client expects them.
LIMIT_PROBLEMS = {
    "400": {
        **problem_response(
            "The request could not be read (a malformed request line or header), or its head (request line "
            f"and headers) passed {MAX_HEAD_BYTES // 1024} KiB"
        ),
        "headers": CLOSES,
    },
    "408": {
        **problem_response(
            f"The request head was not complete {HEAD_SECONDS} s after the connection opened, or its body "
            f"stopped arriving for {BODY_IDLE_SECONDS} s"
        ),
        "headers": CLOSES,
    },
    "413": problem_response(
        "Request body larger than REINTEGRA_MAX_BODY_BYTES, by its declared length or as it streamed"
    ),
}


class BodySizeLimitMiddleware:
    """Refuses bodies over `max_bytes`: by their Content-Length at once, or while a chunked body streams."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        encoding = headers.get(b"content-encoding", b"").strip().lower()
        if encoding not in (b"", b"identity"):
            detail = f"the body is sent {encoding.decode('latin-1')}-encoded; send it uncompressed"
            response = problem(
                415, "Unsupported Media Type", detail, Request(scope), {"Accept-Encoding": "identity"}
            )
            await response(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response = problem(413, "Content Too Large", self._detail(scope), Request(scope))
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self._detail(scope))
            return message

        await self.app(scope, limited_receive, send)

    def _detail(self, scope: Scope) -> str:
        """What to do differs: a batch can be split, a single score's record is some 2 kB."""
        limit = f"{self.max_bytes} bytes allowed (REINTEGRA_MAX_BODY_BYTES)"
        detail = f"the request body is larger than the {limit}"
        return f"{detail}; send fewer records a batch" if app_path(scope).endswith(":batch") else detail


class KeyBeforeBodyMiddleware:
    """Checks the API key of a POST to /v1 before its body is read.

    FastAPI reads and parses a body before any dependency runs, so without a key anyone could make a
    worker parse 8 MiB of JSON per request (0.65 s of the event loop and 50 MB each). A store that does
    not answer is left to the route, whose own check answers 503 as for any other request."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not app_path(scope).startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            await run_in_threadpool(authenticate, request, request.app.state.keys)
        except HTTPException as exc:
            response = problem(exc.status_code, "Unauthorized", str(exc.detail), request, exc.headers)
            await response(scope, receive, send)
            return
        except SQLAlchemyError:
            pass
        await self.app(scope, receive, send)


class _HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops and uvicorn answers its 400."""


class BoundedHeadProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on the request head (request line and headers).

    httptools buffers a head without limit, before any app code runs: one unauthenticated 100 MB
    header held the event loop 10 s. A head still incomplete after MAX_HEAD_BYTES gets a 400 and the
    connection is closed. Reads are counted from the one a head starts in; one that began mid-body
    (a pipelined request after a body) is not, so a body never counts.

    uvicorn sets no deadline on a head either, so connections that send half a head, or nothing,
    stay open until the worker runs out of file descriptors (slowloris). A head must be complete
    HEAD_SECONDS after the connection opens or after its first byte arrives: else 408 (or, when
    nothing was sent, the connection is closed as an idle keep-alive one is). A body announced but not
    sent holds a connection the same way (the sign-in form is posted without a key): one that sends
    nothing for BODY_IDLE_SECONDS gets a 408, unless the server itself stopped reading it."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._part: Literal["idle", "head", "body"] = "idle"
        self._head_bytes = 0
        self._parsed_head_bytes = 0
        self._head_too_large = False
        self._head_deadline: asyncio.TimerHandle | None = None
        self._body_wait: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        self._cancel_body_wait()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._part, self._head_bytes, self._parsed_head_bytes = "head", 0, 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_parsed(len(name) + len(value) + 4)  # ": " and the line's end
        super().on_header(name, value)

    def _count_parsed(self, size: int) -> None:
        """A head completed by the read that carries its end is not counted per read (that read may hold
        a body too), so its parts are counted as parsed; past the limit, parsing stops for the 400."""
        self._parsed_head_bytes += size
        if self._parsed_head_bytes > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise _HeadTooLarge

    def on_headers_complete(self) -> None:
        self._part = "body"
        self._cancel_head_deadline()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._part = "idle"
        self._cancel_body_wait()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """A problem with a request id, as every other error is, not uvicorn's plain text: also what
        the parser refuses before any app code runs."""
        if self._head_too_large:
            self._refuse_head_too_large()
        else:
            self._refuse(HTTPStatus.BAD_REQUEST, msg, "unreadable")

    def _refuse_head_too_large(self) -> None:
        message = f"the request head is larger than the {MAX_HEAD_BYTES} bytes allowed"
        self._refuse(HTTPStatus.BAD_REQUEST, message, "head_too_large")

    def _refuse(self, status: HTTPStatus, msg: str, reason: str) -> None:
        """Answer a problem before any app code runs, close the connection, count it (the app's request
        metrics never see it) and log it with the request id the answer carries."""
        REFUSED_BEFORE_APP.labels(str(status.value), reason).inc()
        request_id = uuid.uuid4().hex
        token = request_id_var.set(request_id)
        log.warning("refused before the app, %d %s: %s", status.value, reason, msg)
        request_id_var.reset(token)
        response = problem(status.value, status.phrase, msg, request_id=request_id)
        head = [f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        head += [
            name + b": " + value + b"\r\n" for name, value in [*response.raw_headers, *EVERY_ANSWER_HEADERS]
        ]
        head += [f"{REQUEST_ID_HEADER}: {request_id}\r\nconnection: close\r\n\r\n".encode()]
        self.transport.write(b"".join(head) + response.body)
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        before = self._part
        if before != "body":  # a head (or the bytes before one) is arriving: it has HEAD_SECONDS
            self._arm_head_deadline()
        super().data_received(data)
        if self._part == "head":  # also a pipelined one that began after a body
            self._arm_head_deadline()
        elif self._part == "body":  # more of the body is due: the wait starts again
            self._cancel_body_wait()
            self._body_wait = self.loop.call_later(BODY_IDLE_SECONDS, self._body_stalled)
        if before == "body" or self._part != "head" or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse_head_too_large()

    def _arm_head_deadline(self) -> None:
        """Counts from the first moment a head could start; a later byte does not push it back."""
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(HEAD_SECONDS, self._head_too_slow)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _cancel_body_wait(self) -> None:
        if self._body_wait is not None:
            self._body_wait.cancel()
            self._body_wait = None

    def _body_stalled(self) -> None:
        self._body_wait = None
        if self.transport.is_closing() or self._part != "body":
            return
        if self.flow.read_paused:  # the app has not read what came yet: the client is not the one late
            self._body_wait = self.loop.call_later(BODY_IDLE_SECONDS, self._body_stalled)
            return
        if self.cycle is not None and self.cycle.response_started:  # no second answer inside the first
            log.warning(
                "request body stalled for %d s after its answer began: connection closed", BODY_IDLE_SECONDS
            )
            self.transport.close()
            return
        self._refuse(
            HTTPStatus.REQUEST_TIMEOUT,
            f"the request body stopped arriving: nothing for {BODY_IDLE_SECONDS} s",
            "body_stalled",
        )

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.transport.is_closing():
            return
        if self._part == "head":
            self._refuse(
                HTTPStatus.REQUEST_TIMEOUT,
                f"the request head was not complete after {HEAD_SECONDS} s",
                "head_too_slow",
            )
        else:
            self.transport.close()
