"""The reviewer pages for a keyboard and screen-reader user on a phone or a 200% zoomed screen
(WCAG 2.2 AA): a real server and headless Debian Chromium, as in test_pages.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.serving.servers import REASSESSED, sign_in

pytestmark = pytest.mark.slow

NARROW = 320  # CSS px: a 1280 px screen at 400%, or the reflow width of WCAG 1.4.10


@pytest.fixture(scope="module")
def narrow(browser, server, scores, api_records) -> Iterator:
    """A signed-in page 320 CSS px wide, and the paths of every kind of page; one score warns, naming
    the longest input (its name, 49 letters without a space, is wider than the screen)."""
    left_out = "Prior_Conviction_Episodes_DomesticViolenceCharges"
    record = {name: value for name, value in api_records[20].items() if name != left_out}
    with server.client("scorer") as client:
        warned = client.post("/v1/scores", json={"person_id": "P-narrow", "record": record}).json()
    assert left_out in warned["warnings"][0]
    context = browser.new_context(base_url=server.base_url, viewport={"width": NARROW, "height": 800})
    page = context.new_page()
    sign_in(page, server.keys["reviewer"])
    paths = {
        "scores": "/review/scores",
        "score": f"/review/scores/{scores[0]['id']}",
        "score with a warning": f"/review/scores/{warned['id']}",
        "person": f"/review/people/{REASSESSED}",
        "model": "/review/model",
    }
    yield page, paths
    context.close()


def test_no_page_scrolls_sideways_at_320_px(narrow):
    """WCAG 1.4.10: only a table or chart may scroll, in its own box; the page itself never does."""
    page, paths = narrow
    widths = {}
    for name, path in paths.items():
        page.goto(path)
        widths[name] = page.evaluate("() => document.documentElement.scrollWidth")
    smallest_need_text = page.evaluate(  # the person page's small charts keep their text size
        """() => Math.min(...[...document.querySelectorAll(".need-trend svg")].flatMap(svg =>
            [...svg.querySelectorAll("text")].map(text => parseFloat(getComputedStyle(text).fontSize)
                * svg.getBoundingClientRect().width / svg.viewBox.baseVal.width)))"""
    )
    assert all(width <= NARROW for width in widths.values()), widths
    assert smallest_need_text >= 9, smallest_need_text


def test_table_cells_at_320_px_keep_their_words_whole(narrow):
    """WCAG 1.4.10: a table too wide for the screen scrolls in its box; it is never squeezed until
    a header reads one letter a line ("A", "s", "s", ...) or a person id breaks at every letter."""
    page, paths = narrow
    broken = {}
    for name, path in paths.items():
        page.goto(path)
        broken[name] = page.evaluate(
            """() => [...document.querySelectorAll("main table :is(th, td, td a)")]
                .filter(cell => /^[^\\s-]+$/.test(cell.textContent.trim()))  // may wrap only at a hyphen
                .filter(cell => {
                    const range = document.createRange();
                    range.selectNodeContents(cell);
                    const tops = [...range.getClientRects()].map(box => box.top);
                    return Math.max(...tops) - Math.min(...tops) > 5;  // a band's border is 1 px higher
                })
                .map(cell => cell.textContent.trim())"""
        )
    assert not any(broken.values()), broken


def test_every_box_that_scrolls_sideways_takes_the_keyboard_focus_and_is_named(narrow):
    """WCAG 2.1.1: a table or chart that scrolls in its own box holds nothing else to focus, so
    without tabindex="0" a keyboard user cannot scroll it (Safari, or Chromium before 130, never
    focuses it on its own); a screen reader then names the box it entered by its caption."""
    page, paths = narrow
    unreachable = {}
    for name, path in paths.items():
        page.goto(path)
        unreachable[name] = page.evaluate(
            """() => [...document.querySelectorAll("main *")]
                .filter(box => ["auto", "scroll"].includes(getComputedStyle(box).overflowX)
                    && box.scrollWidth > box.clientWidth)
                .filter(box => {
                    const named = (box.getAttribute("aria-labelledby") || "").split(" ").filter(Boolean)
                        .map(id => document.getElementById(id)?.textContent.trim() ?? "").join(" ").trim()
                        || (box.getAttribute("aria-label") || "").trim();
                    return box.getAttribute("tabindex") !== "0" || !named;
                })
                .map(box => box.querySelector("caption, figcaption, h1, h2, h3")?.textContent.trim()
                    ?? box.outerHTML.slice(0, 80))"""
        )
    assert not any(unreachable.values()), unreachable


def test_no_two_regions_of_a_page_share_a_name(narrow):
    """A screen reader's list of regions is only a way round the page if each name is its own: the
    model card's two tables under its heading 'Race' were both 'Race'."""
    page, paths = narrow
    repeated = {}
    for name, path in paths.items():
        page.goto(path)
        names = [
            region.get_attribute("aria-label")
            or " ".join(
                page.locator(f"#{part}").text_content().strip()
                for part in region.get_attribute("aria-labelledby").split()
            )
            for region in page.locator("[role=region]").all()
        ]
        repeated[name] = sorted({n for n in names if names.count(n) > 1})
    assert not any(repeated.values()), repeated


