"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from serving.deps import AuditDep, HolderDep, KeysDep, MetricsDep, MonitorKey
from serving.problems import PROBLEMS, STORE_RETRY_SECONDS, problem, problem_response

router = APIRouter(tags=["health"])
NOT_READY = problem_response("Not ready: `checks` names each check and whether it passed")
NOT_READY["headers"] = {
    "Retry-After": {"description": "Seconds to wait before asking again", "schema": {"type": "integer"}}
}
# /metrics is not shed and needs no model: its only 503 is a key the key store could not check.
KEYS_UNAVAILABLE = problem_response(
    "The key store did not answer, and this worker has not found the key active in the last hour "
    "(see Retry-After)"
)
KEYS_UNAVAILABLE["headers"] = PROBLEMS[503]["headers"]


class Ready(BaseModel):
    """What /readyz answers when every check passes; the handler sends it as bytes, so this documents it."""

    status: Literal["ready"] = Field(description="ready: the model is loaded and the audit store writable")


@router.get("/healthz", summary="The process is up")
def read_health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="A model is loaded, the audit store takes writes under this server's key and keys can be read",
    response_model=Ready,
    responses={503: NOT_READY},
)
def read_readiness(request: Request, holder: HolderDep, audit: AuditDep, keys: KeysDep) -> Response:
    checks = {
        "model_loaded": holder.loaded,
        "audit_writable": audit.writable(),
        "audit_key_current": audit.signs_current_key(),
        "keys_readable": keys.readable(),
    }
    if all(checks.values()):
        return Response('{"status":"ready"}', media_type="application/json")
    detail = "failing checks: " + ", ".join(name for name, ok in checks.items() if not ok)
    if not checks["audit_key_current"]:
        detail += (
            "; the audit key was rotated (audit rotate-key): restart this server with "
            "REINTEGRA_AUDIT_KEY_FILE naming the new key's file"
        )
    retry = {"Retry-After": str(STORE_RETRY_SECONDS)}
    return problem(503, "Not ready", detail, request, retry, checks=checks)


# Documented as the Prometheus text it is, not JSON, with the refusals of its key check.
@router.get(
    "/metrics",
    summary="Prometheus metrics (monitor, reviewer or admin key)",
    response_class=PlainTextResponse,
    responses={401: PROBLEMS[401], 403: PROBLEMS[403], 503: KEYS_UNAVAILABLE},
)
def read_metrics(key: MonitorKey, metrics: MetricsDep) -> Response:
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
