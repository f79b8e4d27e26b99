"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from serving.deps import AuditDep, HolderDep, KeysDep, MetricsDep, ReviewerKey
from serving.problems import problem

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def read_health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="A model is loaded, the audit store takes writes and keys can be checked")
def read_readiness(holder: HolderDep, audit: AuditDep, keys: KeysDep) -> Response:
    checks = {
        "model_loaded": holder.loaded,
        "audit_writable": audit.writable(),
        "keys_readable": keys.readable(),
    }
    if all(checks.values()):
        return Response('{"status":"ready"}', media_type="application/json")
    failing = ", ".join(name for name, ok in checks.items() if not ok)
    return problem(503, "Not ready", f"failing checks: {failing}", checks=checks)


@router.get("/metrics", summary="Prometheus metrics (reviewer or admin key)")
def read_metrics(key: ReviewerKey, metrics: MetricsDep) -> Response:
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
