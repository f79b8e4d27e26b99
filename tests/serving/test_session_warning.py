"""The reviewer pages warn, in the real browser, before an unused session ends, and say when it has; a
session used without pause still ends after REINTEGRA_SESSION_HOURS."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from serving.sessions import COOKIE
from tests.serving.servers import Server, sign_in, start_server

pytestmark = pytest.mark.slow
IDLE_SECONDS = 15


@pytest.fixture(scope="module")
def server(registry, tmp_path_factory) -> Iterator[Server]:
    """Sessions that end after 15 s unused, so the warning (at half that) comes within the test."""
    env = {"REINTEGRA_SESSION_IDLE_MINUTES": str(IDLE_SECONDS / 60)}
    running = start_server(registry, tmp_path_factory.mktemp("idle"), extra_env=env)
    yield running
    running.stop()


def test_an_unused_session_is_warned_of_and_its_end_is_said(browser, server):
    """Nothing said that a page session ends after 30 minutes unused: a reviewer reading a long explanation
    found out only on the next click, at the sign-in form."""
    context = browser.new_context(base_url=server.base_url)
    page = context.new_page()
    sign_in(page, server.keys["reviewer"])
    warning = page.get_by_role("alert")
    assert warning.is_hidden()
    warning.wait_for(state="visible", timeout=IDLE_SECONDS * 1000)
    assert "Your session ends at" in warning.inner_text()
    with page.expect_navigation():
        warning.get_by_role("link", name="Stay signed in").click()
    assert page.url.endswith("/review/scores"), "still signed in: the page signed the session again"
    assert warning.is_hidden()
    page.get_by_text("Your session has ended.").wait_for(timeout=2 * IDLE_SECONDS * 1000)
    with page.expect_navigation():
        warning.get_by_role("link", name="Sign in again").click()
    assert "/review/sign-in" in page.url, "the warning was right: the session had ended"
    context.close()


def test_a_session_ends_after_the_session_hours_however_often_it_is_used(registry, tmp_path):
    """The idle limit is pushed back by every page; REINTEGRA_SESSION_HOURS is not. A cookie's Max-Age
    says so to a browser, but a copied cookie, sent on by a client that ignores Max-Age and kept busy,
    must end too. Here 6 s, with a page opened every second, each time with the cookie it last signed."""
    hours = 6 / 3600
    server = start_server(registry, tmp_path, extra_env={"REINTEGRA_SESSION_HOURS": str(hours)})
    answers = []
    try:
        with server.page_client() as browser:
            cookie = browser.cookies[COOKIE]
        with httpx.Client(base_url=server.base_url) as copied:
            started = time.monotonic()
            while time.monotonic() - started < hours * 3600 + 2:
                response = copied.get("/review/scores", headers={"Cookie": f"{COOKIE}={cookie}"})
                answers.append((time.monotonic() - started, response))
                cookie = response.cookies.get(COOKIE, cookie)
                time.sleep(1)
    finally:
        server.stop()
    early = [response.status_code for at, response in answers if at < hours * 3600 - 1]
    late = [response for at, response in answers if at > hours * 3600 + 0.5]
    assert early and set(early) == {200}
    assert late and all(r.status_code == 303 for r in late)
    assert late[0].headers["location"] == "/review/sign-in?next=%2Freview%2Fscores"