def test_a_range_that_ends_before_it_starts_marks_both_its_dates(narrow):
    """WCAG 3.3.1: the error names From and To, so a screen reader on either field must read it; the
    To field was neither invalid nor described."""
    page, paths = narrow
    page.goto(f"{paths['scores']}?since=2026-02-02&until=2026-02-01")
    for label in ("From (UTC)", "To (UTC, inclusive)"):
        field = page.get_by_label(label)
        assert field.get_attribute("aria-invalid") == "true", label
        described = page.locator(f"#{field.get_attribute('aria-describedby')}")
        assert "is after To (2026-02-01)" in described.text_content(), label


def test_the_person_pages_headings_lead_to_the_risk_chart_and_the_table(narrow):
    """WCAG 1.3.1, 2.4.6: a screen reader user moving by heading reached no heading for the risk chart,
    and the table of every assessment's risk and needs sat under "Needs over time"."""
    page, paths = narrow
    page.goto(paths["person"])
    following = page.evaluate(
        """() => Object.fromEntries(["#trend", "#person-scores"].map(selector => {
            const headings = [...document.querySelectorAll("main h2")].filter(heading =>
                heading.compareDocumentPosition(document.querySelector(selector))
                & Node.DOCUMENT_POSITION_FOLLOWING);
            return [selector, headings.at(-1)?.textContent.trim()];
        }))"""
    )
    assert following == {"#trend": "Risk over time", "#person-scores": "Every assessment"}


def test_a_page_title_says_which_page_and_any_error(browser, server, scores):
    """WCAG 2.4.2: the title is what a screen reader reads first on each load. A refused key left it
    'Sign in', as before the attempt, and a filter error left the list 'Scores'; every score was
    'Score' and eight hex digits."""
    context = browser.new_context(base_url=server.base_url)
    page = context.new_page()
    try:
        page.goto("/review/sign-in")
        page.get_by_label("API key").fill("not a key")
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
        refused = page.title()
        sign_in(page, server.keys["reviewer"])
        titles = {}
        for name, path in {
            "bad band": "/review/scores?band=nope",
            "score": f"/review/scores/{scores[0]['id']}",
        }.items():
            page.goto(path)
            titles[name] = page.title()
    finally:
        context.close()
    assert refused.startswith("Error: Sign in"), refused
    assert titles["bad band"].startswith("Error: Scores"), titles
    assert titles["score"].startswith(f"Score of person {REASSESSED} at "), titles


def test_the_risk_chart_says_what_its_filled_points_mean(narrow, scores):
    """WCAG 1.4.1, 1.3.1: an assessment in a high band is drawn filled red, which nothing on the
    page explained (the need charts say theirs are flagged)."""
    page, _ = narrow
    high = next(s for s in scores if s["risk"]["band"] in ("high", "very_high"))
    page.goto(f"/review/people/{high['person_id']}")
    assert page.locator(f"#trend circle.band-{high['risk']['band']}.filled").count() == 1
    assert page.locator("#trend circle.filled").count() == 1, "only the assessment in a raised band"
    caption = page.locator("#trend-caption").text_content()
    assert f"filled points are in band {high['risk']['band']}" in caption, caption
