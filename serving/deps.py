"""FastAPI dependencies: settings, the serving model, stores and API-key roles."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool

from serving.addresses import app_path
from serving.audit import AuditStore
from serving.drift import DriftCache
from serving.keys import ApiKey, KeyStore, Role
from serving.model_store import ModelHolder
from serving.observability import Metrics
from serving.settings import Settings
from serving.tables import ScoreRow

log = logging.getLogger("reintegra.auth")
_bearer = HTTPBearer(auto_error=False, description="API key: Authorization: Bearer <key>")


# Plain attribute reads: async, so FastAPI does not hop to the thread pool for each one.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


async def get_audit(request: Request) -> AuditStore:
    return request.app.state.audit


async def get_keys(request: Request) -> KeyStore:
    return request.app.state.keys


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_drift(request: Request) -> DriftCache:
    return request.app.state.drift


SettingsDep = Annotated[Settings, Depends(get_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
AuditDep = Annotated[AuditStore, Depends(get_audit)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
DriftDep = Annotated[DriftCache, Depends(get_drift)]


def authenticate(request: Request, keys: KeyStore, while_down: bool = False) -> ApiKey:
    """The active key of the request's one `Authorization: Bearer` header, else a 401; kept on the
    request, so it is looked up once (KeyBeforeBodyMiddleware may have done it before the body was read).
    `while_down`: see KeyStore.verify."""
    headers = request.headers.getlist("authorization")
    if len(headers) > 1:  # which one a proxy or client meant is unknown
        raise HTTPException(401, "send one Authorization header; this request has several")
    scheme, token = get_authorization_scheme_param(headers[0] if headers else None)
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "send an API key as 'Authorization: Bearer <key>'")
    key = keys.verify(token, while_down)
    if key is None:
        log.warning("refused %s %s: %s", request.method, _route(request), keys.refusal(token))
        raise HTTPException(401, "unknown or revoked API key")
    request.state.api_key = key
    return key


def _route(request: Request) -> str:
    """The route's template, or before routing (a POST's key is checked before its body is read) the path
    with control characters escaped, so a refusal's log line names no id and cannot forge another line."""
    return getattr(request.scope.get("route"), "path", None) or ascii(app_path(request.scope))[1:-1]


def require(*roles: Role, while_down: bool = False) -> Callable[..., ApiKey]:
    """A dependency admitting keys of `roles` (admin is admitted everywhere); `while_down` also admits
    them, as last found, while the key store does not answer (KeyStore.verify)."""
    allowed = {*roles, "admin"}

    async def check(
        request: Request,
        keys: KeysDep,
        # Unused here (authenticate reads the header): it puts the bearer scheme in the OpenAPI document.
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKey:
        # Async, so a key the middleware already looked up costs no hop to the thread pool; a lookup
        # (a database read) still runs there.
        key = getattr(request.state, "api_key", None) or await run_in_threadpool(
            authenticate, request, keys, while_down
        )
        if key.role not in allowed:
            route = _route(request)
            log.warning("refused %s %s: %s key %s may not do this", request.method, route, key.role, key.id)
            given, needed = key.role, " or ".join(roles)
            detail = f"{_article(given)} {given} key cannot do this; it needs {_article(needed)} {needed} key"
            raise HTTPException(403, detail)
        return key

    return check


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


ScorerKey = Annotated[ApiKey, Depends(require("scorer"))]
ReviewerKey = Annotated[ApiKey, Depends(require("reviewer"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
# Metrics answer through a store outage (they hold no one's records).
MonitorKey = Annotated[ApiKey, Depends(require("monitor", "reviewer", while_down=True))]


def record_shown(
    request: Request, audit: AuditStore, key: ApiKey, rows: Iterable[ScoreRow], person_id: str | None = None
) -> None:
    """Record the scores an answer shows to `key`, or the person it looked for in vain, under the route's
    template, before it is sent."""
    audit.record_reads(key.id, request.state.request_id, _route(request), rows, person_id)
