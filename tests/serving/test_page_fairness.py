"""The model page's fairness audit in a real browser: per-group intervals and the text alternatives
of the plots, each checked against the numbers GET /v1/model gives for the same version."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.serving.test_pages import sign_in

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_page(browser, server) -> Iterator:
    """The serving version's page, signed in, and its audit as the API gives it."""
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    sign_in(page, server.keys["reviewer"], "/review/model")
    with server.client("reviewer") as client:
        model = client.get("/v1/model").json()
    yield page, model
    context.close()


def test_each_groups_intervals_are_shown_beside_the_audit(model_page):
    page, model = model_page
    race = model["fairness"]["Race"]
    intervals = race["intervals"]
    assert intervals["resamples"] == 1000
    for group in race["groups"]:
        for rate in ("base_rate", "auc", "fpr", "fnr"):
            low, high = intervals["groups"][group][rate]
            cell = page.locator(f'#intervals-Race tr[data-group="{group}"] td[data-rate="{rate}"]')
            assert cell.inner_text() == f"{low:.3f} to {high:.3f}", (group, rate)
    gap = page.locator('#fairness-heading ~ p.gap-interval[data-gap="fpr"]').inner_text()
    high, low = intervals["fpr_gap_groups"]
    bounds = intervals["fpr_gap"]
    assert (
        f"FPR of {high} minus FPR of {low}, resampled within groups: {bounds[0]:.4f} to {bounds[1]:.4f}"
        in gap
    )
    caption = page.locator("#intervals-Race-caption").inner_text()
    assert "95% bootstrap intervals, 1000 resamples, each group resampled within itself" in caption


def test_rates_resting_on_few_people_are_warned_of(model_page):
    page, model = model_page
    warnings = model["fairness"]["Race"]["small_groups"]
    assert warnings, "the synthetic test part's groups are too small for +-0.05"
    shown = page.locator("#small-groups-Race li").all_inner_texts()
    assert shown == [warning["message"] for warning in warnings]
