"""Reviewer page sessions: a signed, timestamped cookie holding a key's id and a CSRF token, never the
key; the key is looked up on every page, so revoking it or signing out ends the session at once."""

from __future__ import annotations

import hmac
import re
import secrets
import time as clock
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from serving.addresses import PAGES_PREFIX, path_for, root_path
from serving.deps import KeysDep, SettingsDep
from serving.keys import ApiKey, KeyStore
from serving.settings import Settings

COOKIE = "reintegra_review"
PAGE_ROLES = ("reviewer", "admin")
DOT = re.compile("%2e", re.IGNORECASE)


def session_signer(settings: Settings) -> URLSafeTimedSerializer:
    """Signs page sessions; workers share REINTEGRA_SESSION_SECRET so that any of them reads a session
    (`python -m serving --workers N` sets one for them when it is unset)."""
    secret = settings.session_secret or secrets.token_urlsafe(32)
    return URLSafeTimedSerializer(secret, salt="reintegra.review.session")


class SignInRequired(Exception):
    """No valid session: the handler redirects to the sign-in page, then back to `next`."""

    def __init__(self, next_url: str):
        self.next_url = next_url


@dataclass(frozen=True)
class Session:
    csrf: str
    key_id: str | None = None
    since: float = field(
        default_factory=clock.time
    )  # sign-in (or form) time: the absolute limit counts from it


@dataclass(frozen=True)
class Reviewer:
    key: ApiKey
    csrf: str


def pages_path(request: Request) -> str:
    """Where the pages live under the proxy's prefix: the session cookie's Path, and the only
    addresses sign-in returns to."""
    return root_path(request.scope) + PAGES_PREFIX


def signed_in_key(session: Session | None, keys: KeyStore) -> ApiKey | None:
    """The active key a session was signed in with, unless the session was signed out (a copied
    cookie stays signed) or the key revoked."""
    if session is None or session.key_id is None or keys.session_ended(session.csrf):
        return None
    return keys.active(session.key_id)


def read_session(request: Request, settings: Settings) -> Session | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:  # the signature's time is the last page opened: an unused session ends after the idle limit
        data = request.app.state.page_sessions.loads(raw, max_age=settings.session_idle_minutes * 60)
    except BadSignature:  # also an expired one
        return None
    since = data.get("s", 0.0)  # a cookie signed before sessions had a start has none: it has ended
    if clock.time() - since > settings.session_hours * 3600:
        return None
    return Session(data["c"], data.get("k"), since)


def set_session(response: Response, request: Request, settings: Settings, session: Session) -> None:
    """The session holds the key's id, a CSRF token and its start, never the key; signed, timestamped
    (signed again with each page, so the idle limit counts from the last one), HttpOnly."""
    value = request.app.state.page_sessions.dumps(
        {"c": session.csrf, "k": session.key_id, "s": session.since}
    )
    response.set_cookie(
        COOKIE,
        value,
        max_age=seconds_left(session, settings),
        path=pages_path(request),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def seconds_left(session: Session, settings: Settings) -> int:
    """How long a session signed again now lasts unused: the idle limit, or less near its absolute end.
    The cookie expires then, and the page warns before it."""
    left = settings.session_hours * 3600 - (clock.time() - session.since)
    return max(0, int(min(settings.session_idle_minutes * 60, left)))


def signed_in(request: Request, keys: KeysDep, settings: SettingsDep) -> Reviewer:
    """The session's active reviewer or admin key; otherwise off to sign in, and back afterwards.

    The key is looked up on every request, so revoking it ends its sessions at once; so does
    signing out end that one session, wherever its cookie was copied.
    """
    session = read_session(request, settings)
    key = signed_in_key(session, keys)
    if session is None or key is None or key.role not in PAGE_ROLES:
        raise SignInRequired(_requested(request))
    request.state.page_session = session  # pages.render signs it again: the idle limit restarts
    request.state.api_key = key  # the access log names it
    return Reviewer(key, session.csrf)


def _requested(request: Request) -> str:
    """The address as the browser sent it (uvicorn puts the root path back in front of raw_path): the
    decoded path would turn an id's "%2F" into "/", and "/.." in an id would then open another
    person's page after sign-in."""
    path = quote(request.scope["raw_path"], safe="/%:@!$&'()*+,;=~")
    return path + (f"?{request.url.query}" if request.url.query else "")


ReviewerDep = Annotated[Reviewer, Depends(signed_in)]


def safe_next(request: Request, target: str | None) -> str:
    """Only a path under the pages (/review, under the proxy's prefix): never an open redirect to
    another site, nor a path that climbs out to another app the proxy serves on the same host."""
    pages = pages_path(request)
    if (
        target
        and target.startswith(f"{pages}/")
        and not target.startswith("//")
        and "\\" not in target
        and not _has_dot_segment(target)
    ):
        return target
    return path_for(request, "scores_page")


def _has_dot_segment(target: str) -> bool:
    """A "." or ".." segment of the path, which a browser resolves, reading "%2e" as "." too; an id's
    encoded "/" leaves its ".." inside one segment."""
    path = target.partition("?")[0]
    return any(DOT.sub(".", segment) in (".", "..") for segment in path.split("/"))


def same_token(expected: str, given: str) -> bool:
    """Constant-time comparison that also accepts non-ASCII input (compare_digest on str does not)."""
    return hmac.compare_digest(expected.encode(), given.encode())
