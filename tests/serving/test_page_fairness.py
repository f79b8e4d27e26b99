"""The model page's fairness audit in a real browser: per-group intervals and the text alternatives
of the plots, each checked against the numbers GET /v1/model gives for the same version."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.serving.servers import page_request, sign_in

pytestmark = pytest.mark.slow

# Its tests read the model page alone and write nothing, so it shares one server with the other such modules
# of its test process (conftest `server`).
SHARES_SERVER = True


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


def test_each_plots_text_alternative_says_the_numbers_it_shows(model_page):
    """Checked against GET /v1/model's metrics, which the plots' numbers were not read from."""
    page, model = model_page
    alts = {
        image.get_attribute("src").rsplit("/", 1)[1]: image.get_attribute("alt")
        for image in page.locator("#plots-heading ~ .plots img").all()
    }
    assert set(alts) == {"calibration.png", "roc.png", "shap_summary.png", "domain_importance.png"}
    risk, baselines = model["metrics"]["risk"], model["baselines"]
    assert f"this model: AUC {risk['auc']:.3f}" in alts["roc.png"]
    assert f"AUC {baselines['logistic']['auc']:.3f}" in alts["roc.png"]
    incumbent = baselines["incumbent"]
    assert f"AUC {incumbent['auc']:.3f} on the {incumbent['auc_n']} of " in alts["roc.png"] or (
        f"AUC {incumbent['auc']:.3f}." in alts["roc.png"]
    )
    counts = [int(n) for n in re.findall(r"observed \(n (\d+)\)", alts["calibration.png"])]
    race = model["fairness"]["Race"]
    assert sum(counts) == sum(g["n"] for g in race["groups"].values()) + race["n_missing"]
    assert "The 15 largest of " in alts["shap_summary.png"]
    shap_inputs = re.findall(r"(\w+) (\d\.\d{3})", alts["shap_summary.png"].split("largest first: ")[1])
    assert len(shap_inputs) == 15 and {name for name, _ in shap_inputs} <= set(model["inputs"])
    sizes = [float(size) for _, size in shap_inputs]
    assert sizes == sorted(sizes, reverse=True)
    assert "largest first: " in alts["domain_importance.png"]
    for file, alt in alts.items():  # the visible caption stays short; the numbers are in the alternative
        caption = page.locator(f'img[src$="/{file}"] + figcaption').inner_text()
        assert alt.startswith(caption) and len(alt) > len(caption) + 20, file


def test_the_page_shows_intersectional_groups_with_their_intervals_and_warnings():
    from serving.routes.pages import templates

    warning = {
        "group": "BLACK / F",
        "rate": "fnr",
        "message": "BLACK / F: FNR 0.457 rests on 81 people with it",
    }
    table = {
        "threshold": 0.5,
        "groups": {
            "BLACK / F": {"n": 185, "base_rate": 0.438, "fpr": 0.2692, "fnr": 0.4568},
            "WHITE / M": {"n": 1681, "base_rate": 0.581, "fpr": 0.4709, "fnr": 0.1629},
        },
        "fpr_gap": 0.2017,
        "intervals": {
            "level": 0.95,
            "groups": {"BLACK / F": {"fpr": [0.187, 0.356]}, "WHITE / M": {"fpr": [0.434, 0.507]}},
            "fpr_gap": [0.11, 0.29],
            "fpr_gap_groups": ["WHITE / M", "BLACK / F"],
        },
        "small_groups": [warning],
    }
    html = templates.get_template("model.html").render(
        request=page_request(),
        name="reintegra",
        version="2",
        serving_version="2",
        artifacts={},
        fairness={},
        intersections={"Race x Gender": table},
    )
    text = " ".join(html.split())
    assert 'id="intersection-Race-x-Gender"' in html
    assert '<td class="num" data-rate="fpr">0.269 (0.187 to 0.356)</td>' in text
    assert (
        "Race x Gender: FPR gap 0.2017, WHITE / M minus BLACK / F, resampled within groups: 0.1100 to 0.2900."
        in text
    )
    assert f'<li data-group="BLACK / F" data-rate="fnr">{warning["message"]}</li>' in text
    assert "Intersectional groups" not in templates.get_template("model.html").render(
        request=page_request(), name="reintegra", version="2", serving_version="2", artifacts={}, fairness={}
    )


def test_each_groups_share_of_each_band_is_shown(model_page):
    page, model = model_page
    race = model["fairness"]["Race"]
    for band, by_group in race["band_shares"].items():
        for group, share in by_group.items():
            cell = page.locator(f'#bands-Race tr[data-band="{band}"][data-group="{group}"] td[data-share]')
            assert cell.inner_text() == f"{share:.3f}", (band, group)
