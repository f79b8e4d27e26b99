"""A model trained on another layout (docs/examples/county_probation.yaml) served end to end: the API,
its schema and the reviewer pages follow that spec, not the built-in Georgia one."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from features.spec import DatasetSpec, load_spec
from features.synth_generic import generate_cohort
from tests.serving.servers import Registry, Server, start_server
from tests.tracking import tracking_store

pytestmark = pytest.mark.slow

DOCS_SPEC = Path(__file__).resolve().parents[2] / "docs" / "examples" / "county_probation.yaml"
NAME = "county"
ROWS = 2000
# A person as a county case-management system sends them: every release-time input of the spec.
PERSON = {
    "age": 31,
    "lsi_total": 24,
    "prior_convictions": "2",
    "prior_custody": True,
    "offence_type": "property",
    "employment_status": "unemployed",
    "fixed_address": True,
    "peers_offending": False,
    "ethnicity": "group_b",
    "sex": "female",
}
GEORGIA_NAMES = ("Race", "Gender", "Age_at_Release", "Supervision_Risk_Score_First", "very_high", "treatment")


@pytest.fixture(scope="module")
def county() -> DatasetSpec:
    return load_spec(DOCS_SPEC)


@pytest.fixture(scope="module")
def county_registry(county, tmp_path_factory) -> Iterator[Registry]:
    from training.promote import promote
    from training.train import train

    folder = tmp_path_factory.mktemp("county-registry")
    data = folder / "county.csv"
    generate_cohort(county, ROWS, seed=4).to_csv(data, index=False)
    with tracking_store(f"sqlite:///{folder}/mlflow.db") as uri:
        result = train(county, data, name=NAME, seed=1)
        promote(NAME, result.model_version, force=True, reason="small synthetic sample")
        yield Registry(uri, result.model_version, folder, data)


@pytest.fixture(scope="module")
def server(county_registry, tmp_path_factory) -> Iterator[Server]:
    running = start_server(
        county_registry, tmp_path_factory.mktemp("county-server"), extra_env={"REINTEGRA_MODEL_NAME": NAME}
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def scores(server) -> list[dict]:
    """Scores of varied people, one of them assessed twice: every level of the needs' release sources."""
    people = [
        {**PERSON, "employment_status": status, "fixed_address": fixed, "age": 20 + 9 * i}
        for i, (status, fixed) in enumerate(
            [("unemployed", False), ("employed", True), ("student", False), ("retired", True)]
        )
    ]
    with server.client("scorer") as client:
        created = [
            client.post("/v1/scores", json={"person_id": "C-1", "assessment_id": "first", "record": PERSON}),
            client.post(
                "/v1/scores", json={"person_id": "C-1", "assessment_id": "second", "record": people[0]}
            ),
            *(
                client.post("/v1/scores", json={"person_id": f"C-{i + 2}", "record": p})
                for i, p in enumerate(people)
            ),
        ]
    assert [r.status_code for r in created] == [201] * len(created), [r.text for r in created]
    return [r.json() for r in created]


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_the_record_schema_and_its_example_are_this_specs(server, county):
    with server.client() as client:
        schema = client.get("/openapi.json").json()
    record = schema["components"]["schemas"]["Record"]
    assert list(record["properties"]) == [*county.inputs(), *county.protected]
    assert record["additionalProperties"] is False
    field = {name: prop["anyOf"][0] for name, prop in record["properties"].items()}
    assert field["age"] == {"type": "number", "minimum": 16, "maximum": 100}
    assert field["prior_convictions"]["enum"] == ["0", "1", "2", "3", "4", "5 or more"]
    assert field["ethnicity"]["enum"] == ["group_a", "group_b", "group_c"]
    assert field["fixed_address"] == {"type": "boolean"}
    assert not any(
        name in str(schema) for name in ("Race", "Age_at_Release", "Supervision_Risk_Score", "prison")
    )
    assert county.description in schema["info"]["description"]
    [example] = record["examples"]
    [[body]] = schema["components"]["schemas"]["BatchScoreRequest"]["properties"]["items"]["examples"]
    assert set(example) == set(county.inputs()) and body["record"] == example
    with server.client("scorer") as client:
        assert client.post("/v1/scores", json={"record": example}).status_code == 201
        assert client.post("/v1/scores:batch", json={"items": [body]}).json()["scored"] == 1
        assert client.get("/docs").status_code == 200


