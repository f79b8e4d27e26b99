"""Request body limits: an oversized body is refused with 413 before it is read into memory, and a
compressed one with 415 (decoded, it could pass the limit many times over)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.problems import problem


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
            response = problem(413, "Content Too Large", self._detail(), Request(scope))
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self._detail())
            return message

        await self.app(scope, limited_receive, send)

    def _detail(self) -> str:
        return f"the request body is larger than the {self.max_bytes} bytes allowed; send smaller batches"
