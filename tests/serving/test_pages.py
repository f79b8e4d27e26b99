"""Reviewer pages end to end: a real server, headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import html
import math
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from serving.audit import AuditStore, utc_now
from serving.database import make_engine
from serving.keys import KeyStore
from serving.pages import NEED_FRAME, RISK_FRAME
from serving.search import cursor_of
from tests.serving.servers import (
    REASSESSED,
    REASSESSMENTS,
    TEST_SEAL,
    Server,
    add_a_retired_band_score,
    form_token,
    page_request,
    score_row,
    serve_new_model,
    serve_next_version,
    sign_in,
    start_server,
)

pytestmark = pytest.mark.slow

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
TOP_INPUTS = 8


@pytest.fixture
def page(browser, server):
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def own_scores_server(registry, tmp_path_factory) -> Iterator[Server]:
    """A server for the tests that write scores of people (or of a band) of their own and read back only
    those, or only measure the pages, so that the module's `server` keeps exactly the scores its listings
    count and no test starts one of its own."""
    running = start_server(registry, tmp_path_factory.mktemp("own-scores"))
    yield running
    running.stop()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_pages_without_a_session_redirect_to_sign_in(server, scores):
    with httpx.Client(base_url=server.base_url) as client:
        for path in [
            "/review/scores",
            f"/review/scores/{scores[0]['id']}",
            "/review/model",
            f"/review/people/{REASSESSED}",
        ]:
            response = client.get(path, params={"band": "high"} if path == "/review/scores" else None)
            assert response.status_code == 303, path
            location = urlsplit(response.headers["location"])
            assert location.path == "/review/sign-in"
            expected = path + ("?band=high" if path == "/review/scores" else "")
            assert parse_qs(location.query)["next"] == [expected]
        client.cookies.set("reintegra_review", "not-a-signed-session")
        assert client.get("/review/scores").status_code == 303


def test_a_scorer_key_cannot_sign_in(page, server):
    sign_in(page, server.keys["scorer"])
    assert urlsplit(page.url).path == "/review/sign-in"
    assert "cannot open the reviewer pages" in page.get_by_role("alert").inner_text()
    page.goto("/review/scores")
    assert urlsplit(page.url).path == "/review/sign-in"


def test_a_sign_in_form_left_open_in_another_tab_keeps_the_session(browser, server):
    """Signed in from one tab, the form still open in another is sent: it goes on to the page
    asked for; it used to answer "form expired" and replace the session cookie, signing both out."""
    context = browser.new_context(base_url=server.base_url)
    first, second = context.new_page(), context.new_page()
    try:
        first.goto("/review/sign-in?next=/review/model")
        sign_in(second, server.keys["reviewer"])
        first.get_by_label("API key").fill(server.keys["reviewer"])
        with first.expect_navigation():
            first.get_by_role("button", name="Sign in").click()
        landed = urlsplit(first.url).path
        second.reload()
        still = urlsplit(second.url).path
    finally:
        context.close()
    assert landed.startswith("/review/model/") and still == "/review/scores"


def test_a_sign_in_posted_from_another_site_signs_no_one_out(browser, server):
    """Another site's page that posts to the sign-in form (no cookie comes with it: SameSite=Lax)
    must not replace the reviewer's session cookie with an anonymous one."""
    other_site = "http://localhost:9/form"  # localhost is another site than 127.0.0.1
    form = (
        f'<form method="post" action="{server.base_url}/review/sign-in"><input name="csrf" value="x"></form>'
    )
    context = browser.new_context(base_url=server.base_url)
    try:
        reviewer, attacker = context.new_page(), context.new_page()
        sign_in(reviewer, server.keys["reviewer"])
        attacker.route(other_site, lambda route: route.fulfill(content_type="text/html", body=form))
        attacker.goto(other_site)
        with attacker.expect_navigation(url=f"{server.base_url}/review/**"):
            attacker.locator("form").evaluate("form => form.submit()")
        reviewer.reload()
        still = urlsplit(reviewer.url).path
    finally:
        context.close()
    assert still == "/review/scores"


def test_sign_in_needs_the_forms_csrf_token(server):
    with httpx.Client(base_url=server.base_url) as client:
        form = client.get("/review/sign-in")
        assert form.status_code == 200
        cookie = form.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/review" in cookie
        assert "max-age=" in cookie
        for forged in ("forged", "é"):
            refused = client.post("/review/sign-in", data={"key": server.keys["reviewer"], "csrf": forged})
            assert refused.status_code == 403
        assert client.get("/review/scores").status_code == 303


def test_sign_out_needs_the_session_and_its_token(server):
    with server.page_client() as client:
        for forged in ("forged", "é"):
            refused = client.post("/review/sign-out", data={"csrf": forged})
            assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/plain")
            assert refused.headers["content-security-policy"].startswith("default-src 'self'")
        assert client.get("/review/scores").status_code == 200
        # A form posted from another site carries no session cookie (SameSite=Lax): nothing changes.
        with httpx.Client(base_url=server.base_url) as other_site:
            cross = other_site.post("/review/sign-out", data={"csrf": ""})
        assert cross.status_code == 303 and "set-cookie" not in cross.headers
        token = form_token(client, "/review/scores")
        signed_out = client.post("/review/sign-out", data={"csrf": token})
        assert signed_out.status_code == 303 and "signed_out=true" in signed_out.headers["location"]
        assert client.get("/review/scores").status_code == 303


def test_a_signed_out_session_opens_nothing_even_from_a_copied_cookie(server):
    """Signing out ends the session on the server: its cookie, copied before, is still signed and
    unexpired, yet is sent to sign in; a new sign-in of the same key is not affected."""
    with server.page_client() as client, server.page_client() as other_browser:
        copied = client.cookies["reintegra_review"]
        client.post("/review/sign-out", data={"csrf": form_token(client, "/review/scores")})
        with httpx.Client(base_url=server.base_url, cookies={"reintegra_review": copied}) as thief:
            assert thief.get("/review/scores").status_code == 303
            assert thief.get("/review/sign-in").status_code == 200, "the sign-in form, not a redirect"
        assert other_browser.get("/review/scores").status_code == 200


def test_the_person_filter_finds_an_id_as_it_was_sent(own_scores_server, api_records):
    """Spaces around a person id are part of it, as in the API: trimmed, the filter would show another
    person's scores (or, for an id of spaces alone, every score) under the id asked for."""
    with own_scores_server.client("scorer") as scorer:
        spaced, bare = (
            scorer.post("/v1/scores", json={"person_id": person, "record": api_records[0]}).json()["id"]
            for person in (" P-spaced ", "P-spaced")
        )
    with own_scores_server.page_client() as client:
        found = client.get("/review/scores", params={"person_id": " P-spaced "}).text
        blank = client.get("/review/scores", params={"person_id": "   "}).text
    assert spaced in found and bare not in found
    assert '<p id="count" role="status">0 scores' in blank


def test_a_person_page_cut_at_its_limit_links_every_score(own_scores_server, api_records):
    items = [{"person_id": "P-many scores", "record": api_records[0]}] * 201
    with own_scores_server.client("scorer") as scorer:
        assert scorer.post("/v1/scores:batch", json={"items": items}).status_code == 200
    with own_scores_server.page_client() as client:
        person = client.get("/review/people/P-many scores").text
        listed = client.get("/review/scores", params={"person_id": "P-many scores"}).text
    link = '<a href="/review/scores?person_id=P-many%20scores">all 201 in the score list</a>'
    assert f"200 assessments, oldest first (the newest 200 of 201: {link})." in person
    assert '<p id="count" role="status">201 scores, newest first; page 1 of 9.</p>' in listed


