"""Every reviewer page, in each state a reviewer meets, audited by axe-core in headless Debian Chromium
against WCAG 2.1 A and AA, which EN 301 549 makes a legal requirement for public-sector software."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.serving.servers import REASSESSED, sign_in

pytestmark = pytest.mark.slow

WCAG_21_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
# Every scan runs best-practice too, and keeps what axe could not decide (incomplete): both are written to
# REPORT for a person to read, not enforced.
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": [*WCAG_21_AA, "best-practice"]},
    "resultTypes": ["violations", "incomplete"],
}
REPORT = Path(__file__).resolve().parents[2] / "test-output" / "accessibility" / "axe.json"
PAGE_SIZE = 25
WARNED_INPUT = "Prior_Conviction_Episodes_DomesticViolenceCharges"  # left out, so its score warns
# Rules that apply to every page, so a scan that passed none of them audited nothing.
ALWAYS_CHECKED = {"document-title", "html-has-lang", "color-contrast", "landmark-one-main"}
# Each state scanned, with the start of its title and a text on it that show the browser reached it.
STATES = {
    "sign-in": ("Sign in ·", "The reviewer pages need a reviewer (or admin) API key."),
    "sign-in, key refused": ("Error: Sign in ·", "Unknown or revoked key."),
    "scores, first of two pages": ("Scores ·", "26 scores, newest first; page 1 of 2."),
    "scores, second page with newer scores": ("Scores ·", "1 newer score arrived"),
    "scores, filtered": ("Scores ·", "1 score, newest first."),
    "scores, range ending before it starts": ("Error: Scores ·", "is after To (2026-02-01)"),
    "scores, none match": ("Scores ·", "0 scores, newest first."),
    "score": (f"Score of person {REASSESSED} at ", "The input record"),
    "score with a warning": ("Score of person Q-warned at ", WARNED_INPUT),
    "model": ("Model reintegra version ", "Drift since training"),
    "person": (f"Person {REASSESSED} ·", "Every assessment"),
    "not found": ("Not found ·", "No score with id no-such-score."),
    "bad address": ("Error: Cannot show this page ·", "The page's address asks for something it cannot show"),
    "session about to end": ("Scores ·", "Your session ends at"),
    "sign-in, signed out": ("Sign in ·", "You have signed out."),
}


class Scan(NamedTuple):
    """What one axe run found on one page state."""

    title: str
    text: str
    violations: list[dict]
    best_practice: list[dict]
    undecided: list[dict]
    passed: set[str]


def scan(page, axe: Axe) -> Scan:
    """Audit the page as loaded. axe is injected with page.evaluate, which the page's CSP does not govern,
    so the page is audited as a reviewer's browser renders it, its CSP (no inline style) in force."""
    results = axe.run(page, options=AXE_OPTIONS).response
    wcag = [rule for rule in results["violations"] if set(WCAG_21_AA) & set(rule["tags"])]
    return Scan(
        page.title(),
        page.locator("body").inner_text(),
        wcag,
        [rule for rule in results["violations"] if rule not in wcag],
        results["incomplete"],
        {rule["id"] for rule in results["passes"]},
    )


def described(rules: list[dict]) -> list[str]:
    """One line per failing element, naming its rule, so a failure says what to fix and where."""
    return [
        f"{rule['id']} ({rule['impact']}) at {' '.join(node['target'])}: {node.get('failureSummary')}"
        for rule in rules
        for node in rule["nodes"]
    ]


