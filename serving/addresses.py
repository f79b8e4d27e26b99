"""Addresses under a proxy's prefix: uvicorn puts the ASGI root path (REINTEGRA_ROOT_PATH) in front
of the path the proxy forwarded, and the server puts it back in every address it gives out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Match
from starlette.types import Scope

# Where the reviewer pages live, below the proxy's prefix.
PAGES_PREFIX = "/review"


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


def without_trailing_slash(request: Request) -> str | None:
    """The address without its trailing slash when a route answers there: no redirect is sent (see
    create_app), so a 404 names it instead."""
    path = request.url.path
    if not path.endswith("/") or path.rstrip("/") == root_path(request.scope):
        return None
    scope = {**request.scope, "path": request.scope["path"].rstrip("/")}
    if any(route.matches(scope)[0] is not Match.NONE for route in request.app.router.routes):
        return path.rstrip("/")
    return None