def test_a_person_link_stays_on_that_person_whatever_their_id_holds(own_scores_server, api_records):
    """A "/.." inside an id must not let a browser resolve the link to another person's history."""
    tricky = "P-slash/../P-other"
    server = own_scores_server
    with server.client("scorer") as scorer:
        other = scorer.post("/v1/scores", json={"person_id": "P-other", "record": api_records[1]}).json()
        created = scorer.post("/v1/scores", json={"person_id": tricky, "record": api_records[2]}).json()
    with server.page_client() as client:
        score_page = client.get(f"/review/scores/{created['id']}").text
        link = re.search(r'href="(/review/people/[^"]+)"', score_page).group(1)
        person = client.get(link)
    assert link == "/review/people/P-slash%2F..%2FP-other"
    assert person.status_code == 200
    assert f"Person {tricky}" in html.unescape(person.text) and created["id"] in person.text
    assert other["id"] not in person.text, "another person's scores are not shown"


def test_what_a_scorer_sends_never_runs_as_script_on_a_page(own_scores_server, api_records):
    """A scorer key must not reach a reviewer's browser: ids are escaped in text, attributes and links,
    and the pages' policy allows no inline script, nor framing by another site."""
    payload = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    server = own_scores_server
    with server.client("scorer") as scorer:
        body = {"person_id": payload, "assessment_id": payload, "record": api_records[3]}
        created = scorer.post("/v1/scores", json=body).json()
    with server.page_client() as client:
        pages = [
            client.get(f"/review/scores/{created['id']}"),
            client.get("/review/scores", params={"person_id": payload}),
            client.get(f"/review/people/{quote(payload, safe='')}"),
        ]
    for page in pages:
        assert page.status_code == 200 and "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert (
            page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "same-origin"
        )


def test_signing_in_from_a_person_link_opens_that_person(browser, own_scores_server, api_records):
    """The page asked for before sign-in is reopened as it was addressed: an id's encoded "/" or "%"
    must not be decoded on the way, which would open another person's history or none."""
    tricky = ["P-slash/../P-other", "P-percent%2F..%2FP-other"]
    server = own_scores_server
    with server.client("scorer") as scorer:
        scorer.post("/v1/scores", json={"person_id": "P-other", "record": api_records[1]})
        for person_id in tricky:
            scorer.post("/v1/scores", json={"person_id": person_id, "record": api_records[2]})
    context = browser.new_context(base_url=server.base_url)
    page = context.new_page()
    headings = {}
    for person_id in tricky:
        context.clear_cookies()
        sign_in(page, server.keys["reviewer"], f"/review/people/{quote(person_id, safe='')}")
        headings[person_id] = page.locator("h1").inner_text()
    context.close()
    assert headings == {person_id: f"Person {person_id}" for person_id in tricky}


def test_a_flagged_need_shows_the_base_value_it_starts_from(server, scores, spec):
    """A need can be flagged by its base value alone; its largest contributions may all be negative."""
    flagged = [(s, n["need"]) for s in scores for n in s["needs"] if n["flagged"]]
    assert flagged, "the fixture's scores flag at least one need"
    score, need = flagged[0]
    explained = score["explanation"]["needs"][need]
    with server.page_client() as client, server.client("reviewer") as reviewer:
        text = html.unescape(client.get(f"/review/scores/{score['id']}").text)
        record = reviewer.get(f"/v1/scores/{score['id']}").json()["record"]
    shown = re.search(rf'<p class="need-sum" data-need="{need}">(.*?)</p>', text, re.S).group(1)

    def number(css_class: str) -> float:
        value = re.search(rf'class="{css_class}">([^<]+)<', shown).group(1)
        return float(value.replace("\u2212", "-"))

    threshold = next(n for n in spec.needs if n.name == need).flag_threshold
    assert f"(at {threshold:.2f} or above)" in text, "the page says where a need is flagged"
    risk_score = record["Supervision_Risk_Score_First"]  # a float in the record: 6.0 is shown as 6
    assert f'<th scope="row">Supervision_Risk_Score_First</th><td>{risk_score:g}</td>' in text
    assert number("base") == pytest.approx(explained["base_value"], abs=1e-4)
    assert number("log-odds") == pytest.approx(explained["log_odds"], abs=1e-4)
    assert number("total") == pytest.approx(explained["log_odds"] - explained["base_value"], abs=1e-4)


@dataclass
class TwoVersions:
    """A served model whose second version cuts bands, flags needs and gates elsewhere than its first."""

    server: Server
    first_version: str
    early: list[str]  # two scores of PERSON by the first version
    late: str  # one score of PERSON by the second


PERSON = "P-TWO-VERSIONS"


@pytest.fixture(scope="module")
def two_versions(registry, tmp_path_factory, spec, api_records) -> Iterator[TwoVersions]:
    """One model trained twice for the tests of what an earlier version's scores and page keep as their
    own; they only read it, so the three changes share one second version."""
    name = "reintegra-two-versions"
    first, server = serve_new_model(registry, tmp_path_factory.mktemp("two-versions"), spec, name)
    try:
        with server.client("scorer") as scorer:
            early = [
                scorer.post("/v1/scores", json={"person_id": PERSON, "record": r}).json()["id"]
                for r in api_records[:2]
            ]
        needs = [n.model_copy(update={"flag_threshold": 0.8}) for n in spec.needs if n.name != "housing"]
        bands = spec.risk_bands.model_copy(update={"cut_points": [0.5], "labels": ["standard", "elevated"]})
        gates = spec.gates.model_copy(update={"max_fpr_gap": 0.5})
        later = spec.model_copy(update={"needs": needs, "risk_bands": bands, "gates": gates})
        serve_next_version(server, registry, later, name)
        with server.client("scorer") as scorer:
            late = scorer.post("/v1/scores", json={"person_id": PERSON, "record": api_records[2]})
        yield TwoVersions(server, first.model_version, early, late.json()["id"])
    finally:
        server.stop()


def test_a_score_shows_the_flag_thresholds_of_the_version_that_made_it(two_versions, spec):
    """A later version may flag needs at other thresholds; an earlier score's page must quote the
    thresholds its own flags were decided with, not the serving version's."""
    with two_versions.server.page_client() as client:
        text = html.unescape(client.get(f"/review/scores/{two_versions.early[0]}").text)
    row = r'<th scope="row">(\w+)</th>(?:(?!</tr>).)*?class="threshold">\(at ([0-9.]+)'
    quoted = re.findall(row, text, re.S)
    own = {n.name: f"{n.flag_threshold:.2f}" for n in spec.needs}
    assert quoted and all(own[need] == threshold for need, threshold in quoted), quoted


def _cuts_at_points(text: str, chart_id: str) -> dict[str, list[float]]:
    """Per point of a trend chart (by score id), the heights of the dashed cut lines drawn above it."""
    svg = re.search(rf'<svg id="{chart_id}".*?</svg>', text, re.S).group(0)
    cuts = [
        tuple(float(v) for v in found)
        for found in re.findall(r'<line class="cut" x1="([0-9.]+)" x2="([0-9.]+)" y1="([0-9.]+)"', svg)
    ]
    points = re.findall(r'cx="([0-9.]+)"[^>]*data-score-id="([^"]+)"', svg)
    return {score_id: sorted(y for x1, x2, y in cuts if x1 <= float(cx) <= x2) for cx, score_id in points}


