"""Drift of the served records and scores from the test part's reference profile: the API and the page."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from features.spec import parse_spec
from models.registry import REFERENCE_PROFILE
from serving import drift
from serving.audit import AuditStore, ScoreFilter, utc_now
from serving.database import make_engine, migrate
from serving.drift import model_drift
from serving.model_store import ServingModel, load_version
from tests.serving.scenarios import (
    a_windows_last_committed_score_moves_whatever_its_time,
    the_newest_scores_are_read_and_no_more,
)
from tests.serving.servers import TEST_SEAL, api_record, score_row, sign_in

pytestmark = pytest.mark.slow

PROBLEM = "application/problem+json"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
SHIFTED = "Prior_Arrest_Episodes_Violent"  # every shifted record says "3 or more"
BATCH = 250


def arrests_by_age(records: list[dict], spec) -> list[dict]:
    """The same records with their ages handed out again, the youngest to the most arrested: every column
    as drawn, but not the arrests per age band that the model reads."""

    def arrests(record: dict) -> int:
        names = ("Prior_Arrest_Episodes_Felony", "Prior_Arrest_Episodes_Misd")
        return sum(spec.column(name).order.index(record[name]) for name in names)

    ages = sorted((r["Age_at_Release"] for r in records), key=spec.column("Age_at_Release").order.index)
    most_arrested = sorted(range(len(records)), key=lambda i: -arrests(records[i]))
    paired = [dict(record) for record in records]
    for age, i in zip(ages, most_arrested, strict=True):
        paired[i]["Age_at_Release"] = age
    return paired


@pytest.fixture(scope="module")
def windows(server, training_raw, spec) -> dict:
    """1,000 records the model never saw, scored with their ages re-paired to their arrests, then as drawn,
    then with one input shifted; returns when each window began."""
    records = [api_record(raw, spec) for raw in training_raw.iloc[3000:4000].to_dict("records")]
    shifted = [{**record, SHIFTED: "3 or more"} for record in records]
    began = {}
    with server.client("scorer") as client:
        for name, part in (
            ("paired", arrests_by_age(records, spec)),
            ("base", records),
            ("shifted", shifted),
        ):
            for start in range(0, len(part), BATCH):
                body = {"items": [{"record": r} for r in part[start : start + BATCH]]}
                answer = client.post("/v1/scores:batch", json=body)
                assert answer.status_code == 200 and answer.json()["failed"] == 0, answer.text[:500]
                began.setdefault(name, answer.json()["items"][0]["score"]["created_at"])
    return began


def by_name(columns: list[dict]) -> dict[str, dict]:
    return {column["name"]: column for column in columns}


def test_a_window_shifted_on_one_input_drifts_on_that_input_alone(server, windows, spec):
    with server.client("reviewer") as client:
        before = client.get("/v1/model/drift", params={"since": windows["base"], "until": windows["shifted"]})
        after = client.get("/v1/model/drift", params={"since": windows["shifted"]})
    assert before.status_code == 200 and after.status_code == 200, before.text
    before, after = before.json(), after.json()
    assert before["window"]["scores"] == after["window"]["scores"] == 1000
    assert not after["window"]["capped"] and after["window"]["limit"] == drift.WINDOW_LIMIT
    assert [c["name"] for c in after["inputs"]] == spec.inputs() + [d.name for d in spec.derived]
    assert max(c["psi"] for c in before["inputs"]) < 0.1, "the records as drawn drift nowhere"
    shifted = by_name(after["inputs"])
    assert shifted[SHIFTED]["level"] == "major" and shifted[SHIFTED]["psi"] > 1
    assert {c["name"]: c["level"] for c in after["inputs"] if c["level"] != "none"} == {SHIFTED: "major"}
    assert shifted[SHIFTED]["bins"][-1]["bin"] == "3 or more" and shifted[SHIFTED]["bins"][-1]["window"] == 1
    assert [c["name"] for c in after["protected"]] == list(spec.protected)
    assert after["protected"][0]["level"] == "none", "the same people: the same groups"
    # More violent arrests raise the risk: the outputs move with the input.
    assert after["outputs"]["mean_risk"]["change"] > before["outputs"]["mean_risk"]["change"]
    assert [b["bin"] for b in after["outputs"]["bands"]] == spec.risk_bands.labels
    assert sum(b["window"] for b in after["outputs"]["bands"]) == pytest.approx(1)
    assert [n["need"] for n in after["outputs"]["need_flag_rates"]] == [n.name for n in spec.needs]


def test_derived_inputs_drift_when_their_columns_are_re_paired(server, windows, spec):
    """Ages handed to other people leave every column's distribution as drawn; the arrests per age band,
    the risk model's largest input, were not monitored at all."""
    with server.client("reviewer") as client:
        paired = client.get("/v1/model/drift", params={"since": windows["paired"], "until": windows["base"]})
        drawn = client.get("/v1/model/drift", params={"since": windows["base"], "until": windows["shifted"]})
    paired, drawn = by_name(paired.json()["inputs"]), by_name(drawn.json()["inputs"])
    assert all(paired[name]["psi"] == pytest.approx(drawn[name]["psi"]) for name in spec.inputs())
    assert drawn["Arrests_per_Age_Band"]["level"] == "none"
    assert paired["Arrests_per_Age_Band"]["level"] == "major", paired["Arrests_per_Age_Band"]["psi"]
    assert (
        paired["Arrests_per_Age_Band"]["kind"] == "numeric"
        and paired["Arrests_per_Age_Band"]["values"] == 1000
    )