def test_a_score_has_this_specs_needs_bands_domains_and_horizon(scores, county):
    domains = set(county.domains().values())
    for score in scores:
        risk = score["risk"]
        assert risk["horizon_years"] == 2
        assert risk["band"] == county.risk_bands.band(risk["probability"])
        assert risk["band"] in ("low", "medium", "high")
        assert [n["need"] for n in score["needs"]] == ["employment", "housing", "substance_use"]
        for need in score["needs"]:
            assert need["interventions"] == county.need(need["need"]).interventions
        explained = {"risk": score["explanation"]["risk"], **score["explanation"]["needs"]}
        assert set(explained) == {"risk", "employment", "housing", "substance_use"}
        for output in explained.values():
            assert {c["input"] for c in output["contributions"]} <= set(county.inputs())
            assert {c["domain"] for c in output["contributions"]} <= domains
            assert set(output["by_domain"]) <= domains
        # A need's own sources are never inputs of its model.
        assert "employment_status" not in {c["input"] for c in explained["employment"]["contributions"]}
        assert "fixed_address" not in {c["input"] for c in explained["housing"]["contributions"]}


def test_every_explanation_adds_up_to_its_probability(scores):
    for score in scores:
        probabilities = {"risk": score["risk"]["probability"]} | {
            n["need"]: n["probability"] for n in score["needs"]
        }
        explained = {"risk": score["explanation"]["risk"], **score["explanation"]["needs"]}
        for output, e in explained.items():
            total = e["base_value"] + math.fsum(c["contribution"] for c in e["contributions"])
            assert total == pytest.approx(e["log_odds"], abs=1e-6), output
            assert e["log_odds"] == pytest.approx(_logit(probabilities[output]), abs=1e-6), output


def test_a_need_the_records_release_time_source_shows_is_observed(scores):
    """Housing holds when there is no fixed address (known at release) or after two moves (known only
    later): a record without a fixed address shows the need whatever the moves; one with an address
    cannot say. Employment's only source is known at release."""
    for score in scores:
        given = {c["input"]: c["value"] for c in score["explanation"]["risk"]["contributions"]}
        needs = {n["need"]: n for n in score["needs"]}
        housing = needs["housing"]
        assert housing["observed"] is (True if given["fixed_address"] is False else None), given
        if housing["observed"]:
            assert housing["flagged"], "the record outranks the model"
        assert needs["employment"]["observed"] is (given["employment_status"] == "unemployed")
        assert needs["employment"]["flagged"] is needs["employment"]["observed"]
        assert needs["substance_use"]["observed"] is None