def test_a_person_page_draws_each_score_against_its_own_versions_cuts(two_versions, spec):
    """A later version may cut bands and flag needs elsewhere, or drop a need: each assessment on the
    person page is drawn against the cut points and thresholds of the version that scored it."""
    with two_versions.server.page_client() as client:
        text = client.get(f"/review/people/{PERSON}").text
    early, late = two_versions.early, two_versions.late
    risk_cuts = _cuts_at_points(text, "trend")
    own = pytest.approx(sorted(RISK_FRAME.y(c) for c in spec.risk_bands.cut_points), abs=0.05)
    assert [risk_cuts[i] for i in early] == [own] * 2, risk_cuts
    assert risk_cuts[late] == [pytest.approx(RISK_FRAME.y(0.5), abs=0.05)], risk_cuts
    employment = _cuts_at_points(text, "need-trend-employment")
    assert [employment[i] for i in early] == [[pytest.approx(NEED_FRAME.y(0.5), abs=0.05)]] * 2
    assert employment[late] == [pytest.approx(NEED_FRAME.y(0.8), abs=0.05)]
    housing = _cuts_at_points(text, "need-trend-housing")  # scored by the first version only
    assert list(housing) == early


def test_a_person_pages_change_says_when_another_version_scored_the_assessment(two_versions):
    """A change between assessments scored by two versions is partly the model's, not the person's."""
    with two_versions.server.page_client() as client:
        text = html.unescape(client.get(f"/review/people/{PERSON}").text)
    table = re.search(r'<table class="data" id="person-scores">.*?</table>', text, re.S).group(0)
    row = r'<tr data-score-id="([^"]+)">(?:(?!</tr>).)*?<span class="change">\((.*?)\)</span>'
    changes = dict(re.findall(row, table, re.S))
    first, second = two_versions.first_version, str(int(two_versions.first_version) + 1)
    assert set(changes) == {two_versions.early[1], two_versions.late}
    assert "version" not in changes[two_versions.early[1]], "the same version scored both"
    assert changes[two_versions.late].endswith(f", version {first} → {second}"), changes


def test_an_earlier_versions_page_quotes_its_own_gates(two_versions, spec):
    """A later spec may gate promotion elsewhere: an earlier version's page marks its gaps against the
    gates it was promoted under, not the serving version's."""
    with two_versions.server.page_client() as client:
        text = " ".join(client.get(f"/review/model/{two_versions.first_version}").text.split())
    assert f"allows an FPR gap of at most {spec.gates.max_fpr_gap} on" in text
    assert "the gate 0.5" not in text


def test_a_score_says_which_key_request_and_run_made_it(server, scores):
    score = scores[0]
    with server.page_client() as client:
        text = " ".join(html.unescape(client.get(f"/review/scores/{score['id']}").text).split())
    engine = make_engine(server.database)
    scorer_key = KeyStore(engine).verify(server.keys["scorer"])
    engine.dispose()
    assert f"<dt>Scored by</dt><dd>key “test scorer” (scorer, id <code>{scorer_key.id}</code>)</dd>" in text
    assert f"<dt>Request id</dt><dd><code>{score['request_id']}</code></dd>" in text
    assert f"<dt>Training run</dt><dd><code>{score['model']['run_id']}</code></dd>" in text


def test_a_need_the_record_shows_says_so(server, scores, spec):
    observed = [(s, n["need"]) for s in scores for n in s["needs"] if n["observed"]]
    assert observed, "the fixture's scores include a parole condition"
    score, need = observed[0]
    with server.page_client() as client:
        text = html.unescape(client.get(f"/review/scores/{score['id']}").text)
    row = re.search(rf'<th scope="row">{need}</th>.*?</tr>', text, re.S).group(0)
    assert '<td>yes <span class="observed">(the record shows it)</span></td>' in row
    explained = re.search(rf'<p class="observed-need" data-need="{need}">(.*?)</p>', text, re.S).group(1)
    assert f"The record shows it: {spec.need(need).description.rstrip('.')}." in explained


def test_a_score_stored_before_needs_were_observed_quotes_its_threshold(own_scores_server, spec, api_records):
    """Audit rows written before `observed` existed (commit 085c96a) have no such key: their flags came
    from the threshold alone, so the page must not say "the record shows otherwise"."""
    server = own_scores_server
    engine = make_engine(server.database)
    audit = AuditStore(engine, TEST_SEAL)
    try:
        with server.client("scorer") as scorer:
            stored = audit.get(scorer.post("/v1/scores", json={"record": api_records[0]}).json()["id"])
        needs = [{k: v for k, v in need.items() if k != "observed"} for need in stored.result["needs"]]
        old = score_row(
            "P-OLD-SHAPE",
            model_version=stored.model_version,
            run_id=stored.run_id,
            record=stored.record,
            risk_probability=stored.risk_probability,
            risk_band=stored.risk_band,
            result={**stored.result, "needs": needs},
        )
        audit.record([old])
        with server.page_client() as client:
            text = html.unescape(client.get(f"/review/scores/{old.id}").text)
    finally:
        engine.dispose()
    table = re.search(r'<table class="data" id="needs">.*?</table>', text, re.S).group(0)
    assert "the record shows" not in table
    for need in spec.needs:
        row = re.search(rf'<th scope="row">{need.name}</th>.*?</tr>', table, re.S).group(0)
        assert f"(at {need.flag_threshold:.2f} or above)" in row, row


def test_a_score_whose_run_mlflow_lost_says_its_thresholds_are_unknown(own_scores_server, api_records):
    """A run deleted from MLflow (or its artifacts moved) takes its spec along: the page must say the
    thresholds are unknown, not quote none and leave the reader to guess."""
    server = own_scores_server
    engine = make_engine(server.database)
    audit = AuditStore(engine, TEST_SEAL)
    try:
        with server.client("scorer") as scorer:
            stored = audit.get(scorer.post("/v1/scores", json={"record": api_records[0]}).json()["id"])
        lost = score_row(
            "P-LOST-RUN", model_version="0", run_id="0123456789abcdef0123456789abcdef", result=stored.result
        )
        audit.record([lost])
        with server.page_client() as client:
            page = client.get(f"/review/scores/{lost.id}")
    finally:
        engine.dispose()
    assert page.status_code == 200
    text = " ".join(html.unescape(page.text).split())
    assert "or above)" not in text
    assert (
        "The flag thresholds of version 0 (training run 0123456789abcdef0123456789abcdef) could not be read "
        "from MLflow, so none is quoted; each flag is as it was recorded."
    ) in text


def test_date_filters_at_the_ends_of_the_calendar(server, scores):
    with server.page_client() as client:
        everything = client.get("/review/scores", params={"since": "0001-01-01", "until": "9999-12-31"})
    assert everything.status_code == 200
    assert all(score["id"] in everything.text for score in scores[-5:])


def test_the_date_range_includes_both_of_its_days(server, scores):
    day = datetime.fromisoformat(scores[-1]["created_at"]).date()
    with server.page_client() as client:

        def listed(since: date, until: date) -> bool:
            page = client.get("/review/scores", params={"since": str(since), "until": str(until)})
            return scores[-1]["id"] in page.text

        assert listed(day, day), "a one-day range holds that day's scores"
        assert not listed(day - timedelta(days=1), day - timedelta(days=1))
        assert not listed(day + timedelta(days=1), day + timedelta(days=1))


