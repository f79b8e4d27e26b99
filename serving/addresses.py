"""Addresses under a proxy's prefix: uvicorn puts the ASGI root path (REINTEGRA_ROOT_PATH) in front
of the path the proxy forwarded, and the server puts it back in every address it gives out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Scope


def root_path(scope: Scope) -> str:
    """The proxy's prefix. Inside a mount (the static files) root_path also holds the mount's path,
    so the app's own is read first, as url_for does."""
    return scope.get("app_root_path", scope.get("root_path", ""))


def app_path(scope: Scope) -> str:
    """The request's path as the app routes it, without the proxy's prefix."""
    return scope["path"].removeprefix(root_path(scope))


def path_for(request: Request, name: str, /, **params: str) -> str:
    """The address of route `name` from the host's root, under the proxy's prefix. Not url_for's
    absolute URL: its host comes from the Host header, which a proxy may rewrite to its upstream."""
    return root_path(request.scope) + request.app.url_path_for(name, **params)
