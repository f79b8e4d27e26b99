"""FastAPI dependencies: settings, the serving model, stores and API-key roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from serving.audit import AuditStore
from serving.keys import ApiKey, KeyStore, Role
from serving.model_store import ModelHolder
from serving.observability import Metrics
from serving.settings import Settings

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


SettingsDep = Annotated[Settings, Depends(get_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
AuditDep = Annotated[AuditStore, Depends(get_audit)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def require(*roles: Role) -> Callable[..., ApiKey]:
    """A dependency admitting keys of `roles` (admin is admitted everywhere)."""
    allowed = {*roles, "admin"}

    def check(
        request: Request,
        keys: KeysDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKey:
        if len(request.headers.getlist("authorization")) > 1:  # which one a proxy or client meant is unknown
            raise HTTPException(401, "send one Authorization header; this request has several")
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(401, "send an API key as 'Authorization: Bearer <key>'")
        key = keys.verify(credentials.credentials)
        if key is None:
            raise HTTPException(401, "unknown or revoked API key")
        if key.role not in allowed:
            raise HTTPException(403, f"a {key.role} key cannot do this; it needs a {' or '.join(roles)} key")
        return key

    return check


ScorerKey = Annotated[ApiKey, Depends(require("scorer"))]
ReviewerKey = Annotated[ApiKey, Depends(require("reviewer"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