def test_a_date_in_another_iso_form_shows_in_the_form_that_filters(page, server, scores):
    """Python reads 20261124 or 2026-W48-1 as dates, and the list is filtered by them; the date
    fields must then show that date, not stay empty above a filtered list."""
    day = datetime.fromisoformat(scores[-1]["created_at"]).date()
    sign_in(page, server.keys["reviewer"])
    shown = {}
    for given in (day.strftime("%Y%m%d"), "{}-W{:02d}-{}".format(*day.isocalendar())):
        page.goto(f"/review/scores?since={given}&until={given}")
        shown[given] = (
            page.get_by_label("From (UTC)").input_value(),
            page.get_by_label("To (UTC, inclusive)").input_value(),
        )
    assert set(shown.values()) == {(day.isoformat(), day.isoformat())}, shown


def test_a_page_past_the_last_goes_to_the_last(server, scores):
    with server.page_client() as client:
        listed = client.get("/review/scores", params={"band": scores[0]["risk"]["band"], "page": 99})
        reversed_range = client.get("/review/scores", params={"since": "2026-02-02", "until": "2026-02-01"})
    assert listed.status_code == 303
    last = parse_qs(urlsplit(listed.headers["location"]).query)
    assert last.pop("upto"), "the last page of the list as read, however many scores arrive"
    assert last == {"band": [scores[0]["risk"]["band"]], "page": ["1"]}
    assert "From (2026-02-02) is after To (2026-02-01)" in reversed_range.text
    invalid = 'value="2026-02-02" aria-invalid="true" aria-describedby="since-error"'
    assert f'id="since" name="since" type="date" {invalid}' in reversed_range.text
    assert '<p class="error" id="since-error" role="alert">' in reversed_range.text


def test_the_next_page_neither_repeats_nor_skips_when_scores_arrive(registry, tmp_path):
    """A reviewer reading page 1 while scorers work: page 2 must go on where page 1 ended, not repeat
    the scores that newer ones pushed down (an offset alone would)."""
    server = start_server(registry, tmp_path)
    engine = make_engine(server.database)
    audit = AuditStore(engine, TEST_SEAL)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    listed = [score_row(f"P-{i}", created_at=start + timedelta(minutes=i)) for i in range(30)]
    audit.record(listed)

    def ids(text: str) -> list[str]:
        return re.findall(r'<tr data-score-id="([^"]+)"', text)

    try:
        with server.page_client() as client:
            first = client.get("/review/scores")
            audit.record([score_row(f"P-NEW-{i}", created_at=utc_now()) for i in range(3)])
            older = html.unescape(re.search(r'<a href="([^"]+)" rel="next">', first.text).group(1))
            second = client.get(f"/review/scores{older}")
            back = html.unescape(re.search(r'<a href="([^"]+)" rel="prev">', second.text).group(1))
            again = client.get(f"/review/scores{back}")
    finally:
        engine.dispose()
        server.stop()
    newest_first = [row.id for row in reversed(listed)]
    assert ids(first.text) == newest_first[:25]
    assert ids(second.text) == newest_first[25:], "page 2 goes on where page 1 ended"
    assert ids(again.text) == newest_first[:25], "back to page 1 as it was read"
    assert "30 scores, newest first; page 2 of 2." in second.text
    assert "3 newer scores" in second.text


def test_a_list_position_the_server_never_gave_is_said(server, scores):
    """A cut or hand-edited `upto` cannot pin the list; the page says so rather than quietly
    showing other rows than the link promised."""
    with server.page_client() as client:
        page = client.get("/review/scores", params={"upto": "not-a-position"})
    assert page.status_code == 200
    assert (
        '<p class="error" id="upto-error" role="alert">The list position in this address (upto) is not one '
        "this server gave out; showing from the newest score</p>"
    ) in page.text
    assert scores[-1]["id"] in page.text and "newer score" not in page.text


def test_an_unknown_band_is_said_and_every_band_shown(server, scores):
    with server.page_client() as client:
        page = client.get("/review/scores", params={"band": "unknown"})
    assert page.status_code == 200
    assert (
        '<p class="error" id="band-error" role="alert">&#39;unknown&#39; is not a risk band of the serving '
        "model or of its stored scores; allowed: low, moderate, high, very_high; showing every band</p>"
    ) in page.text
    assert '<select id="band" name="band" aria-invalid="true" aria-describedby="band-error">' in page.text
    assert all(score["id"] in page.text for score in scores[-5:])


def test_a_date_that_is_not_one_is_said_on_its_field_and_filters_nothing(server, scores):
    """A hand-edited address (the date inputs send only dates): the list shows every day, and says so."""
    with server.page_client() as client:
        page = client.get("/review/scores", params={"since": "2026-13-01", "until": "yesterday"})
    assert page.status_code == 200
    for field, given in (("since", "2026-13-01"), ("until", "yesterday")):
        assert (
            f'<p class="error" id="{field}-error" role="alert">&#39;{given}&#39; is not a date (YYYY-MM-DD); '
            "the list is not filtered by it</p>"
        ) in page.text
        invalid = f'value="{given}" aria-invalid="true" aria-describedby="{field}-error"'
        assert f'id="{field}" name="{field}" type="date" {invalid}' in page.text
    assert all(score["id"] in page.text for score in scores[-5:])


def test_a_person_id_no_score_can_hold_lists_none_rather_than_failing(server, scores):
    """NUL is never in a stored id (PostgreSQL refuses it in text): the list is empty, on every page of it."""
    with server.page_client() as client:
        first = client.get("/review/scores", params={"person_id": "P\x00"})
        upto = cursor_of(datetime.fromisoformat(scores[-1]["created_at"]), scores[-1]["id"])
        pinned = client.get("/review/scores", params={"person_id": "P\x00", "upto": upto})
    for page in (first, pinned):
        assert page.status_code == 200
        assert '<p id="count" role="status">0 scores, newest first.</p>' in page.text
        assert "newer score" not in page.text


@pytest.mark.parametrize("path", ["/review", "/review/"])
def test_the_pages_root_goes_to_the_scores(server, path):
    with httpx.Client(base_url=server.base_url) as client:
        response = client.get(path)
    assert (response.status_code, response.headers["location"]) == (303, "/review/scores")


def test_a_band_only_an_earlier_version_gave_is_a_filter(own_scores_server):
    """Scores an earlier version put in a band the serving spec no longer has are found by that band."""
    old = add_a_retired_band_score(own_scores_server)
    with own_scores_server.page_client() as client:
        page = client.get("/review/scores", params={"band": "retired"})
    assert 'id="band-error"' not in page.text
    assert '<option value="retired" selected>retired</option>' in page.text
    assert page.text.count('<tr data-score-id="') == 1 and old.id in page.text


def test_a_bad_page_address_gets_a_page_not_a_json_problem(server, scores):
    with server.page_client() as client, server.client("reviewer") as reviewer:
        bad_page = client.get("/review/scores", params={"page": "abc"})
        no_page = client.get("/review/nowhere")
        api_query = reviewer.get("/v1/scores", params={"limit": "abc"})
        api_path = reviewer.get("/v1/nowhere")
    assert bad_page.status_code == 422 and bad_page.headers["content-type"].startswith("text/html")
    assert "<code>page</code> = <code>abc</code>: Input should be a valid integer" in bad_page.text
    assert "<title>Error: Cannot show this page" in bad_page.text
    assert ">Sign out<" in bad_page.text, "the signed-in reviewer keeps the menu"
    assert "frame-ancestors 'none'" in bad_page.headers["content-security-policy"]
    assert no_page.status_code == 404 and "There is no page at /review/nowhere." in no_page.text
    assert api_query.headers["content-type"] == api_path.headers["content-type"] == "application/problem+json"
    assert api_query.status_code == 422 and api_path.status_code == 404