def test_the_model_page_shows_drift_in_tables_with_captions(server, windows, browser):
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    sign_in(page, server.keys["reviewer"], "/review/model")
    section = page.get_by_role("region", name="Drift since training")
    inputs = section.get_by_role("table", name="Model inputs: PSI and missing share, largest PSI first")
    first = inputs.locator("tbody tr").first
    assert first.get_by_role("rowheader").inner_text() == SHIFTED, "the largest PSI comes first"
    assert first.locator("[data-level]").inner_text() == "major"
    assert first.locator("td").all_inner_texts()[2] == "2000", "each value given in every record"
    assert section.get_by_role("table", name=f"{SHIFTED}: share of each bin at training and now").is_visible()
    groups = section.get_by_role("table", name="Race: share of each group at training and now", exact=False)
    assert groups.get_by_role("rowheader").all_inner_texts() == ["BLACK", "WHITE"]
    outputs = section.get_by_role("table", name="Outputs at training and now", exact=False)
    assert "mean risk probability" in outputs.get_by_role("rowheader").all_inner_texts()
    assert "2000 scores" in section.inner_text() and "never model inputs" in section.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    section.screenshot(path=str(SCREENSHOTS / "reviewer-model-drift.png"))
    context.close()


def test_drift_is_for_reviewers(server):
    with server.client() as anonymous, server.client("scorer") as scorer:
        assert anonymous.get("/v1/model/drift").status_code == 401
        refused = scorer.get("/v1/model/drift")
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert "reviewer" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "query.until"),
        ({"since": "2026-11-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "query.until"),
        ({"since": "yesterday"}, "query.since"),
        ({"since": "20261124"}, "query.since"),
        ({"until": "1764000000"}, "query.until"),
        ({"from": "2026-11-01"}, "query.from"),
    ],
)
def test_a_bad_window_is_a_422_naming_the_parameter(server, params, field):
    with server.client("reviewer") as client:
        answer = client.get("/v1/model/drift", params=params)
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM
    assert [e["field"] for e in answer.json()["errors"]] == [field]


def test_openapi_documents_drift_with_an_example_in_the_specs_names(server, spec):
    with server.client() as client:
        document = client.get("/openapi.json").json()
    operation = document["paths"]["/v1/model/drift"]["get"]
    assert operation["operationId"] == "read_model_drift"
    assert {"401", "403", "422"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} == {"since", "until"}
    example = operation["responses"]["200"]["content"]["application/json"]["example"]
    assert example["inputs"][0]["name"] in spec.inputs() and example["inputs"][0]["level"] == "major"
    assert [c["name"] for c in example["protected"]] == spec.protected
    assert [b["bin"] for b in example["outputs"]["bands"]] == spec.risk_bands.labels


@pytest.fixture
def store(tmp_path) -> AuditStore:
    engine = make_engine(f"sqlite:///{tmp_path}/audit.db")
    migrate(engine)
    return AuditStore(engine, TEST_SEAL)


def test_a_window_reads_only_its_newest_scores(store):
    the_newest_scores_are_read_and_no_more(store)


def test_a_windows_last_committed_score_moves_whatever_its_time(store):
    a_windows_last_committed_score_moves_whatever_its_time(store)


@pytest.fixture(scope="module")
def served_model(registry) -> ServingModel:
    return load_version("reintegra", registry.version)


def test_a_version_without_a_reference_profile_says_so(served_model, store):
    """A model trained before profiles were logged, or whose profile was deleted from its run, keeps
    serving; drift names the file its run lacks and says there is nothing to compare."""
    assert REFERENCE_PROFILE in served_model.documents
    older = replace(served_model, version="1", documents={})
    store.record([score_row("P-1", record={"Gender": "M"})])
    report = model_drift(older, store, None, None)
    assert report["message"].startswith(
        "no reference profile: version 1's training run lacks reference_profile.json (trained before"
    )
    assert report["window"]["scores"] == 1 and report["inputs"] == [] and report["outputs"] is None


def test_only_the_newest_limit_of_a_window_is_read_and_it_says_so(served_model, store, monkeypatch):
    at = utc_now()
    rows = [score_row(f"P-{i}", created_at=at - timedelta(minutes=i), record={}) for i in range(5)]
    store.record(rows)
    monkeypatch.setattr(drift, "WINDOW_LIMIT", 3)
    window = model_drift(replace(served_model, version="1", documents={}), store, None, None)["window"]
    assert (window["scores"], window["capped"], window["newest"], window["oldest"]) == (
        3,
        True,
        rows[0].created_at,
        rows[2].created_at,
    )
    assert store.newest_served(ScoreFilter(model_name="reintegra", person_id="P-4"), 3)[0].record == {}


