"""Retries with an Idempotency-Key replay the first answer: one score per request, however often sent."""

import json
import signal
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.audit import AuditStore, ScoreFilter
from serving.database import make_engine, migrate
from serving.keys import KeyStore
from tests.serving.scenarios import claim_twice, race_on_one_key
from tests.serving.servers import TEST_SEAL, start_server

pytestmark = pytest.mark.slow

# Its tests write only scores (and idempotency keys) of their own and count nothing else the store holds, so
# it shares one server with the other such modules of its test process (conftest `server`).
SHARES_SERVER = True


def _stored(server, person_id: str) -> int:
    return AuditStore(make_engine(server.database), TEST_SEAL).search(
        ScoreFilter(person_id=person_id), 10, 0
    )[1]


def _replays(server) -> float:
    with server.client("reviewer") as client:
        text = client.get("/metrics").text
    family = next(f for f in text_string_to_metric_families(text) if f.name == "reintegra_idempotent_replays")
    return family.samples[0].value


def test_a_retry_gets_the_first_score_and_records_nothing(server, api_records):
    person, key = f"P-{uuid.uuid4()}", str(uuid.uuid4())
    body = {"person_id": person, "record": api_records[0]}
    replays = _replays(server)
    with server.client("scorer") as client:
        first = client.post("/v1/scores", json=body, headers={"Idempotency-Key": key})
        again = client.post("/v1/scores", json=body, headers={"Idempotency-Key": key})
        fresh = client.post("/v1/scores", json=body)
    assert first.status_code == again.status_code == 201
    assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["x-request-id"] != first.json()["request_id"]
    assert fresh.json()["id"] != first.json()["id"]
    assert _stored(server, person) == 2
    assert _replays(server) == replays + 1


def test_the_same_key_with_another_request_is_refused(server, api_records):
    person, key = f"P-{uuid.uuid4()}", str(uuid.uuid4())
    with server.client("scorer") as client:
        client.headers["Idempotency-Key"] = key
        first = client.post("/v1/scores", json={"person_id": person, "record": api_records[0]})
        other = client.post("/v1/scores", json={"person_id": person, "record": api_records[1]})
        # The same record sent for another person, or as another assessment, is another request: replayed,
        # it would answer with the first person's score.
        other_person = client.post("/v1/scores", json={"person_id": f"{person}-b", "record": api_records[0]})
        other_assessment = client.post(
            "/v1/scores", json={"person_id": person, "assessment_id": "A-2", "record": api_records[0]}
        )
        as_batch = client.post(
            "/v1/scores:batch", json={"items": [{"person_id": person, "record": api_records[0]}]}
        )
    assert first.status_code == 201
    for refused in (other, other_person, other_assessment, as_batch):
        assert refused.status_code == 422, refused.text
        (error,) = refused.json()["errors"]
        assert error["field"] == "header.Idempotency-Key" and error["value"] == key
        assert "different request" in error["message"] and "new Idempotency-Key" in error["message"]
    assert _stored(server, person) == 1


def test_keys_belong_to_the_api_key_that_sent_them(server, api_records):
    other_scorer = KeyStore(make_engine(server.database)).create("scorer", "second system")[1]
    person, key = f"P-{uuid.uuid4()}", str(uuid.uuid4())
    body = {"person_id": person, "record": api_records[2]}
    with server.client("scorer") as client:
        first = client.post("/v1/scores", json=body, headers={"Idempotency-Key": key})
    headers = {"Authorization": f"Bearer {other_scorer}", "Idempotency-Key": key}
    second = httpx.post(f"{server.base_url}/v1/scores", json=body, headers=headers, timeout=30)
    assert second.status_code == 201 and "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    assert _stored(server, person) == 2


def test_concurrent_retries_record_one_score(server, api_records):
    person, key = f"P-{uuid.uuid4()}", str(uuid.uuid4())
    body = {"person_id": person, "record": api_records[3]}

    def send(_: int) -> httpx.Response:
        with server.client("scorer") as client:
            return client.post("/v1/scores", json=body, headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(send, range(8)))
    assert [r.status_code for r in responses] == [201] * 8
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 7
    assert _stored(server, person) == 1