def test_chart_text_is_readable_on_a_phone(browser, server, scores):
    """At 375 px the wide charts keep their text at 10 px or more and scroll in their own box,
    rather than shrinking to the screen (labels were about 5 px)."""
    context = browser.new_context(base_url=server.base_url, viewport={"width": 375, "height": 800})
    page = context.new_page()
    smallest, widths = {}, {}
    try:
        sign_in(page, server.keys["reviewer"])
        for path in [f"/review/scores/{scores[0]['id']}", f"/review/people/{REASSESSED}"]:
            page.goto(path)
            widths[path] = page.evaluate("() => document.documentElement.scrollWidth")
            smallest[path] = page.evaluate(
                """() => Math.min(...[...document.querySelectorAll("svg#waterfall, svg#domains, svg#trend")]
                    .flatMap(svg => [...svg.querySelectorAll("text")].map(text =>
                        parseFloat(getComputedStyle(text).fontSize)
                        * svg.getBoundingClientRect().width / svg.viewBox.baseVal.width)))"""
            )
    finally:
        context.close()
    assert all(size >= 10 for size in smallest.values()), smallest
    assert all(width <= 375 for width in widths.values()), widths


def test_pages_fit_a_phone_screen_whatever_the_ids(browser, own_scores_server, registry, api_records):
    """At 375 px nothing widens the page: long ids wrap, wide tables scroll inside their own box."""
    long_id = "P" + "x" * 127
    server = own_scores_server
    with server.client("scorer") as scorer:
        created = scorer.post("/v1/scores", json={"person_id": long_id, "record": api_records[3]}).json()
    context = browser.new_context(base_url=server.base_url, viewport={"width": 375, "height": 800})
    try:
        page = context.new_page()
        sign_in(page, server.keys["reviewer"])
        widths = {}
        for path in [
            "/review/scores",
            f"/review/scores/{created['id']}",
            f"/review/people/{long_id}",
            f"/review/model/{registry.version}",
        ]:
            page.goto(path)
            widths[path] = page.evaluate("() => document.documentElement.scrollWidth")
    finally:
        context.close()
    assert all(width <= 375 for width in widths.values()), widths


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/review/\\evil.example", "/review/../other"]
)
def test_sign_in_never_redirects_to_another_site(server, target):
    with httpx.Client(base_url=server.base_url) as client:
        form = {"key": server.keys["reviewer"], "csrf": form_token(client), "next": target}
        response = client.post("/review/sign-in", data=form)
    assert response.status_code == 303 and response.headers["location"] == "/review/scores"


def test_reviewer_reads_scores_and_explanations(page, server, scores):
    sign_in(page, server.keys["reviewer"])
    assert urlsplit(page.url).path == "/review/scores"
    shown = page.locator("table.scores tbody tr").evaluate_all("rows => rows.map(r => r.dataset.scoreId)")
    assert shown == [s["id"] for s in reversed(scores)]
    screenshot(page, "scores")

    band = scores[0]["risk"]["band"]
    page.get_by_label("Risk band").select_option(band)
    with page.expect_navigation():
        page.get_by_role("button", name="Filter").click()
    bands = page.locator("table.scores tbody tr .band").all_inner_texts()
    assert bands and set(bands) == {band}
    assert len(bands) == sum(s["risk"]["band"] == band for s in scores)

    score = scores[-1]
    page.goto("/review/scores")
    with page.expect_navigation():
        page.locator(f"tr[data-score-id='{score['id']}'] a").first.click()
    assert urlsplit(page.url).path == f"/review/scores/{score['id']}"
    with server.client("reviewer") as client:
        api = client.get(f"/v1/scores/{score['id']}").json()["explanation"]["risk"]
    check_waterfall(page, api)
    check_domains(page, api)
    others = len(api["contributions"]) - TOP_INPUTS
    described = f"adds the {TOP_INPUTS} largest contributions in turn (the other {others} grouped)"
    assert described in page.content()
    identity = page.locator("#identity").inner_text()
    assert f"{api['log_odds']:.4f}" in identity and "add up to the score" in identity
    screenshot(page, "score")

    with page.expect_navigation():
        page.locator("#model-link").click()
    assert page.locator("#model-version").inner_text() == score["model"]["version"]
    assert page.locator("#serving-state").inner_text() == "Serving"
    assert page.locator("table.fairness tbody tr").count() >= 2
    with server.client("reviewer") as client:
        race = client.get("/v1/model").json()["fairness"]["Race"]
    cells = page.locator("#bands-Race tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )
    assert cells == [
        [
            band,
            group,
            str(c["n"]),
            _three(c["mean_predicted"]),
            _three(c["observed_rate"]),
            _three(race["band_shares"][band][group]),
        ]
        for band, by_group in race["bands"].items()
        for group, c in by_group.items()
    ]
    assert len(cells) == 8  # four bands of the built-in spec by two groups
    band_gap = page.locator("#band-gap-Race").inner_text()
    assert f"The largest within-band gap is in band {race['band_rate_gap_band']}:" in band_gap
    assert f"(gap {race['band_rate_gap']:.4f})" in band_gap
    assert f"It is the widest of {race['band_rate_gap_choices']} within-band differences" in band_gap
    with server.client("reviewer") as client:
        run = client.get("/v1/model").json()["metrics"]["run"]
    low, high = run["test_interval_band_rate_gap_low"], run["test_interval_band_rate_gap_high"]
    assert f"interval of that difference: {low:.4f} to {high:.4f};" in band_gap
    assert "baseline: incumbent: Georgia supervision risk score (first)" in page.content()
    aliases = page.locator("#versions tr.current td").nth(1).inner_text()
    assert "champion" in aliases.split(", "), "the serving version's row names its alias"
    assert "the FPR gap" in page.locator("p.gate").first.inner_text()
    plots = page.locator(".plots img")
    plots.last.scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('.plots img')].every(i => i.complete)")
    assert plots.evaluate_all("images => images.map(i => i.naturalWidth > 0)") == [True] * plots.count()
    assert page.locator(".card h3").first.inner_text().startswith("Model card")
    screenshot(page, "model")

    page.goto(f"/review/people/{REASSESSED}")
    assert page.locator("#person-scores tbody tr").count() == REASSESSMENTS
    check_trends(page, scores[:REASSESSMENTS])
    screenshot(page, "person")

    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    assert "You have signed out." in page.content()
    page.goto(f"/review/scores/{score['id']}")
    assert urlsplit(page.url).path == "/review/sign-in"


def check_trends(page, api_scores: list[dict]) -> None:
    """The risk trend and one trend per need plot the API's probabilities, oldest first, flags filled."""
    points = page.locator("#trend circle.point")
    assert points.evaluate_all("ps => ps.map(p => p.dataset.scoreId)") == [s["id"] for s in api_scores]
    assert [float(p) for p in points.evaluate_all("ps => ps.map(p => p.dataset.probability)")] == [
        s["risk"]["probability"] for s in api_scores
    ]
    names = [n["need"] for n in api_scores[0]["needs"]]
    assert page.locator("figure.need-trend").evaluate_all("fs => fs.map(f => f.dataset.need)") == names
    for index, name in enumerate(names):
        drawn = page.locator(f"#need-trend-{name} circle.point").evaluate_all(
            "ps => ps.map(p => [p.dataset.scoreId, Number(p.dataset.probability),"
            " p.classList.contains('need-flagged'), Number(p.getAttribute('cy'))])"
        )
        needs = [(s["id"], s["needs"][index]) for s in api_scores]
        assert [tuple(d[:3]) for d in drawn] == [(i, n["probability"], n["flagged"]) for i, n in needs]
        for _, probability, _, cy in drawn:
            assert cy == pytest.approx(NEED_FRAME.y(probability), abs=0.05), "point height is its probability"