def test_invalid_records_name_the_field_and_what_this_spec_allows(server):
    cases = {
        "offence_type": ({"offence_type": "fraud"}, "'violent', 'property', 'drug', 'motoring' or 'other'"),
        "prior_convictions": ({"prior_convictions": "7"}, "'4' or '5 or more'"),
        "age": ({"age": 12}, "greater than or equal to 16"),
        "lsi_total": ({"lsi_total": 55}, "less than or equal to 54"),
        "fixed_address": ({"fixed_address": "Y"}, "is not yes or no"),
        "ethnicity": ({"ethnicity": "WHITE"}, "'group_a', 'group_b' or 'group_c'"),
        "moves_6m": ({"moves_6m": "1"}, "moves_6m is recorded during supervision, after release"),
        "reconvicted_2y": ({"reconvicted_2y": "No"}, "is the outcome the model predicts"),
        "case_number": ({"case_number": "17"}, "send it as person_id beside the record"),
        "Race": ({"Race": "WHITE"}, "unknown field"),
    }
    with server.client("scorer") as client:
        for name, (change, allowed) in cases.items():
            response = client.post("/v1/scores", json={"record": {**PERSON, **change}})
            assert response.status_code == 422, name
            assert response.headers["content-type"] == "application/problem+json"
            [error] = response.json()["errors"]
            assert error["field"] == f"record.{name}" and allowed in error["message"], error
        only_protected = client.post("/v1/scores", json={"record": {"ethnicity": "group_a", "sex": "male"}})
        assert only_protected.status_code == 422
        assert "none of the model's inputs" in only_protected.json()["errors"][0]["message"]


def test_missing_inputs_and_protected_attributes(server):
    """Every input may be missing (the optional peers_offending too); protected attributes are stored
    for audits and change nothing."""
    without = {k: v for k, v in PERSON.items() if k not in ("peers_offending", "lsi_total", "sex")}
    other_group = {**PERSON, "ethnicity": "group_a", "sex": "male"}
    with server.client("scorer") as client:
        partial, first, second = (
            client.post("/v1/scores", json={"record": r}).json() for r in (without, PERSON, other_group)
        )
    values = {c["input"]: c["value"] for c in partial["explanation"]["risk"]["contributions"]}
    assert values["peers_offending"] is None and values["lsi_total"] is None
    assert first["risk"] == second["risk"] and first["needs"] == second["needs"]
    with server.client("reviewer") as client:
        stored = client.get(f"/v1/scores/{second['id']}").json()
    assert stored["record"]["ethnicity"] == "group_a" and stored["record"]["sex"] == "male"
    assert {k: v for k, v in stored.items() if k not in ("record", "key_id")} == second