def test_a_batch_retry_replays_every_item_in_place(server, api_records):
    person, key = f"P-{uuid.uuid4()}", str(uuid.uuid4())
    items = [
        {"person_id": person, "record": api_records[4]},
        {"person_id": person, "record": {"no such input": 1}},
        {"person_id": person, "record": api_records[5]},
    ]
    with server.client("scorer") as client:
        first = client.post("/v1/scores:batch", json={"items": items}, headers={"Idempotency-Key": key})
        again = client.post("/v1/scores:batch", json={"items": items}, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert [item["status"] for item in again.json()["items"]] == [201, 422, 201]
    assert again.json()["items"][0]["score"]["risk"] == first.json()["items"][0]["score"]["risk"]
    assert _stored(server, person) == 2


def test_a_retry_sending_null_for_a_field_it_left_out_replays(server, api_records):
    """A client library that writes absent fields as null on the retry sends the same request: a null
    field is an absent one to validation, for a single score and for a batch's items alike."""
    person = f"P-{uuid.uuid4()}"
    body = {"person_id": person, "record": api_records[6]}
    with_nulls = {**body, "assessment_id": None}
    with server.client("scorer") as client:
        for route, sent, resent in (
            ("/v1/scores", body, with_nulls),
            ("/v1/scores:batch", {"items": [body]}, {"items": [with_nulls]}),
        ):
            key = {"Idempotency-Key": str(uuid.uuid4())}
            first = client.post(route, json=sent, headers=key)
            again = client.post(route, json=resent, headers=key)
            assert again.status_code == first.status_code, again.text
            assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert _stored(server, person) == 2


def test_a_batch_that_scored_no_one_leaves_its_key_free(server, api_records):
    """Nothing was recorded, so nothing can be scored twice: the corrected batch may reuse the key."""
    person, key = f"P-{uuid.uuid4()}", str(uuid.uuid4())
    refused = [{"person_id": person, "record": {"no such input": 1}}]
    corrected = [{"person_id": person, "record": api_records[7]}]
    with server.client("scorer") as client:
        client.headers["Idempotency-Key"] = key
        first = client.post("/v1/scores:batch", json={"items": refused})
        second = client.post("/v1/scores:batch", json={"items": corrected})
        again = client.post("/v1/scores:batch", json={"items": corrected})
    assert first.status_code == 200 and first.json()["failed"] == 1
    assert second.status_code == 200 and "idempotent-replayed" not in second.headers
    assert [item["status"] for item in second.json()["items"]] == [201]
    assert again.headers["idempotent-replayed"] == "true" and again.content == second.content
    assert _stored(server, person) == 1


def test_two_keys_on_one_request_are_refused(server, api_records):
    """Which of two keys would a retry send? The first was taken silently, so a retry with the second
    scored the person again."""
    person = f"P-{uuid.uuid4()}"
    body = {"person_id": person, "record": api_records[0]}
    with server.client("scorer") as client:
        both = client.post(
            "/v1/scores", json=body, headers=[("Idempotency-Key", "k-1"), ("Idempotency-Key", "k-2")]
        )
    assert both.status_code == 422
    [error] = both.json()["errors"]
    assert error["field"] == "header.Idempotency-Key" and error["value"] == "k-1, k-2"
    assert error["message"] == "send one Idempotency-Key; this request has 2"
    assert _stored(server, person) == 0


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\there", "clé".encode()])
def test_an_unusable_key_is_refused(server, api_records, key):
    with server.client("scorer") as client:
        response = client.post(
            "/v1/scores", json={"record": api_records[0]}, headers={"Idempotency-Key": key}
        )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["header.Idempotency-Key"]


def test_a_retry_after_the_server_was_killed_gets_the_score_it_lost(registry, tmp_path, api_records):
    """The case the header exists for: the 201 was lost with the process, and the client sends again."""
    server = start_server(registry, tmp_path)
    person, key = f"P-{uuid.uuid4()}", str(uuid.uuid4())
    body = {"person_id": person, "record": api_records[6]}
    try:
        with server.client("scorer") as client:
            first = client.post("/v1/scores", json=body, headers={"Idempotency-Key": key})
            server.process.send_signal(signal.SIGKILL)
    finally:
        server.stop(signal.SIGKILL)
    restarted = start_server(registry, tmp_path, database=server.database)
    try:
        scorer = {"Authorization": f"Bearer {server.keys['scorer']}", "Idempotency-Key": key}
        again = httpx.post(f"{restarted.base_url}/v1/scores", json=body, headers=scorer, timeout=30)
    finally:
        restarted.stop()
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert _stored(server, person) == 1


def test_a_taken_claim_records_nothing_on_sqlite(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/audit.db")
    migrate(engine)
    claim_twice(AuditStore(engine, TEST_SEAL))


def test_two_requests_racing_on_one_key_answer_with_the_first_committed_score(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/audit.db")
    migrate(engine)
    race_on_one_key(AuditStore(engine, TEST_SEAL))


def test_a_batch_item_with_a_lone_surrogate_or_a_huge_integer_is_refused_in_place(server, api_records):
    """A lone surrogate (in a field name too) and an integer beyond 64 bits are valid JSON: such an
    item is a 422 in its place, not a 500 after the valid items were recorded."""
    person, key = f"P-{uuid.uuid4()}", str(uuid.uuid4())
    valid = json.dumps({"person_id": person, "record": api_records[7]})
    body = f'{{"items": [{valid}, {{"assessment_id": {2**70}, "record": {{"Gender": "M"}}}}, ' + (
        '{"person_id": "\\ud800", "record": {"\\udc00x": 1}}]}'
    )
    headers = {"Content-Type": "application/json"}
    with server.client("scorer") as client:
        plain = client.post("/v1/scores:batch", content=body, headers=headers)
        first = client.post("/v1/scores:batch", content=body, headers={**headers, "Idempotency-Key": key})
        again = client.post("/v1/scores:batch", content=body, headers={**headers, "Idempotency-Key": key})
    assert plain.status_code == first.status_code == again.status_code == 200, plain.text
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    items = first.json()["items"]
    assert [item["status"] for item in items] == [201, 422, 422]
    assert {"field": "assessment_id", "message": "Input should be a valid string", "value": str(2**70)} in (
        items[1]["errors"]
    )
    assert [e["field"] for e in items[2]["errors"]] == ["person_id", "record"]
    assert items[2]["errors"][0]["value"] == "\\ud800"
    assert _stored(server, person) == 2


def test_a_retry_after_a_restart_onto_a_version_with_another_field_replays(
    registry, free_text_spec, tmp_path
):
    """The lost 201 of a server that restarts onto a version accepting one more (optional) field: the
    same body is the same request, so the retry replays instead of being refused as another."""
    from features.spec import DatasetSpec
    from features.synth_generic import generate_cohort
    from training.promote import promote
    from training.train import train

    name = "retry-restart"
    layout = free_text_spec.model_dump(by_alias=True, exclude_none=True)
    layout["columns"].append({"name": "housed", "kind": "boolean", "domain": "school_work"})
    wider = DatasetSpec.model_validate(layout)
    versions = []
    for spec in (free_text_spec, wider):
        data = tmp_path / f"cohort-{len(versions)}.csv"
        generate_cohort(spec, 1500, seed=3).to_csv(data, index=False)
        versions.append(train(spec, data, name=name, seed=1).model_version)
    promote(name, versions[0], force=True, reason="test")
    env = {"REINTEGRA_MODEL_NAME": name}
    body = {"person_id": f"P-{uuid.uuid4()}", "record": {"age": 30, "employed": True, "employer": "value_1"}}
    key = str(uuid.uuid4())
    server = start_server(registry, tmp_path, extra_env=env)
    try:
        with server.client("scorer") as client:
            first = client.post("/v1/scores", json=body, headers={"Idempotency-Key": key})
    finally:
        server.stop()
    promote(name, versions[1], force=True, reason="test")
    restarted = start_server(registry, tmp_path, database=server.database, extra_env=env)
    try:
        scorer = {"Authorization": f"Bearer {server.keys['scorer']}", "Idempotency-Key": key}
        again = httpx.post(f"{restarted.base_url}/v1/scores", json=body, headers=scorer, timeout=30)
        with restarted.client("reviewer") as reviewer:
            serving = reviewer.get("/v1/model").json()["version"]
    finally:
        restarted.stop()
    assert first.status_code == 201 and serving == versions[1]
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content
    assert _stored(server, body["person_id"]) == 1


def _scored_by_band(server) -> Counter:
    with server.client("reviewer") as client:
        text = client.get("/metrics").text
    family = next(f for f in text_string_to_metric_families(text) if f.name == "reintegra_scores")
    return Counter({s.labels["band"]: s.value for s in family.samples if s.name == "reintegra_scores_total"})


def test_scores_are_counted_in_their_own_band_and_a_replay_counts_none(server, api_records):
    """reintegra_scores_total{band} is what a dashboard shows of the bands handed out: each score of a
    batch counts once in its own band, and a retry that replays them counts nothing again."""
    body = {"items": [{"person_id": f"P-band-{i}", "record": r} for i, r in enumerate(api_records[:40])]}
    before = _scored_by_band(server)
    with server.client("scorer") as client:
        client.headers["Idempotency-Key"] = str(uuid.uuid4())
        first = client.post("/v1/scores:batch", json=body)
        counted = _scored_by_band(server)
        again = client.post("/v1/scores:batch", json=body)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    bands = Counter(item["score"]["risk"]["band"] for item in first.json()["items"])
    assert len(bands) > 1, "the batch spans several bands"
    every = set(counted) | set(bands)
    assert {band: counted[band] - before[band] for band in every} == {band: bands[band] for band in every}
    assert _scored_by_band(server) == counted