def check_waterfall(page, api: dict) -> None:
    """The bars carry the API's numbers, chain from the base value to the log-odds, and are to scale."""
    svg = page.locator("svg#waterfall")
    scale, zero = float(svg.get_attribute("data-scale")), float(svg.get_attribute("data-zero"))
    bars = svg.locator("rect.bar[data-contribution]").evaluate_all(
        """rects => rects.map(r => ({input: r.dataset.input ?? null, rest: +(r.dataset.rest ?? 0),
            contribution: +r.dataset.contribution, start: +r.dataset.start, end: +r.dataset.end,
            x: +r.getAttribute('x'), width: +r.getAttribute('width')}))"""
    )
    top, rest = api["contributions"][:TOP_INPUTS], api["contributions"][TOP_INPUTS:]
    assert [b["input"] for b in bars[:TOP_INPUTS]] == [c["input"] for c in top]
    for bar, contribution in zip(bars, top, strict=False):
        assert bar["contribution"] == pytest.approx(contribution["contribution"], abs=1e-9)
    assert bars[-1]["rest"] == len(rest)
    assert bars[-1]["contribution"] == pytest.approx(math.fsum(c["contribution"] for c in rest), abs=1e-9)
    assert bars[0]["start"] == pytest.approx(api["base_value"], abs=1e-9)
    for before, after in pairwise(bars):
        assert after["start"] == pytest.approx(before["end"], abs=1e-9)
    assert bars[-1]["end"] == pytest.approx(api["log_odds"], abs=1e-6)
    for bar in bars:
        assert bar["width"] == pytest.approx(abs(bar["contribution"]) * scale, abs=1e-3)
        assert bar["x"] == pytest.approx(zero + min(bar["start"], bar["end"]) * scale, abs=1e-3)
    assert svg.locator("rect.bar[data-input] title").count() == TOP_INPUTS
    table = page.locator("#waterfall-table tbody tr")
    assert table.count() == len(bars) + 2


def check_domains(page, api: dict) -> None:
    svg = page.locator("svg#domains")
    scale = float(svg.get_attribute("data-scale"))
    bars = svg.locator("rect.bar").evaluate_all(
        "rects => rects.map(r => [+r.dataset.contribution, +r.getAttribute('width')])"
    )
    expected = sorted(api["by_domain"].values(), key=lambda v: -abs(v))
    assert [b[0] for b in bars] == pytest.approx(expected, abs=1e-9)
    assert [b[1] for b in bars] == pytest.approx([abs(v) * scale for v in expected], abs=1e-3)


def test_an_earlier_version_shows_its_own_run_and_metrics(page, server, registry, second_version):
    """A version that is not serving is read from its own MLflow run, not from the serving model."""
    sign_in(page, server.keys["reviewer"], f"/review/model/{second_version.model_version}")
    assert page.locator("#model-version").inner_text() == second_version.model_version
    assert page.locator("#serving-state").inner_text() == "Not serving"
    assert second_version.run_id in page.locator("main").inner_text()
    auc_row = page.locator("#metrics tbody tr", has=page.get_by_role("rowheader", name="AUC", exact=True))
    assert auc_row.locator("td").first.inner_text() == f"{second_version.metrics['test_risk_auc']:.4f}"
    low, high = (second_version.metrics[f"test_interval_auc_{end}"] for end in ("low", "high"))
    assert f"AUC {low:.4f} to {high:.4f}" in page.locator("#intervals").inner_text()
    gap_low = second_version.metrics["test_interval_fpr_gap_low"]
    assert f"95% bootstrap interval: {gap_low:.4f} to" in page.locator(".gate-interval").inner_text()
    page.get_by_role("link", name="its page").click()
    assert page.locator("#model-version").inner_text() == registry.version
    assert page.locator("#serving-state").inner_text() == "Serving"


def test_the_model_page_says_when_mlflow_does_not_answer(registry, tmp_path, second_version):
    """A tracking server that goes away while the API serves: the serving version's page stays up from
    what was loaded with it and says what cannot be listed; an earlier version's page says why it cannot
    be shown. Neither waits minutes on MLflow's retries nor ends in a 500."""
    from tests.serving.servers import free_port

    port = free_port()
    tracking = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            registry.uri,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        server = start_server(registry, tmp_path, extra_env={"MLFLOW_TRACKING_URI": url})
    finally:
        tracking.terminate()
        tracking.wait(timeout=30)
    try:
        with server.page_client() as client:
            client.timeout = httpx.Timeout(90)  # MLflow's own retries took 246 s, then a 500
            serving = client.get(f"/review/model/{registry.version}")
            earlier = client.get(f"/review/model/{second_version.model_version}")
    finally:
        server.stop()
    assert serving.status_code == 200
    serving_text = " ".join(html.unescape(serving.text).split())
    assert (
        "MLflow did not answer, so the registered versions and the alias moves cannot be listed now"
        in serving_text
    )
    assert "No alias move is recorded" not in serving_text
    assert earlier.status_code == 503
    assert (
        f"MLflow did not answer: version {second_version.model_version} cannot be shown now" in earlier.text
    )


def test_the_model_page_says_when_the_registered_model_was_renamed(registry, tmp_path, spec):
    """The serving version's run is known from loading it: its page and plots need no registry look-up."""
    from mlflow import MlflowClient

    name = "reintegra-renamed-later"
    first, server = serve_new_model(registry, tmp_path, spec, name)
    MlflowClient().rename_registered_model(name, f"{name}-elsewhere")
    try:
        with server.page_client() as client:
            page = client.get(f"/review/model/{first.model_version}")
            plot = client.get(f"/review/model/{first.model_version}/artifacts/roc.png")
    finally:
        server.stop()
    text = " ".join(html.unescape(page.text).split())
    assert page.status_code == 200
    assert f"MLflow holds no registered model named {name} now (renamed or deleted)" in text
    assert "No alias move is recorded" not in text
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"


def test_a_version_deleted_from_the_registry_is_shown_from_the_run_its_scores_name(
    registry, tmp_path, spec, api_records
):
    """A score's link to the version that made it must still open once that version is deleted from
    the registry: the audit trail names its training run."""
    from mlflow import MlflowClient

    name = "reintegra-deleted-version"
    first, server = serve_new_model(registry, tmp_path, spec, name)
    try:
        with server.client("scorer") as scorer:
            assert scorer.post("/v1/scores", json={"record": api_records[0]}).status_code == 201
        serve_next_version(server, registry, spec, name, seed=4)
        MlflowClient().delete_model_version(name, first.model_version)
        with server.page_client() as client:
            page = client.get(f"/review/model/{first.model_version}")
            plot = client.get(f"/review/model/{first.model_version}/artifacts/roc.png")
            never = client.get("/review/model/99")
    finally:
        server.stop()
    text = " ".join(html.unescape(page.text).split())
    assert page.status_code == 200, text
    assert f"The registry no longer holds version {first.model_version} of {name} (deleted)" in text
    assert f"training run <code>{first.run_id}</code>, which its stored scores name" in text
    assert "Risk AUC" in text
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert never.status_code == 404
    assert f"No version 99 of {name} in the registry or in the audit trail." in html.unescape(never.text)
    assert "failed a promotion gate" not in text, "the serving version's forced promotion is not this one's"