def test_a_window_is_computed_again_only_when_a_score_joins_it(served_model, store):
    """A reviewer reloading the model page had the window's 2,000 stored answers read and compared again
    (0.46 s); a score joining the window, even one stamped before its newest (a slower worker's commit),
    is in the next answer, which is the one computed without the cache."""
    at = utc_now()
    version = {"model_version": served_model.version, "record": {}}
    store.record([score_row(f"P-{i}", created_at=at - timedelta(minutes=i), **version) for i in range(3)])
    reads = []

    def count(connection, cursor, statement, *args) -> None:
        if "scores.record" in statement:
            reads.append(statement)

    cache = drift.DriftCache()
    event.listen(store.engine, "before_cursor_execute", count)
    try:
        first = cache.report(served_model, store, None, None)
        again = cache.report(served_model, store, None, None)
        assert (len(reads), again) == (1, first), "the unchanged window is not read again"
        since = cache.report(served_model, store, at - timedelta(minutes=1), None)
        assert since["window"]["scores"] == 2 and len(reads) == 2, "each window is a report of its own"
        store.record([score_row("P-late", created_at=at - timedelta(seconds=30), **version)])
        after = cache.report(served_model, store, None, None)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert after["window"]["scores"] == first["window"]["scores"] + 1 == 4
    assert after == model_drift(served_model, store, None, None)
    assert cache.report(served_model, store, at - timedelta(minutes=1), None)["window"]["scores"] == 3


def test_a_window_of_fewer_than_100_scores_compares_nothing(served_model, store):
    """A window around one score showed that person's every input, protected group and exact risk as shares
    of 1.0, a read of their record that score_reads never held; from 100 scores it is compared."""
    at = utc_now()
    version = {"model_version": served_model.version, "record": {"Gender": "F", "Race": "BLACK"}}
    rows = [
        score_row(f"P-{i}", created_at=at - timedelta(seconds=i), **version) for i in range(drift.MIN_SCORES)
    ]
    store.record(rows)
    one = model_drift(served_model, store, at, None)
    assert one["window"]["scores"] == 1 and one["reference_rows"] > 0
    assert (one["inputs"], one["protected"], one["outputs"]) == ([], [], None)
    assert one["message"] == (
        f"the window holds 1 score of version {served_model.version}; drift is compared over 100 or more, "
        "since the shares of fewer would show a few people's records, and their PSI would be sampling noise"
    )
    every = model_drift(served_model, store, None, None)
    assert every["window"]["scores"] == 100 and every["message"] is None
    [race] = every["protected"]
    assert {b["bin"]: b["window"] for b in race["bins"]}["BLACK"] == 1.0


def test_the_cache_keeps_the_windows_asked_for_last_and_drops_the_oldest(served_model, store):
    """Each `since` a reviewer types is a window of its own: kept without bound, they would fill a worker's
    memory. One window past CACHED_WINDOWS drops the one asked for longest ago, which is then read again."""
    at = utc_now()
    store.record([score_row("P-1", created_at=at, model_version=served_model.version, record={})])
    reads = []

    def count(connection, cursor, statement, *args) -> None:
        if "scores.record" in statement:
            reads.append(statement)

    cache = drift.DriftCache()
    windows = [at - timedelta(minutes=i) for i in range(drift.CACHED_WINDOWS + 1)]
    event.listen(store.engine, "before_cursor_execute", count)
    try:
        for since in windows:
            cache.report(served_model, store, since, None)
        cache.report(served_model, store, windows[-1], None)
        cache.report(served_model, store, windows[1], None)
        kept = len(reads)
        cache.report(served_model, store, windows[0], None)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert kept == len(windows), "the windows still kept are not read again"
    assert len(reads) == kept + 1, "the window asked for longest ago was dropped"


def test_a_spec_of_numeric_inputs_only_gets_a_drift_example_in_its_own_names():
    """The example shifts a categorical input when there is one; a layout of counts and durations only
    gets its first number, every record in its top bin."""
    spec = parse_spec(
        """
name: counts
id: pid
outcome: {column: rearrested, horizon_years: 2}
risk_bands: {cut_points: [0.5], labels: [low, high]}
protected: [group]
columns:
  - {name: prior_arrests, kind: numeric, domain: criminal_history, min: 0, max: 60}
  - {name: months_employed, kind: numeric, domain: employment, min: 0}
  - {name: group, kind: categorical, domain: demographics, values: [x, y]}
"""
    )
    [shifted] = drift.drift_example(spec)["inputs"]
    assert (shifted["name"], shifted["kind"], shifted["level"]) == ("prior_arrests", "numeric", "major")
    assert [b["window"] for b in shifted["bins"]] == [0.0] * 9 + [1.0]