def write_report(scans: dict[str, Scan]) -> None:
    """Keep every state's findings, best-practice included, for a person to read after the run."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        json.dumps(
            {
                name: {
                    "wcag_21_aa": described(s.violations),
                    "best_practice": described(s.best_practice),
                    "undecided": described(s.undecided),
                }
                for name, s in scans.items()
            },
            indent=1,
        )
    )


def post_score(server, person: str, record: dict) -> dict:
    with server.client("scorer") as client:
        response = client.post("/v1/scores", json={"person_id": person, "record": record})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def scans(browser, server, scores, api_records) -> dict[str, Scan]:
    """Walk one browser context through every state in STATES, scanning each once: signed out, then
    signed in with two pages of scores, and last the session warning and signing out."""
    for index, record in enumerate(api_records[len(scores) : PAGE_SIZE]):
        post_score(server, f"Q-{index}", record)
    warned = post_score(
        server, "Q-warned", {k: v for k, v in api_records[PAGE_SIZE].items() if k != WARNED_INPUT}
    )  # with the others, one more score than a page holds
    axe = Axe()
    # A desktop width: at 320 px axe found nothing more and could tell fewer colours apart (text scrolled out
    # of its box has no background it can see); test_pages_access.py checks the 320 px reflow itself.
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 800})
    context.clock.install()  # the session warning is then brought on without waiting for it
    page = context.new_page()
    try:
        found = {
            **scan_sign_in(page, axe, server.keys["reviewer"]),
            **scan_two_pages(page, axe, lambda: post_score(server, "Q-newer", api_records[PAGE_SIZE + 1])),
            **{name: visit(page, axe, path) for name, path in signed_in_paths(scores, warned).items()},
            **scan_session_end(page, axe),
        }
    finally:
        context.close()
    write_report(found)
    return found


def visit(page, axe: Axe, path: str) -> Scan:
    page.goto(path)
    return scan(page, axe)


def scan_sign_in(page, axe: Axe, key: str) -> dict[str, Scan]:
    """The form empty and after a refused key; then signs in with `key`, on the score list."""
    found = {"sign-in": visit(page, axe, "/review/sign-in")}
    sign_in(page, "not a key", path="/review/sign-in")
    found["sign-in, key refused"] = scan(page, axe)
    sign_in(page, key)
    return found


def scan_two_pages(page, axe: Axe, score_once_more) -> dict[str, Scan]:
    """The list's first page, then its second after `score_once_more` added a newer score."""
    found = {"scores, first of two pages": scan(page, axe)}
    score_once_more()
    with page.expect_navigation():
        page.get_by_role("link", name="Older").click()
    found["scores, second page with newer scores"] = scan(page, axe)
    return found


def scan_session_end(page, axe: Axe) -> dict[str, Scan]:
    """The warning a minute before the unused session ends (the page's clock run on), then signing out."""
    page.goto("/review/scores")
    seconds = int(page.locator("#session-warning").get_attribute("data-seconds"))
    page.clock.run_for((seconds - 60) * 1000)
    page.get_by_role("alert").filter(has_text="Your session ends at").wait_for()
    found = {"session about to end": scan(page, axe)}
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    found["sign-in, signed out"] = scan(page, axe)
    return found


def signed_in_paths(scores: list[dict], warned: dict) -> dict[str, str]:
    """The address of each state that a signed-in reviewer reaches by address alone."""
    today = datetime.now(UTC).date()
    alone = scores[-1]  # the only score of its person
    return {
        "scores, filtered": f"/review/scores?band={alone['risk']['band']}&person_id={alone['person_id']}"
        f"&model_version={alone['model']['version']}"
        f"&since={today - timedelta(days=1)}&until={today + timedelta(days=1)}",
        "scores, range ending before it starts": "/review/scores?since=2026-02-02&until=2026-02-01",
        "scores, none match": "/review/scores?person_id=nobody-at-all",
        "score": f"/review/scores/{scores[0]['id']}",
        "score with a warning": f"/review/scores/{warned['id']}",
        "model": "/review/model",
        "person": f"/review/people/{REASSESSED}",
        "not found": "/review/scores/no-such-score",
        "bad address": "/review/scores?page=first",
    }


@pytest.mark.parametrize("state", STATES)
def test_each_scan_audited_the_page_it_names(scans, state):
    """A scan of the wrong page (a redirect to sign-in) or one that ran no rule would pass unseen."""
    title, text = STATES[state]
    assert scans[state].title.startswith(title), scans[state].title
    assert text in scans[state].text, scans[state].text[:500]
    assert scans[state].passed >= ALWAYS_CHECKED, ALWAYS_CHECKED - scans[state].passed


@pytest.mark.parametrize("state", STATES)
def test_no_page_breaks_a_wcag_21_aa_rule(scans, state):
    """EN 301 549 section 9 (WCAG 2.1 A and AA) as far as axe-core can tell without a person."""
    problems = described(scans[state].violations)
    assert not problems, "\n".join(problems)