def test_a_version_whose_run_lost_documents_says_which_and_shows_the_rest(registry, tmp_path, spec):
    """A run logged by an older release, or with a file deleted from its artifacts by hand: the page
    showed an empty metrics table, a broken plot and a card 'never logged', and GET /v1/model empty
    fields, none saying that the run lacks its evaluation.json, model_card.md, plots.json or roc.png."""
    from urllib.parse import urlparse

    import mlflow

    from training.promote import promote
    from training.train import train

    name = "reintegra-lost-documents"
    first = train(spec, registry.data, name=name, seed=3)
    promote(name, first.model_version, force=True, reason="test fixture")
    folder = Path(urlparse(mlflow.get_run(first.run_id).info.artifact_uri).path)
    for lost in ("evaluation.json", "model_card.md", "plots.json", "roc.png"):
        (folder / lost).unlink()
    server = start_server(registry, tmp_path, extra_env={"REINTEGRA_MODEL_NAME": name})
    try:
        with server.client("reviewer") as reviewer:
            model = reviewer.get("/v1/model")
        with server.page_client() as client:
            page = client.get(f"/review/model/{first.model_version}")
            lost_plot = client.get(f"/review/model/{first.model_version}/artifacts/roc.png")
            kept_plot = client.get(f"/review/model/{first.model_version}/artifacts/calibration.png")
    finally:
        server.stop()
    assert model.status_code == 200
    assert model.json()["missing_documents"] == ["evaluation.json", "model_card.md", "plots.json"]
    assert model.json()["metrics"]["risk"] == {} and model.json()["model_card"] == ""
    assert page.status_code == 200
    text = " ".join(html.unescape(page.text).split())
    assert (
        f"Training run <code>{first.run_id}</code> in MLflow lacks evaluation.json, model_card.md, "
        "plots.json, roc.png (each deleted from its artifacts" in text
    )
    assert 'id="metrics"' not in text, "no empty metrics table"
    assert "No metrics: this version's training run lacks evaluation.json" in text
    assert "No fairness audit: this version's training run lacks evaluation.json" in text
    assert "No model card: this version's training run lacks model_card.md." in text
    assert "No plot: this version's training run lacks roc.png." in text
    assert "lacks plots.json, so each plot's text alternative is its caption alone" in text
    assert "artifacts/roc.png" not in text and "artifacts/calibration.png" in text
    assert f"{first.metrics['test_risk_auc']:.4f}" in text, "the versions table still shows"
    assert 'id="drift-heading"' in text
    assert lost_plot.status_code == 404 and lost_plot.text == "no plot roc.png for version 1"
    assert kept_plot.status_code == 200 and kept_plot.headers["content-type"] == "image/png"


def test_scores_of_a_version_that_never_scored_show_that_filter(page, server, scores, second_version):
    """The model page links every version's scores; for one with none the list is empty, and the
    form must show that version as the filter, not "any", or the store would look empty."""
    sign_in(page, server.keys["reviewer"], f"/review/model/{second_version.model_version}")
    with page.expect_navigation():
        page.get_by_role("link", name="Scores from this version").click()
    assert page.locator("#count").inner_text() == "0 scores, newest first."
    assert page.get_by_label("Model version").input_value() == second_version.model_version


def test_a_forced_promotion_shows_its_reason(page, server, second_version):
    from mlflow import MlflowClient

    from models.registry import FORCED_REASON_TAG

    version, client = second_version.model_version, MlflowClient()
    earlier = client.get_model_version("reintegra", version).tags.get(FORCED_REASON_TAG)
    sign_in(page, server.keys["reviewer"], f"/review/model/{version}")
    try:
        if earlier:
            client.delete_model_version_tag("reintegra", version, FORCED_REASON_TAG)
        page.goto(f"/review/model/{version}")
        absent = page.locator("#forced-promotion").count()
        client.set_model_version_tag("reintegra", version, FORCED_REASON_TAG, "pilot <b>approved</b>")
        page.goto(f"/review/model/{version}")
        notice = page.locator("#forced-promotion").inner_text()
    finally:  # other tests may have forced this version: leave its record as it was
        if earlier:
            client.set_model_version_tag("reintegra", version, FORCED_REASON_TAG, earlier)
        else:
            client.delete_model_version_tag("reintegra", version, FORCED_REASON_TAG)
    assert absent == 0
    assert "failed a promotion gate" in notice and "“pilot <b>approved</b>”" in notice


def test_pages_read_without_javascript_and_by_keyboard(browser, server, scores):
    context = browser.new_context(base_url=server.base_url, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, server.keys["reviewer"], f"/review/scores/{scores[0]['id']}")
        assert urlsplit(page.url).path == f"/review/scores/{scores[0]['id']}"
        assert page.locator("svg#waterfall rect.bar[data-input]").count() == TOP_INPUTS
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        page.goto("/review/scores")
        for label in ["Risk band", "Model version", "Person id", "From (UTC)", "To (UTC, inclusive)"]:
            assert page.get_by_label(label).count() == 1
        page.get_by_label("Person id").fill(REASSESSED)
        with page.expect_navigation():
            page.get_by_label("Person id").press("Enter")
        assert page.locator("table.scores tbody tr").count() == REASSESSMENTS
    finally:
        context.close()


def test_fairness_gaps_above_the_gate_are_marked():
    from features.spec import Gates
    from serving.pages import fairness_gaps

    table = {"fpr_gap": 0.08, "fnr_gap": 0.2, "ece_gap": 0.01}
    gates = Gates(fairness_attribute="Race", max_fpr_gap=0.05)
    gated = {name: gap.above_gate for name, gap in fairness_gaps(table, gates, "Race").items()}
    assert gated == {"fpr": True, "fnr": False, "ece": False}
    assert not any(gap.above_gate for gap in fairness_gaps(table, gates, "Gender").values())
    assert not any(gap.above_gate for gap in fairness_gaps(table, None, "Race").values()), "gates unknown"


def test_model_card_markdown_is_escaped():
    from serving.pages import markdown

    html = str(
        markdown("# Card <script>\n\n| a | b |\n| --- | --- |\n| `x` | **y** |\n\n- one\n- two", shift=2)
    )
    assert "<h3>Card &lt;script&gt;</h3>" in html
    assert "<td><code>x</code></td><td><strong>y</strong></td>" in html
    assert "<ul><li>one</li><li>two</li></ul>" in html and "<script>" not in html


def test_a_short_explanation_has_no_grouped_bar():
    from serving.pages import waterfall

    explained = {
        "base_value": -0.5,
        "log_odds": 0.25,
        "contributions": [
            {"input": "a", "value": 1.0, "domain": "d", "contribution": 1.0},
            {"input": "b", "value": None, "domain": "d", "contribution": -0.25},
        ],
    }
    chart = waterfall(explained)
    assert [bar.kind for bar in chart.bars] == ["marker", "up", "down", "marker"]
    assert chart.bars[2].end == pytest.approx(0.25)
    assert chart.bars[1].width == pytest.approx(4 * chart.bars[2].width)


