"""The connection protocol the server runs: the limits of serving.limits, and a shutdown (SIGTERM, or
the rolling restart of SIGHUP) that answers the requests already sent to the worker that stops."""

from __future__ import annotations

from serving.limits import BoundedHeadProtocol

# How long a connection with no request under way stays open once its worker shuts down.
SHUTDOWN_GRACE_SECONDS = 1.0


class DrainingProtocol(BoundedHeadProtocol):
    """uvicorn's shutdown closes at once every connection with no request under way, but a connection
    accepted a moment before may hold a request not read yet, which then ended unanswered ("Server
    disconnected without sending a response") during a rolling restart under load. Such a connection
    gets SHUTDOWN_GRACE_SECONDS for a request to begin; that request is answered, then the connection
    closes."""

    _draining = False

    def shutdown(self) -> None:
        if self.transport.is_closing() or not self._no_answer_under_way():
            super().shutdown()
            return
        self._draining = True
        self.loop.call_later(SHUTDOWN_GRACE_SECONDS, self._close_if_idle)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False

    def _no_answer_under_way(self) -> bool:
        """Between requests, or a request's head arriving (a head that never completes gets its 408)."""
        return self._part != "body" and (self.cycle is None or self.cycle.response_complete)

    def _close_if_idle(self) -> None:
        if self._part == "idle" and self._no_answer_under_way() and not self.transport.is_closing():
            self.transport.close()