def test_batch_read_and_search(server, scores):
    items = [
        {"record": PERSON},
        {"record": {**PERSON, "offence_type": "fraud"}},
        {"record": {**PERSON, "age": 40}},
    ]
    with server.client("scorer") as client:
        batch = client.post("/v1/scores:batch", json={"items": items}).json()
    assert (batch["scored"], batch["failed"]) == (2, 1)
    assert [i["status"] for i in batch["items"]] == [201, 422, 201]
    assert batch["items"][1]["errors"][0]["field"] == "record.offence_type"
    with server.client("reviewer") as client:
        read = client.get(f"/v1/scores/{batch['items'][0]['score']['id']}").json()
        assert read["record"] == PERSON and read["model"]["name"] == NAME
        person = client.get("/v1/scores", params={"person_id": "C-1"}).json()
        assert [s["assessment_id"] for s in person["items"]] == ["second", "first"]
        band = scores[0]["risk"]["band"]
        found = client.get("/v1/scores", params={"band": band, "limit": 500}).json()
        assert found["total"] >= 1 and {s["risk_band"] for s in found["items"]} == {band}
        refused = client.get("/v1/scores", params={"band": "very_high"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["message"].endswith("allowed: low, medium, high")


def test_the_model_and_its_metrics_are_this_specs(server, county, scores):
    with server.client("reviewer") as client:
        model = client.get("/v1/model").json()
        metrics = client.get("/metrics").text
    assert (model["name"], model["spec"]) == (NAME, "county_probation")
    assert model["inputs"] == county.inputs()
    assert set(model["metrics"]["needs"]) == {"employment", "housing", "substance_use"}
    assert set(model["fairness"]) == {"ethnicity", "sex"}
    crossed = model["intersections"]["ethnicity x sex"]  # two protected attributes: one pair
    assert set(model["intersections"]) == {"ethnicity x sex"} and crossed["groups"]
    assert all(" / " in group for group in crossed["groups"]) and "intervals" in crossed
    assert set(model["fairness"]["ethnicity"]["bands"]) == {"low", "medium", "high"}
    assert set(model["baselines"]) == {"logistic", "incumbent"}
    assert f'reintegra_model_version{{name="{NAME}",version=' in metrics
    counted = set(re.findall(r'reintegra_scores_total\{band="([^"]+)"\}', metrics))
    assert counted and counted <= {"low", "medium", "high"}


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_reviewer_pages_follow_this_spec(server, scores):
    score = scores[2]  # no fixed address: housing is shown by the record
    with server.page_client() as pages:
        listing = pages.get("/review/scores")
        page = pages.get(f"/review/scores/{score['id']}")
        model = pages.get("/review/model", follow_redirects=True)
        person = pages.get("/review/people/C-1")
    assert [r.status_code for r in (listing, page, model, person)] == [200] * 4
    assert 'id="intersection-ethnicity-x-sex"' in model.text  # the audit by both attributes at once
    assert re.findall(r'<option value="([^"]+)"[^>]*>\1</option>', listing.text)[:3] == [
        "low",
        "medium",
        "high",
    ]
    assert score["id"] in listing.text

    risk = score["explanation"]["risk"]
    waterfall = re.search(r'<svg id="waterfall".*?</svg>', page.text, re.S).group(0)
    steps = [float(v) for v in re.findall(r'data-contribution="([^"]+)"', waterfall)]
    assert risk["base_value"] + math.fsum(steps) == pytest.approx(risk["log_odds"], abs=1e-9)
    domains = re.search(r'<svg id="domains".*?</svg>', page.text, re.S).group(0)
    drawn = sorted(float(v) for v in re.findall(r'data-contribution="([^"]+)"', domains))
    assert drawn == pytest.approx(sorted(risk["by_domain"].values()), abs=1e-12)
    text = _text(page.text)
    assert (
        f"Probability {score['risk']['probability']:.3f} within 2.0 years: band {score['risk']['band']}"
        in text
    )
    for need in score["needs"]:
        assert need["need"] in text and ", ".join(need["interventions"]) in text
    assert "Why housing is flagged" in text
    assert "The record shows it: No fixed address, or two or more moves in the first six months." in text

    shown = _text(model.text)
    assert "Model county version" in shown and "baseline: incumbent: LSI-R total score" in shown
    assert 'id="bands-ethnicity"' in model.text and 'id="bands-sex"' in model.text
    assert not any(name in shown for name in GEORGIA_NAMES)
    assert re.findall(r'data-need="([^"]+)"', person.text) == ["employment", "housing", "substance_use"]


def test_drift_compares_this_specs_inputs_groups_bands_and_needs(server, county, scores):
    """Last in the module: its 100 scores (drift compares no fewer) would push the others off the list."""
    people = [{**PERSON, "age": 18 + i % 60, "sex": ("female", "male")[i % 2]} for i in range(100)]
    with server.client("scorer") as client:
        batch = client.post("/v1/scores:batch", json={"items": [{"record": p} for p in people]})
    assert batch.status_code == 200 and batch.json()["failed"] == 0, batch.text[:500]
    with server.client("reviewer") as client:
        drift = client.get("/v1/model/drift").json()
    assert [c["name"] for c in drift["inputs"]] == county.inputs()
    assert [c["name"] for c in drift["protected"]] == county.protected
    age = next(
        c for c in drift["inputs"] if c["name"] == "age"
    )  # a number: binned at the test part's deciles
    assert age["kind"] == "numeric" and age["bins"][0]["bin"].startswith("< ") and len(age["bins"]) > 2
    assert drift["window"]["scores"] >= len(scores) + 100 and drift["message"] is None
    assert [b["bin"] for b in drift["outputs"]["bands"]] == ["low", "medium", "high"]
    assert [n["need"] for n in drift["outputs"]["need_flag_rates"]] == [n.name for n in county.needs]