def test_a_need_an_earlier_model_did_not_score_keeps_the_time_axis():
    from datetime import UTC, datetime

    from serving.pages import need_trends
    from serving.tables import ScoreRow

    def row(index: int, needs: list[dict]) -> ScoreRow:
        return ScoreRow(
            id=f"s{index}", created_at=datetime(2026, 1, index + 1, tzinfo=UTC), result={"needs": needs}
        )

    housing = {"need": "housing", "probability": 0.7, "flagged": True}
    calm = {**housing, "probability": 0.2, "flagged": False}
    rows = [row(0, [housing]), row(1, []), row(2, [calm]), row(3, [calm])]
    trend = need_trends(rows, [{"housing": 0.5}] * len(rows), ["housing"])["housing"]
    assert [(p.score_id, p.mark) for p in trend.points] == [("s0", "flagged"), ("s2", ""), ("s3", "")]
    left, right = trend.frame.left, trend.frame.right
    assert [p.x for p in trend.points] == pytest.approx([left, left + 2 * (right - left) / 3, right])
    assert trend.path.count("L") == 2
    step = (right - left) / 3  # no threshold above the assessment that did not score the need
    lines = [(c.label, c.x1, c.x2) for c in trend.cut_lines]
    assert lines == [
        ("0.5", left, pytest.approx(left + step / 2)),
        ("0.5", pytest.approx(left + 1.5 * step), right),
    ]


def test_the_model_page_marks_a_gap_above_the_gate():
    from features.spec import Gates
    from serving.pages import fairness_gaps
    from serving.routes.pages import templates

    table = {"threshold": 0.5, "groups": {}, "fpr_gap": 0.08, "fnr_gap": 0.01, "ece_gap": 0.02}
    gates = Gates(fairness_attribute="Race", max_fpr_gap=0.05)
    html = templates.get_template("model.html").render(
        request=page_request(),
        name="reintegra",
        version="2",
        serving_version="2",
        gates=gates,
        artifacts={},
        fairness={"Race": (table, fairness_gaps(table, gates, "Race"))},
    )
    assert 'class="num over-gate" data-gap="fpr"' in html
    assert "Race: the FPR gap 0.0800 is <strong>above</strong> the gate 0.05." in " ".join(html.split())


def _three(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def test_the_model_page_shows_a_small_band_cell_as_na_and_says_when_no_band_has_a_gap():
    from features.spec import Gates
    from serving.pages import fairness_gaps
    from serving.routes.pages import templates

    table = {
        "threshold": 0.5,
        "groups": {},
        "min_group_size": 30,
        "bands": {
            "low": {
                "BLACK": {"n": 31, "mean_predicted": 0.21, "observed_rate": 0.25},
                "WHITE": {"n": 4, "mean_predicted": 0.2, "observed_rate": None},
            },
            "high": {"BLACK": {"n": 0, "mean_predicted": None, "observed_rate": None}},
        },
        "band_rate_gap": None,
    }
    html = templates.get_template("model.html").render(
        request=page_request(),
        name="reintegra",
        version="2",
        serving_version="2",
        gates=Gates(),
        artifacts={},
        fairness={"Race": (table, fairness_gaps(table, None, "Race"))},
    )
    text = " ".join(html.split())
    assert '<td class="num">4</td> <td class="num">0.200</td><td class="num">n/a</td>' in text
    assert '<td class="num">0</td> <td class="num">n/a</td><td class="num">n/a</td>' in text
    assert "No band holds two groups with at least 30 people each, so there is no within-band gap." in text


def test_a_session_holds_on_every_worker(registry, tmp_path):
    """Two workers sign sessions with one secret, so a reviewer stays signed in whichever answers."""
    server = start_server(registry, tmp_path, workers=2)

    def open_page(cookies: httpx.Cookies) -> int:
        with httpx.Client(base_url=server.base_url, cookies=cookies) as client:
            return client.get("/review/scores").status_code

    try:
        with httpx.Client(base_url=server.base_url) as client:
            form = {"key": server.keys["reviewer"], "csrf": form_token(client), "next": "/review/scores"}
            signed_in = client.post("/review/sign-in", data=form)
            with ThreadPoolExecutor(4) as pool:
                pages = list(pool.map(open_page, [client.cookies] * 24))
    finally:
        server.stop()
    assert signed_in.status_code == 303
    assert pages == [200] * 24


def test_a_session_left_unused_ends_though_one_in_use_goes_on(registry, tmp_path):
    """A page left open on an unattended screen stayed signed in for the whole 8 hours: a session had no
    idle limit. It now ends REINTEGRA_SESSION_IDLE_MINUTES after the last page it opened (6 s here),
    while pages opened more often keep it going."""
    server = start_server(registry, tmp_path, extra_env={"REINTEGRA_SESSION_IDLE_MINUTES": "0.1"})
    try:
        with server.page_client() as client:
            answers = []
            for pause in (3.5, 3.5, 3.5):  # 10.5 s in all, never 6 s without a page
                time.sleep(pause)
                answers.append(client.get("/review/scores").status_code)
            cookie = client.cookies["reintegra_review"]
            time.sleep(8)
            idle = client.get("/review/scores")
        with httpx.Client(base_url=server.base_url, cookies={"reintegra_review": cookie}) as copied:
            replayed = copied.get("/review/scores")
    finally:
        server.stop()
    assert answers == [200, 200, 200]
    for ended in (idle, replayed):  # the browser may drop the cookie; the server refuses it anyway
        assert ended.status_code == 303 and urlsplit(ended.headers["location"]).path == "/review/sign-in"


def test_revoking_the_key_ends_its_page_session(server):
    store = KeyStore(make_engine(server.database))
    key, secret = store.create("reviewer", "revoked during a session")
    with httpx.Client(base_url=server.base_url) as client:
        client.post("/review/sign-in", data={"key": secret, "csrf": form_token(client)})
        before = client.get("/review/scores").status_code
        store.revoke(key.id)
        after = client.get("/review/scores")
    assert before == 200
    assert after.status_code == 303 and urlsplit(after.headers["location"]).path == "/review/sign-in"


def test_api_docs_render_from_the_server_alone(browser, server):
    """Swagger UI comes from the server itself, so /docs works on a closed network."""
    context = browser.new_context(base_url=server.base_url)
    page = context.new_page()
    elsewhere: list[str] = []
    local = (server.base_url, "data:", "blob:")
    page.on("request", lambda r: None if r.url.startswith(local) else elsewhere.append(r.url))
    try:
        page.goto("/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=30_000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
    finally:
        context.close()
    assert elsewhere == []
    assert "/v1/scores" in paths and "/v1/scores:batch" in paths


def test_a_need_named_with_spaces_labels_its_chart():
    """aria-labelledby is a list of ids split on spaces: a need named "mental health" (any spec may)
    must not split its chart's label into ids that do not exist."""
    from datetime import UTC, datetime

    from features.spec import NeedSpec
    from serving.pages import need_trends, trend
    from serving.routes.pages import templates
    from serving.tables import ScoreRow

    need = NeedSpec(
        name="mental health", all=[{"column": "mh", "op": "==", "value": "Yes"}], interventions=["x"]
    )
    found = {"need": need.name, "probability": 0.6, "flagged": True}
    rows = [
        ScoreRow(
            id="s1",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            risk_probability=0.4,
            risk_band="low",
            model_version="1",
            result={"needs": [found]},
        )
    ]
    html = templates.get_template("person.html").render(
        request=page_request(),
        person_id="P",
        rows=rows,
        total=1,
        trend=trend([("s1", rows[0].created_at, 0.4, "low", False)], [(0.5,)]),
        need_trends=need_trends(rows, [{need.name: need.flag_threshold}], [need.name]),
        need_names=[need.name],
        need_rows=[(rows[0], {need.name: found})],
        raised=set(),
    )
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    labelled = [i for refs in re.findall(r'aria-labelledby="([^"]+)"', html) for i in refs.split()]
    assert "need-trend-mental-health-title" in labelled and set(labelled) <= ids, (labelled, ids)
    assert not [i for i in ids if re.search(r"\s", i)]
