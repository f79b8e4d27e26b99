"""Load shedding: a worker already answering REINTEGRA_MAX_IN_FLIGHT API requests refuses the next at once
with a 503 and Retry-After. Queued instead, a flood waited past its clients' timeouts, and the worker went
on scoring and recording requests whose clients had given up."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.addresses import app_path
from serving.observability import Metrics
from serving.problems import problem

RETRY_SECONDS = 1


class InFlightLimitMiddleware:
    """Counts the /v1 requests this worker is answering; one over the limit gets the 503 before its body
    is read. Health, readiness, metrics and the reviewer pages are not counted, so an operator can
    still see an overloaded server."""

    def __init__(self, app: ASGIApp, max_in_flight: int, metrics: Metrics):
        self.app = app
        self.max_in_flight = max_in_flight
        self.metrics = metrics
        self.in_flight = 0  # changed only on this worker's event loop: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not app_path(scope).startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            self.metrics.shed.inc()
            detail = (
                f"this worker is answering {self.in_flight} requests, its limit (REINTEGRA_MAX_IN_FLIGHT); "
                f"nothing was done or recorded: try again in {RETRY_SECONDS} s"
            )
            refusal = problem(503, "Overloaded", detail, Request(scope), {"Retry-After": str(RETRY_SECONDS)})
            await refusal(scope, receive, send)
            return
        self.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.dec()
