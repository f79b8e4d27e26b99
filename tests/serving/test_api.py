"""The scoring API against a real uvicorn server on loopback."""

import base64
import gzip
import html
import http.client
import json
import math
import os
import re
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import schemathesis
from jsonschema import Draft202012Validator
from mlflow import MlflowClient
from openapi_spec_validator import validate as validate_openapi
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.registry import FORCED_REASON_TAG
from serving.audit import AuditStore, new_score_id
from serving.database import make_engine
from serving.keys import KeyStore
from serving.limits import BODY_IDLE_SECONDS, HEAD_SECONDS, MAX_HEAD_BYTES
from serving.tables import ScoreReadRow, ScoreRow
from tests.serving.servers import TEST_SEAL, Server, add_a_retired_band_score, form_token, start_server

pytestmark = pytest.mark.slow

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, path: str) -> None:
    """The RFC 9457 members every error carries, with the request id that is in the header."""
    body = response.json()
    assert (body["type"], body["status"], body["instance"]) == ("about:blank", status, path)
    assert body["title"] and body["request_id"] == response.headers["x-request-id"]


def _identity_holds(explanation: dict) -> bool:
    total = explanation["base_value"] + sum(c["contribution"] for c in explanation["contributions"])
    return abs(total - explanation["log_odds"]) < 1e-6


@pytest.fixture(scope="module")
def own_server(registry, tmp_path_factory) -> Iterator[Server]:
    """A second server, for the tests that read its log or put in its store what the module's `server`
    must not hold (a revoked key, a score in a band the spec lacks, a trigger): each reads only the log its
    own requests wrote, and leaves the store taking scores, so they share one server in any order."""
    running = start_server(registry, tmp_path_factory.mktemp("own"))
    yield running
    running.stop()


def test_score_one_record(server, api_records, registry):
    with server.client("scorer") as client:
        response = client.post(
            "/v1/scores", json={"person_id": "P-1", "assessment_id": "A-1", "record": api_records[0]}
        )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["model"]["version"] == registry.version and body["model"]["name"] == "reintegra"
    assert response.headers["x-request-id"] == body["request_id"]
    probability = body["risk"]["probability"]
    assert 0 < probability < 1 and body["risk"]["horizon_years"] == 3
    risk = body["explanation"]["risk"]
    assert _identity_holds(risk)
    assert risk["log_odds"] == pytest.approx(math.log(probability / (1 - probability)), abs=1e-6)
    for need in body["needs"]:
        explained = body["explanation"]["needs"][need["need"]]
        assert _identity_holds(explained)
        assert explained["log_odds"] == pytest.approx(
            math.log(need["probability"] / (1 - need["probability"])), abs=1e-6
        )
        assert need["interventions"]
    assert "identity" in body["explanation"]


def test_a_record_leaving_out_an_input_training_always_had_is_scored_with_a_warning(server, api_records):
    """The score stands, saying in its warnings, and to a reviewer reading it later, which inputs it
    lacks that the models never saw missing."""
    record = {k: v for k, v in api_records[0].items() if k != "Prior_Arrest_Episodes_Felony"}
    with server.client("scorer") as client:
        created = client.post("/v1/scores", json={"person_id": "P-left-out", "record": record})
        whole = client.post("/v1/scores", json={"person_id": "P-whole", "record": api_records[0]})
    with server.client("reviewer") as client:
        read = client.get(f"/v1/scores/{created.json()['id']}")
    assert created.status_code == 201, created.text
    [warning] = created.json()["warnings"]
    assert warning.startswith("Input Prior_Arrest_Episodes_Felony is left out, though every training record")
    assert read.json()["warnings"] == [warning]
    assert "warnings" not in whole.json()


def test_a_new_score_says_where_it_can_be_read(server, api_records):
    """A 201 names the created score in Location (RFC 9110), on a replay too."""
    body = {"person_id": "P-location", "record": api_records[7]}
    with server.client("scorer") as scorer, server.client("reviewer") as reviewer:
        created = scorer.post("/v1/scores", json=body, headers={"Idempotency-Key": "location-1"})
        replayed = scorer.post("/v1/scores", json=body, headers={"Idempotency-Key": "location-1"})
        read = reviewer.get(created.headers.get("location", "/v1/scores/missing"))
        documented = scorer.get("/openapi.json").json()["paths"]["/v1/scores"]["post"]["responses"]["201"]
    assert "Location" in documented["headers"]
    assert created.status_code == 201
    assert created.headers.get("location") == f"/v1/scores/{created.json()['id']}"
    assert replayed.headers.get("location") == created.headers.get("location")
    assert read.status_code == 200 and read.json()["id"] == created.json()["id"]


def test_behind_a_proxy_at_a_prefix_the_location_includes_it(registry, tmp_path, api_records):
    """A proxy serving the API at /reintegra strips the prefix; the server (REINTEGRA_ROOT_PATH, as
    uvicorn's --root-path) must add it back to every address it gives out."""
    server = start_server(registry, tmp_path, extra_env={"REINTEGRA_ROOT_PATH": "/reintegra"})
    try:
        with server.client("scorer") as scorer, server.client("reviewer") as reviewer:
            created = scorer.post("/v1/scores", json={"record": api_records[7]})
            location = created.headers.get("location", "")
            read = reviewer.get(location.removeprefix("/reintegra"))  # what the proxy forwards
    finally:
        server.stop()
    assert created.status_code == 201
    assert location == f"/reintegra/v1/scores/{created.json()['id']}"
    assert created.headers.get("cache-control") == "no-store"
    assert read.status_code == 200 and read.json()["id"] == created.json()["id"]
    assert read.headers.get("cache-control") == "private, no-cache"


def test_batch_reports_bad_items_in_place(server, api_records):
    items = [{"person_id": "P-2", "record": r} for r in api_records[:5]]
    items.insert(2, {"record": {**api_records[5], "Prison_Years": "forever"}})
    with server.client("scorer") as client:
        response = client.post("/v1/scores:batch", json={"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["scored"], body["failed"]) == (5, 1)
    assert [item["status"] for item in body["items"]] == [201, 201, 422, 201, 201, 201]
    error = body["items"][2]["errors"][0]
    assert error["field"] == "record.Prison_Years" and "More than 3 years" in error["message"]
    versions = {item["score"]["model"]["version"] for item in body["items"] if item["status"] == 201}
    assert len(versions) == 1


def test_a_batch_item_that_is_not_an_object_is_refused_in_its_place(server, api_records):
    """{"items": [<valid>, null, 1]} was a 422 for the whole batch ('items.1: Input should be a valid
    dictionary'), so the valid record went unscored although an invalid item fails alone."""
    with server.client("scorer") as client:
        response = client.post("/v1/scores:batch", json={"items": [{"record": api_records[0]}, None, 1]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["scored"], body["failed"]) == (1, 2)
    assert [item["status"] for item in body["items"]] == [201, 422, 422]
    message = "each item must be a JSON object shaped like the body of POST /v1/scores"
    assert body["items"][1]["errors"] == [{"field": "(body)", "message": message, "value": None}]
    assert body["items"][2]["errors"] == [{"field": "(body)", "message": message, "value": 1}]


def test_batch_over_the_limit_or_empty_is_refused_saying_what_to_send(server, api_records):
    """Pydantic's 'List should have at most 1000 items after validation, not 1001' named neither the
    setting nor what to do; an empty batch was 'at least 1 item after validation, not 0'."""
    with server.client("scorer") as client:
        response = client.post("/v1/scores:batch", json={"items": [{"record": api_records[0]}] * 1001})
        empty = client.post("/v1/scores:batch", json={"items": []})
    assert response.status_code == empty.status_code == 422
    [error] = response.json()["errors"]
    assert (error["field"], error["message"]) == (
        "items",
        "a batch holds at most 1000 items (REINTEGRA_MAX_BATCH), not 1001: send the rest in another batch",
    )
    [error] = empty.json()["errors"]
    assert (error["field"], error["message"]) == (
        "items",
        "an empty batch scores no one: send at least one item",
    )


def test_missing_and_unknown_keys_get_401(server, api_records):
    with server.client() as client:
        missing = client.post("/v1/scores", json={"record": api_records[0]})
        unknown = client.post(
            "/v1/scores", json={"record": api_records[0]}, headers={"Authorization": "Bearer rk_nope"}
        )
        # a valid key under another scheme: a Basic or Token header is not an API key
        other_scheme = client.post(
            "/v1/scores",
            json={"record": api_records[0]},
            headers={"Authorization": f"Token {server.keys['scorer']}"},
        )
    for response in (missing, unknown, other_scheme):
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"] == "Bearer"
        assert_problem(response, 401, "/v1/scores")
    assert "Authorization: Bearer" in missing.json()["detail"]
    assert other_scheme.json()["detail"] == missing.json()["detail"]
    assert unknown.json()["detail"] == "unknown or revoked API key"


def test_two_authorization_headers_get_401_whichever_comes_first(server, api_records):
    """Neither key is picked silently: a forwarded request may carry a proxy's header beside the caller's."""
    scorer, reviewer = (f"Bearer {server.keys[role]}" for role in ("scorer", "reviewer"))
    answers = []
    with server.client() as client:
        for first, second in ((scorer, reviewer), (reviewer, scorer)):
            headers = [("Authorization", first), ("Authorization", second)]
            answers.append(client.post("/v1/scores", json={"record": api_records[0]}, headers=headers))
    for response in answers:
        assert_problem(response, 401, "/v1/scores")
        assert response.json()["detail"] == "send one Authorization header; this request has several"


def test_wrong_role_gets_403(server, api_records):
    with server.client("scorer") as scorer, server.client("reviewer") as reviewer:
        reading = scorer.get("/v1/scores")
        scraping = scorer.get("/metrics")
        scoring = reviewer.post("/v1/scores", json={"record": api_records[0]})
        reloading = reviewer.post("/v1/admin/reload")
    assert [r.status_code for r in (reading, scraping, scoring, reloading)] == [403, 403, 403, 403]
    assert scraping.json()["detail"] == "a scorer key cannot do this; it needs a monitor or reviewer key"
    assert reading.json()["detail"] == "a scorer key cannot do this; it needs a reviewer key"
    assert reloading.json()["detail"] == "a reviewer key cannot do this; it needs an admin key"
    assert reading.headers["content-type"] == PROBLEM
    assert_problem(reading, 403, "/v1/scores")


def test_a_monitor_key_reads_the_metrics_and_nothing_else(server, api_records):
    """/metrics took only a reviewer (or admin) key, so a Prometheus server had to hold a key that also
    reads every person's record. A monitor key scrapes the metrics and is refused everything else."""
    engine = make_engine(server.database)
    _, secret = KeyStore(engine).create("monitor", "prometheus")
    engine.dispose()
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=server.base_url, headers=headers) as monitor:
        metrics = monitor.get("/metrics")
        refused = [
            monitor.get("/v1/scores"),
            monitor.get("/v1/model"),
            monitor.post("/v1/scores", json={"record": api_records[0]}),
            monitor.post("/v1/admin/reload"),
        ]
        signed_in = monitor.post("/review/sign-in", data={"key": secret, "csrf": form_token(monitor)})
    assert metrics.status_code == 200 and "reintegra_requests_total" in metrics.text
    assert [r.status_code for r in refused] == [403] * 4
    assert refused[0].json()["detail"] == "a monitor key cannot do this; it needs a reviewer key"
    assert signed_in.status_code == 403 and "A monitor key cannot open the reviewer pages" in signed_in.text


def test_refused_keys_are_logged_with_the_key_they_name(own_server):
    """A refused key left no trace but a count by route and status: a stolen scorer key probing the
    reads, or a key revoked as compromised still in use, went unseen. Each refusal is now a log line
    with the request id, the route and the key's id when the key is known (never the key itself)."""
    server = own_server
    engine = make_engine(server.database)
    store = KeyStore(engine)
    revoked, revoked_secret = store.create("scorer", "retired system")
    store.revoke(revoked.id)
    scorer_id = store.verify(server.keys["scorer"]).id
    engine.dispose()
    start = server.log_size()
    with httpx.Client(base_url=server.base_url) as client:
        sent = {
            "unknown": client.get("/v1/scores", headers={"Authorization": "Bearer rk_guessed"}),
            "revoked": client.post(
                "/v1/scores", json={}, headers={"Authorization": f"Bearer {revoked_secret}"}
            ),
            "role": client.get("/v1/scores/x", headers={"Authorization": f"Bearer {server.keys['scorer']}"}),
        }
        signed_in = client.post(
            "/review/sign-in", data={"key": server.keys["scorer"], "csrf": form_token(client)}
        )
    log = server.log_since(start)
    assert [r.status_code for r in sent.values()] == [401, 401, 403] and signed_in.status_code == 403
    expected = {
        "unknown": "refused GET /v1/scores: unknown API key",
        "revoked": f"refused POST /v1/scores: API key {revoked.id}, revoked",
        "role": f"refused GET /v1/scores/{{score_id}}: scorer key {scorer_id} may not do this",
    }
    for name, line in expected.items():
        assert f"[{sent[name].headers['x-request-id']}] {line}" in log, name
    assert f"sign-in refused: scorer key {scorer_id} may not open the pages" in log
    assert revoked_secret not in log and server.keys["scorer"] not in log and "rk_guessed" not in log


def test_an_admin_key_may_do_everything(server, api_records):
    with server.client("admin") as admin:
        scored = admin.post("/v1/scores", json={"record": api_records[0]})
        listed = admin.get("/v1/scores", params={"limit": 1})
        model = admin.get("/v1/model")
        metrics = admin.get("/metrics")
    assert [r.status_code for r in (scored, listed, model, metrics)] == [201, 200, 200, 200]


def test_a_reload_without_an_alias_move_changes_nothing(server, registry):
    with server.client("admin") as admin:
        before = admin.get("/v1/model").json()["loaded_at"]
        response = admin.post("/v1/admin/reload")
        after = admin.get("/v1/model").json()["loaded_at"]
    assert after == before, "the serving version is not loaded again"
    assert response.status_code == 200
    assert response.json() == {
        "previous_version": registry.version,
        "version": registry.version,
        "changed": False,
    }


def test_invalid_record_gets_422_listing_every_bad_field(server, api_records):
    record = {
        **api_records[0],
        "Prison_Years": "forever",
        "Gender": "X",
        "Shoe_Size": 44,
        "Supervision_Risk_Score_First": 99,
        "Gang_Affiliated": "Y",
        "Prior_Arrest_Episodes_DVCharges": "on",
        "Prior_Arrest_Episodes_GunCharges": 0.5,
    }
    with server.client("scorer") as client:
        response = client.post("/v1/scores", json={"record": record})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    errors = {e["field"]: e for e in response.json()["errors"]}
    assert set(errors) == {
        "record.Prison_Years",
        "record.Gender",
        "record.Shoe_Size",
        "record.Supervision_Risk_Score_First",
        "record.Gang_Affiliated",
        "record.Prior_Arrest_Episodes_DVCharges",
        "record.Prior_Arrest_Episodes_GunCharges",
    }
    assert errors["record.Gang_Affiliated"]["message"].startswith(
        "'Y' is not yes or no; allowed: true, false"
    )
    with server.client("scorer") as client:
        flag = client.post(
            "/v1/scores", json={"record": {**api_records[0], "Supervision_Risk_Score_First": True}}
        )
    [error] = flag.json()["errors"]
    assert error["message"] == "a number is expected, not true or false"
    assert "'M' or 'F'" in errors["record.Gender"]["message"]
    assert errors["record.Prison_Years"]["value"] == "forever"
    assert "unknown field" in errors["record.Shoe_Size"]["message"]
    assert "release-time inputs" in errors["record.Shoe_Size"]["message"]
    assert "less than or equal to 10" in errors["record.Supervision_Risk_Score_First"]["message"]


def test_an_unknown_body_field_is_refused_as_such_not_as_a_record_input(server, api_records):
    with server.client("scorer") as client:
        one = client.post("/v1/scores", json={"record": api_records[0], "nickname": "x"})
        batch = client.post("/v1/scores:batch", json={"items": [{"record": api_records[0]}], "itemz": 1})
    for response, field in ((one, "nickname"), (batch, "itemz")):
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["field"] == field
        assert error["message"] == (
            "unknown field; the request body's fields are in the API schema (GET /docs)"
        )


def test_many_unknown_fields_are_one_error_not_one_each(server, api_records):
    """Each unknown field was an error echoing its value: 680,000 made-up names in an 8 MiB body held
    the event loop 11 s and drew an 81 MB answer. Past 20, one error names the first 20 and the count."""
    made_up = {f"k{i}": 1 for i in range(5000)}
    bodies = {
        "/v1/scores": [({"record": {**api_records[0], **made_up}}, "record"), (made_up, "(body)")],
        "/v1/scores:batch": [(made_up, "(body)")],
    }
    with server.client("scorer") as client:
        for path, cases in bodies.items():
            for body, field in cases:
                response = client.post(path, json=body)
                assert response.status_code == 422 and len(response.content) < 2000, response.text[:500]
                [error] = [e for e in response.json()["errors"] if e["field"] == field]
                assert error["message"].startswith("5000 unknown fields; the first 20: k0, k1,")
        item = client.post("/v1/scores:batch", json={"items": [{"record": made_up}]}).json()["items"][0]
    [error] = item["errors"]
    assert error["field"] == "record" and error["message"].startswith("5000 unknown fields")


@pytest.mark.parametrize("record", [{}, {"Race": "WHITE"}, {"Gender": None}])
def test_a_record_without_any_input_is_refused(server, record):
    with server.client("scorer") as client:
        one = client.post("/v1/scores", json={"person_id": "P-empty", "record": record})
        batch = client.post("/v1/scores:batch", json={"items": [{"record": record}]})
    assert one.status_code == 422
    [error] = one.json()["errors"]
    assert error["field"] == "record"
    assert error["message"].startswith("the record holds none of the model's inputs")
    assert batch.json()["items"][0]["status"] == 422 and batch.json()["scored"] == 0


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"{not json", {"content-type": "application/json"}, 422),
        (b"[]", {"content-type": "application/json"}, 422),
        (b'{"record": "x"}', {"content-type": "application/json"}, 422),
        (b"\xff\xfe", {"content-type": "application/json"}, 422),
        (b"record=1", {"content-type": "application/x-www-form-urlencoded"}, 415),
    ],
)
def test_malformed_bodies_never_give_500(server, body, headers, status):
    with server.client("scorer") as client:
        response = client.post("/v1/scores", content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM


def test_refused_text_says_in_words_what_is_allowed(server, api_records):
    """A pattern or a body that is not JSON is explained in words, not as a regular expression or as
    'Input should be a valid dictionary' with no value."""
    with server.client("scorer") as client:
        person = client.post("/v1/scores", json={"person_id": "P\n1", "record": api_records[0]})
        key = client.post("/v1/scores", json={"record": api_records[0]}, headers={"Idempotency-Key": "k\t1"})
        as_text = client.post(
            "/v1/scores",
            content=json.dumps({"record": api_records[0]}),
            headers={"content-type": "text/plain"},
        )
    assert [e["message"] for e in person.json()["errors"]] == [
        "control characters (line breaks, tabs, NUL) are not allowed"
    ]
    assert [e["message"] for e in key.json()["errors"]] == [
        "only printable ASCII is allowed (space to ~): no tabs, line breaks or other alphabets"
    ]
    assert as_text.status_code == 415 and as_text.headers["content-type"] == PROBLEM
    assert as_text.json()["detail"].startswith(
        "the body is sent as text/plain; the API reads application/json"
    )


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"", "the request has no body"),
        (b"null", "the body is null"),
        (b"[]", "the body is an array"),
        (b'"x"', "the body is a string"),
        (b"3.5", "the body is a number"),
    ],
)
def test_a_json_body_that_is_not_an_object_is_named_for_what_it_is(server, body, kind):
    """An empty, null or non-object JSON body was told 'the body must be a JSON object, sent with
    Content-Type: application/json', though it had been; now that another type is a 415, the 422 says
    what the body was."""
    with server.client("scorer") as client:
        response = client.post("/v1/scores", content=body, headers={"content-type": "application/json"})
    assert_problem(response, 422, "/v1/scores")
    message = f"{kind}; send a JSON object shaped like the schema (GET /docs)"
    assert [(e["field"], e["message"]) for e in response.json()["errors"]] == [("(body)", message)]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/v1/scores",
            b'{"record": {}} x',
            "the body is not valid JSON: Extra data at character 15 (from 0)",
        ),
        (
            "/v1/scores",
            b"{not json",
            "the body is not valid JSON: Expecting property name enclosed in double quotes at character 1 "
            "(from 0)",
        ),
        (
            "/v1/scores:batch",
            b'{"items": [1,]}',
            "the body is not valid JSON: Expecting value at character 13 (from 0)",
        ),
        (
            "/v1/scores",
            '{"person_id": "P-é", "record": {}}'.encode("latin-1"),
            "the body is not valid JSON: byte 0xe9 at byte 17 (from 0) is not UTF-8; JSON is sent as UTF-8, "
            "whatever charset the Content-Type names",
        ),
    ],
)
def test_a_body_that_is_not_json_is_said_to_be_so_and_where(server, path, body, message):
    """The error was filed under a field named after the character position ("15"), as 'JSON decode error';
    a body in Latin-1 was an undocumented 400, 'There was an error parsing the body'."""
    with server.client("scorer") as client:
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert_problem(response, 422, path)
    assert response.json()["errors"] == [{"field": "(body)", "message": message, "value": None}]


def _named_twice(record: dict, name: str, first: object) -> bytes:
    """A score request whose record gives `name` twice: `first`, then the record's own value."""
    text = json.dumps(record)
    return f'{{"person_id": "P-twice", "record": {{"{name}": {json.dumps(first)}, {text[1:]}}}'.encode()


def test_a_field_given_twice_is_refused_not_read_as_its_last_value(server, api_records):
    """{"Prior_Arrest_Episodes_Felony": "10 or more", ..., "Prior_Arrest_Episodes_Felony": "0"} was scored
    with the last value, silently; another JSON reader (the client's own, a gateway's) may keep the first,
    so the score and its audit record could be of another record than the one meant."""
    record = api_records[0]
    body = _named_twice(record, "Prior_Arrest_Episodes_Felony", "10 or more")
    message = (
        "'Prior_Arrest_Episodes_Felony' given more than once in this object; JSON readers differ on which "
        "value they keep, so send each field once"
    )
    with server.client("scorer") as client:
        one = client.post("/v1/scores", content=body, headers={"content-type": "application/json"})
        outer = client.post(
            "/v1/scores",
            content=b'{"person_id": "P-1", "person_id": "P-2", "record": '
            + json.dumps(record).encode()
            + b"}",
            headers={"content-type": "application/json"},
        )
        batch = client.post(
            "/v1/scores:batch",
            content=b'{"items": [{"record": ' + json.dumps(record).encode() + b"}, " + body + b"]}",
            headers={"content-type": "application/json"},
        )
    with server.client("reviewer") as client:
        stored = client.get("/v1/scores", params={"person_id": "P-twice"}).json()["total"]
    assert_problem(one, 422, "/v1/scores")
    assert [(e["field"], e["message"]) for e in one.json()["errors"]] == [("record", message)]
    assert [e["message"].split(" given")[0] for e in outer.json()["errors"]] == ["'person_id'"]
    assert batch.status_code == 200, batch.text
    items = batch.json()["items"]
    assert [item["status"] for item in items] == [201, 422]
    assert [(e["field"], e["message"]) for e in items[1]["errors"]] == [("record", message)]
    assert stored == 0


def test_a_body_nested_too_deeply_to_read_is_said_to_be_so(server):
    """Nested past what Python's JSON reader can follow, a body was a 400: 'There was an error parsing
    the body'."""
    with server.client("scorer") as client:
        response = client.post(
            "/v1/scores",
            content=b"[" * 100_000 + b"]" * 100_000,
            headers={"content-type": "application/json"},
        )
    assert_problem(response, 422, "/v1/scores")
    message = (
        "the body's arrays and objects nest too deeply to be read; a request to this API nests 4 levels "
        "at most"
    )
    assert response.json()["errors"] == [{"field": "(body)", "message": message, "value": None}]


def test_a_wrong_method_says_which_methods_are_allowed(server):
    """/v1/scores is both the search (GET) and the scoring (POST): Allow names both, not the first
    route's method alone. The problem's detail names them too: it said only 'Method Not Allowed', so a
    client logging the detail (not the headers) learnt nothing it could act on."""
    with server.client("admin") as client:
        scores = client.put("/v1/scores", json={})
        options = client.options("/v1/scores")
        one = client.delete("/v1/scores/abc")
        reload = client.put("/v1/admin/reload")
    assert scores.status_code == 405 and scores.headers["content-type"] == PROBLEM
    assert scores.headers["allow"] == options.headers["allow"] == "GET, HEAD, POST"
    assert one.headers["allow"] == "GET, HEAD" and reload.headers["allow"] == "POST"
    for answer in (scores, options, one, reload):
        allowed = answer.headers["allow"]
        assert answer.json()["detail"] == f"this address does not take that method; it takes {allowed}"


def test_a_trailing_slash_is_not_redirected_to_the_host_the_client_named(server, api_records):
    """Starlette answered an address with a trailing slash by a 307 to an absolute URL built from the
    Host header and the scheme uvicorn saw (http://evil.example/v1/scores), so a client following it
    sent the person's record again, to that host or in clear behind a TLS proxy. Now a 404 naming
    the address without the slash, on the API and the pages."""
    spoofed = {"Host": "evil.example"}
    with server.client("scorer") as scorer, server.client("reviewer") as reviewer:
        posted = scorer.post("/v1/scores/", json={"record": api_records[0]}, headers=spoofed)
        read = reviewer.get("/v1/scores/", headers=spoofed)
        nowhere = reviewer.get("/v1/nowhere/", headers=spoofed)
    for response, path in ((posted, "/v1/scores/"), (read, "/v1/scores/")):
        assert response.status_code == 404 and "location" not in response.headers
        assert_problem(response, 404, path)
        assert response.json()["detail"] == f"no route at {path}; without the trailing slash: /v1/scores"
    assert_problem(nowhere, 404, "/v1/nowhere/")
    assert nowhere.json()["detail"] == "Not Found", "no address without the slash to offer"
    with server.page_client() as browser:
        page = browser.get("/review/scores/", headers=spoofed)
    assert page.status_code == 404 and "location" not in page.headers
    assert (
        "There is no page at /review/scores/; without the trailing slash: /review/scores."
        in html.unescape(page.text)
    )


def test_head_answers_as_get_without_a_body(server, api_records):
    """RFC 9110 9.1: a server supporting GET supports HEAD; every GET here answered HEAD with 405."""
    with server.client("scorer") as scorer:
        score_id = scorer.post("/v1/scores", json={"record": api_records[8]}).json()["id"]
        batch = scorer.head("/v1/scores:batch")
    with server.client("reviewer") as reviewer:
        for path in ("/healthz", "/v1/model", f"/v1/scores/{score_id}", "/v1/scores?limit=1"):
            got, head = reviewer.get(path), reviewer.head(path)
            assert (head.status_code, head.content) == (200, b""), path
            assert head.headers["content-type"] == got.headers["content-type"], path
            assert head.headers["content-length"] == got.headers["content-length"], path
        metrics = reviewer.get("/metrics").text
    assert batch.status_code == 405 and batch.headers["allow"] == "POST"
    assert 'reintegra_requests_total{method="HEAD",route="/v1/model",status="200"}' in metrics


@pytest.mark.parametrize("person_id", [".", "..", "..."])
def test_ids_made_only_of_dots_are_refused(server, api_records, person_id):
    with server.client("scorer") as client:
        response = client.post("/v1/scores", json={"person_id": person_id, "record": api_records[0]})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "person_id" and "only of dots" in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "field", "echoed"),
    [
        (
            "/v1/scores",
            b'{"record": {"Supervision_Risk_Score_First": NaN}}',
            "record.Supervision_Risk_Score_First",
            "nan",
        ),
        (
            "/v1/scores",
            b'{"record": {"Supervision_Risk_Score_First": 1e999}}',
            "record.Supervision_Risk_Score_First",
            "inf",
        ),
        ("/v1/scores", b'{"record": {}, "person_id": "P\\ud800"}', "person_id", "P\\ud800"),
        ("/v1/scores:batch", b'{"items": [{"record": {"Gender": "\\ud800"}}]}', "record.Gender", "\\ud800"),
    ],
)
def test_values_json_cannot_carry_are_echoed_as_text(server, path, body, field, echoed):
    with server.client("scorer") as client:
        response = client.post(path, content=body, headers={"content-type": "application/json"})
    errors = response.json()["errors"] if path == "/v1/scores" else response.json()["items"][0]["errors"]
    assert response.status_code == (422 if path == "/v1/scores" else 200)
    assert {e["field"]: e["value"] for e in errors}[field] == echoed


def test_an_unexpected_error_is_a_problem_with_the_request_id_of_its_log_line(own_server, api_records):
    broken = own_server
    engine = make_engine(broken.database)
    start = broken.log_size()
    try:
        with engine.begin() as connection:  # every insert now fails in a way no handler expects
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON scores BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        with broken.client("scorer") as client:
            response = client.post(
                "/v1/scores", json={"person_id": "P-hidden-4410", "record": api_records[0]}
            )
    finally:
        with engine.begin() as connection:  # the store takes scores again for the other tests on it
            connection.exec_driver_sql("DROP TRIGGER IF EXISTS refuse")
        engine.dispose()
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    request_id = response.headers["x-request-id"]
    assert response.json()["request_id"] == request_id
    assert "Traceback" not in response.text and "scores" not in response.json()["detail"]
    log = broken.log_since(start)
    assert f"[{request_id}] unhandled error" in log
    assert "P-hidden-4410" not in log, "statement parameters (people's records) stay out of the log"


def test_every_score_shown_to_a_reviewer_is_recorded_with_the_key_that_read_it(server, api_records):
    """Who read whose score was recorded nowhere (no access log, no table): a reviewer key could read
    every person's record through the API or the pages and leave no trace. Each score a read shows is
    now a row of score_reads: when, the key, the request id, the route, the score and its person."""
    person = "P-read-7306"
    with server.client("scorer") as scorer:
        body = {"person_id": person, "record": api_records[1]}
        score_id = scorer.post("/v1/scores", json=body).json()["id"]
    engine = make_engine(server.database)

    def reads() -> list[ScoreReadRow]:
        query = select(ScoreReadRow).where(ScoreReadRow.person_id == person).order_by(ScoreReadRow.read_at)
        with Session(engine) as session:
            return list(session.scalars(query))

    assert reads() == [], "scoring a person is not reading their score"
    with server.client("reviewer") as reviewer:
        answers = [
            reviewer.get(f"/v1/scores/{score_id}"),
            reviewer.get("/v1/scores", params={"person_id": person}),
        ]
    with server.page_client() as browser:
        answers += [
            browser.get(f"/review/scores/{score_id}"),
            browser.get(f"/review/people/{person}"),
            browser.get("/review/scores", params={"person_id": person}),
        ]
    reviewer_id = KeyStore(engine).verify(server.keys["reviewer"]).id
    rows = reads()
    engine.dispose()
    assert all(answer.status_code == 200 for answer in answers)
    assert [(r.route, r.request_id) for r in rows] == [
        (route, answer.headers["x-request-id"])
        for route, answer in zip(
            [
                "/v1/scores/{score_id}",
                "/v1/scores",
                "/review/scores/{score_id}",
                "/review/people/{person_id:path}",
                "/review/scores",
            ],
            answers,
            strict=True,
        )
    ]
    assert {(r.key_id, r.score_id) for r in rows} == {(reviewer_id, score_id)}


def test_a_search_records_a_read_of_every_score_on_its_page_and_of_no_other(server, api_records):
    """A page of two of a person's three scores: both shown are recorded as read, the third is not."""
    person = "P-read-page-5120"
    with server.client("scorer") as scorer:
        for record in api_records[:3]:
            assert scorer.post("/v1/scores", json={"person_id": person, "record": record}).status_code == 201
    with server.client("reviewer") as reviewer:
        page = reviewer.get("/v1/scores", params={"person_id": person, "limit": 2})
    engine = make_engine(server.database)
    with Session(engine) as session:
        rows = session.scalars(select(ScoreReadRow).where(ScoreReadRow.person_id == person)).all()
    engine.dispose()
    shown = [item["id"] for item in page.json()["items"]]
    assert page.json()["total"] == 3 and len(shown) == 2
    assert sorted(r.score_id for r in rows) == sorted(shown)
    assert {r.request_id for r in rows} == {page.headers["x-request-id"]}


def test_the_pages_record_a_read_of_every_score_they_show(server, api_records):
    """A person with two scores: their page and the scores page filtered to them each show both."""
    person = "P-read-pages-8841"
    with server.client("scorer") as scorer:
        ids = [
            scorer.post("/v1/scores", json={"person_id": person, "record": r}).json()["id"]
            for r in api_records[5:7]
        ]
    with server.page_client() as browser:
        answers = [
            browser.get(f"/review/people/{person}"),
            browser.get("/review/scores", params={"person_id": person}),
        ]
    engine = make_engine(server.database)
    with Session(engine) as session:
        rows = session.scalars(select(ScoreReadRow).where(ScoreReadRow.person_id == person)).all()
    engine.dispose()
    assert [answer.status_code for answer in answers] == [200, 200]
    for answer in answers:
        read = [r.score_id for r in rows if r.request_id == answer.headers["x-request-id"]]
        assert sorted(read) == sorted(ids)


def test_audit_record_is_retrievable_and_searchable(server, api_records):
    with server.client("scorer") as scorer:
        created = scorer.post("/v1/scores", json={"person_id": "P-audit", "record": api_records[3]}).json()
        # newer, of someone else: the person filter, not the order, keeps it off P-audit's page
        scorer.post("/v1/scores", json={"person_id": "P-audit-other", "record": api_records[4]})
    with server.client("reviewer") as reviewer:
        stored = reviewer.get(f"/v1/scores/{created['id']}")
        page = reviewer.get("/v1/scores", params={"person_id": "P-audit"})
        by_band = reviewer.get("/v1/scores", params={"band": created["risk"]["band"], "limit": 500})
        missing = reviewer.get("/v1/scores/does-not-exist")
        bad_query = reviewer.get("/v1/scores", params={"limit": 0, "since": "yesterday"})
    assert stored.status_code == 200
    assert stored.headers["cache-control"] == "private, no-cache", "in no shared cache, revalidated"
    assert missing.headers["cache-control"] == "no-store"
    for response in (stored, missing):
        assert response.headers["x-content-type-options"] == "nosniff"
    stored = stored.json()
    assert stored["risk"] == created["risk"] and stored["explanation"] == created["explanation"]
    assert stored["record"] == api_records[3]
    assert stored["request_id"] == created["request_id"]
    assert [item["id"] for item in page.json()["items"]] == [created["id"]]
    assert created["id"] in {item["id"] for item in by_band.json()["items"]}
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert_problem(missing, 404, "/v1/scores/does-not-exist")
    assert bad_query.status_code == 422
    assert_problem(bad_query, 422, "/v1/scores")
    assert {e["field"] for e in bad_query.json()["errors"]} == {"query.limit", "query.since"}


def test_a_misspelt_search_parameter_is_refused_not_ignored(server, api_records):
    """A filter the API does not know would otherwise list every person's scores, as if none was given."""
    with server.client("scorer") as scorer:
        scorer.post("/v1/scores", json={"person_id": "P-spelt", "record": api_records[2]})
    with server.client("reviewer") as reviewer:
        misspelt = reviewer.get("/v1/scores", params={"personid": "P-spelt", "limit": 500})
        spelt = reviewer.get("/v1/scores", params={"person_id": "P-spelt"})
    assert spelt.status_code == 200 and spelt.json()["total"] == 1
    assert_problem(misspelt, 422, "/v1/scores")
    [error] = misspelt.json()["errors"]
    assert error["field"] == "query.personid" and error["value"] == "P-spelt"
    assert error["message"] == (
        "unknown query parameter; allowed: model_name, person_id, since, until, band, model_version, "
        "limit, offset, cursor"
    )


def test_a_query_parameter_on_a_read_that_takes_none_is_refused_not_ignored(server, api_records):
    """`GET /v1/model?version=2` answered the serving version's metrics and fairness with a 200, as if a
    client asking for version 2's audit had got it; a score's read took any parameter the same way."""
    with server.client("scorer") as scorer:
        made = scorer.post("/v1/scores", json={"record": api_records[3]}).json()
    with server.client("reviewer") as reviewer:
        answers = {
            "/v1/model": reviewer.get("/v1/model", params={"version": "2"}),
            f"/v1/scores/{made['id']}": reviewer.get(f"/v1/scores/{made['id']}", params={"fields": "risk"}),
        }
        plain = [reviewer.get(path).status_code for path in answers]
    assert plain == [200, 200]
    for path, answer in answers.items():
        assert_problem(answer, 422, path)
        [error] = answer.json()["errors"]
        assert error["field"] in ("query.version", "query.fields")
        assert error["message"] == "unknown query parameter; this address takes none"


def test_a_repeated_search_parameter_is_refused_not_cut_to_its_last_value(server, api_records):
    """`person_id=a&person_id=b` searched b alone: a reviewer asking for two people got one, unwarned."""
    with server.client("scorer") as scorer:
        for person in ("P-twice-a", "P-twice-b"):
            scorer.post("/v1/scores", json={"person_id": person, "record": api_records[2]})
    with server.client("reviewer") as reviewer:
        both = reviewer.get("/v1/scores", params=[("person_id", "P-twice-a"), ("person_id", "P-twice-b")])
        bands = reviewer.get("/v1/scores", params=[("band", "low"), ("band", "high"), ("band", "low")])
        window = reviewer.get("/v1/model/drift", params=[("since", "2026-01-01"), ("since", "2026-02-01")])
    assert_problem(both, 422, "/v1/scores")
    assert both.json()["errors"] == [
        {
            "field": "query.person_id",
            "message": "given 2 times; a search takes one person_id: make a request for each value",
            "value": None,
        }
    ]
    [band_error] = bands.json()["errors"]
    assert band_error["field"] == "query.band" and band_error["message"].startswith("given 3 times")
    assert_problem(window, 422, "/v1/model/drift")
    assert [e["field"] for e in window.json()["errors"]] == ["query.since"]


def test_many_unknown_search_parameters_are_one_error_not_one_each(server):
    """11,000 parameters in a 55 kB address drew a 1.8 MB answer, one error each; past 20 it is one."""
    with server.client("reviewer") as reviewer:
        response = reviewer.get("/v1/scores", params={f"p{i}": "" for i in range(2000)})
    assert response.status_code == 422 and len(response.content) < 2000, response.text[:500]
    [error] = response.json()["errors"]
    assert error["field"] == "query" and error["message"].startswith(
        "2000 unknown query parameters; the first 20: p0, p1,"
    )
    assert error["message"].endswith(
        "allowed: model_name, person_id, since, until, band, model_version, limit, offset, cursor"
    )


def test_a_stored_score_names_the_key_that_made_it(server, api_records):
    """A reviewer must be able to tell who scored a person; the audit row holds the key's id."""
    with server.client("scorer") as scorer:
        created = scorer.post("/v1/scores", json={"record": api_records[4]}).json()
    with server.client("reviewer") as reviewer:
        stored = reviewer.get(f"/v1/scores/{created['id']}").json()
    engine = make_engine(server.database)
    scorer_key = KeyStore(engine).verify(server.keys["scorer"])
    engine.dispose()
    assert stored["key_id"] == scorer_key.id
    assert "key_id" not in created, "the scorer's answer is unchanged"


def test_a_search_names_the_key_that_made_each_score(server, api_records):
    """Who asked for the scores of a window is read from the search (README, Administrative events):
    its items named their version but not their key, so each score had to be read again to learn it."""
    with server.client("scorer") as scorer:
        created = scorer.post(
            "/v1/scores", json={"person_id": "P-search-key", "record": api_records[5]}
        ).json()
    with server.client("reviewer") as reviewer:
        [item] = reviewer.get("/v1/scores", params={"person_id": "P-search-key"}).json()["items"]
        stored = reviewer.get(f"/v1/scores/{created['id']}").json()
    assert item["id"] == created["id"]
    assert item["key_id"] == stored["key_id"]


@pytest.mark.parametrize("name", ["person_id", "model_version", "model_name", "band"])
def test_an_empty_filter_is_refused_not_read_as_match_nothing(server, api_records, name):
    """An empty person_id= (a form's blank field) matched no score and answered an empty page, while an
    empty model_name= meant the serving model: neither says what the caller meant."""
    with server.client("reviewer") as reviewer:
        response = reviewer.get("/v1/scores", params={name: "", "model_name": "another", **{name: ""}})
    assert_problem(response, 422, "/v1/scores")
    assert [(e["field"], e["value"]) for e in response.json()["errors"]] == [(f"query.{name}", "")]
    assert response.json()["errors"][0]["message"] == (
        "an empty filter would match no score; leave the parameter out to match every value"
    )


def test_an_unknown_band_is_refused_with_the_serving_models_bands(server):
    with server.client("reviewer") as reviewer:
        unknown = reviewer.get("/v1/scores", params={"band": "unknown"})
        other_model = reviewer.get("/v1/scores", params={"band": "unknown", "model_name": "another"})
    assert_problem(unknown, 422, "/v1/scores")
    assert unknown.json()["errors"] == [
        {
            "field": "query.band",
            "message": "'unknown' is not a risk band of the serving model or of its stored scores; allowed: "
            "low, moderate, high, very_high",
            "value": "unknown",
        }
    ]
    assert other_model.status_code == 200, "another model's bands are not known to this server"


def test_a_band_only_an_earlier_version_gave_finds_its_scores(own_server):
    """A later spec may drop or rename a band: the scores an earlier version put in it stay searchable."""
    old = add_a_retired_band_score(own_server)
    with own_server.client("reviewer") as reviewer:
        found = reviewer.get("/v1/scores", params={"band": "retired"})
        unknown = reviewer.get("/v1/scores", params={"band": "unknown"})
    assert found.status_code == 200, found.text
    assert [item["id"] for item in found.json()["items"]] == [old.id]
    assert unknown.json()["errors"][0]["message"] == (
        "'unknown' is not a risk band of the serving model or of its stored scores; allowed: low, moderate, "
        "high, very_high, retired"
    )


def test_levels_are_matched_as_in_data_files(server, api_records):
    """Case and surrounding spaces are ignored, 2, 2.0 and "2.0" mean "2", "yes" and "1.0" are true,
    0.0 is false and a blank value is missing, as in a validated file."""
    record = {
        **api_records[5],
        "Prison_Years": " more than 3 YEARS ",
        "Prior_Arrest_Episodes_Violent": 2,
        "Dependents": "1.0",
        "Gang_Affiliated": " YES",
        "Prior_Arrest_Episodes_DVCharges": "1.0",
        "Prior_Arrest_Episodes_GunCharges": 0.0,
        "Supervision_Risk_Score_First": " ",
    }
    canonical = {
        **api_records[5],
        "Prison_Years": "More than 3 years",
        "Prior_Arrest_Episodes_Violent": "2",
        "Dependents": "1",
        "Gang_Affiliated": True,
        "Prior_Arrest_Episodes_DVCharges": True,
        "Prior_Arrest_Episodes_GunCharges": False,
    }
    del canonical["Supervision_Risk_Score_First"]  # missing: not stored
    with server.client("scorer") as scorer, server.client("reviewer") as reviewer:
        loose = scorer.post("/v1/scores", json={"record": record})
        exact = scorer.post("/v1/scores", json={"record": canonical})
        stored = reviewer.get(f"/v1/scores/{loose.json()['id']}").json()
    assert loose.status_code == exact.status_code == 201, loose.text
    assert loose.json()["risk"] == exact.json()["risk"]
    assert loose.json()["explanation"] == exact.json()["explanation"]
    assert stored["record"] == canonical, "stored in the spec's spelling"


def test_scores_of_another_model_sharing_the_store_are_listed_only_when_asked(server, api_records):
    with server.client("scorer") as scorer:
        ours = scorer.post("/v1/scores", json={"person_id": "P-shared", "record": api_records[6]}).json()
    store = AuditStore(make_engine(server.database), TEST_SEAL)
    row = store.get(ours["id"])
    columns = {c.name: getattr(row, c.name) for c in ScoreRow.__table__.columns}
    theirs = ScoreRow(**{**columns, "id": new_score_id(), "model_name": "other-layout"})
    store.record([theirs])
    with server.client("reviewer") as reviewer, server.page_client() as pages:
        default = reviewer.get("/v1/scores", params={"person_id": "P-shared"}).json()
        other = reviewer.get(
            "/v1/scores", params={"person_id": "P-shared", "model_name": "other-layout"}
        ).json()
        listed = pages.get("/review/scores", params={"person_id": "P-shared"}).text
        their_page = pages.get(f"/review/scores/{theirs.id}").text
    assert [(i["id"], i["model_name"]) for i in default["items"]] == [(ours["id"], "reintegra")]
    assert [(i["id"], i["model_name"]) for i in other["items"]] == [(theirs.id, "other-layout")]
    assert ours["id"] in listed and theirs.id not in listed
    assert "other-layout version" in their_page and "not the model this server serves" in their_page
    assert 'id="model-link"' not in their_page


def test_filters_select_by_time_and_version(server, api_records, registry):
    """since is inclusive and until exclusive, to the microsecond; the version filter selects."""
    with server.client("scorer") as scorer:
        created = scorer.post("/v1/scores", json={"person_id": "P-when", "record": api_records[9]}).json()
    at = datetime.fromisoformat(created["created_at"])
    later = (at + timedelta(microseconds=1)).isoformat()

    def ids(**params) -> list[str]:
        with server.client("reviewer") as reviewer:
            page = reviewer.get("/v1/scores", params={"person_id": "P-when", **params})
        assert page.status_code == 200, page.text
        return [item["id"] for item in page.json()["items"]]

    assert ids(since=at.isoformat()) == [created["id"]]
    assert ids(since=later) == []
    assert ids(until=at.isoformat()) == []
    assert ids(until=later) == [created["id"]]
    assert ids(model_version=registry.version) == [created["id"]]
    assert ids(model_version="999") == []


def test_pages_followed_by_cursor_neither_repeat_nor_skip_while_scores_arrive(server, api_records):
    """Three scores of one batch share their created_at; a score arriving between two pages moves every
    offset by one, so the offset's second page repeated the first page's last score."""
    person = "P-pages"
    with server.client("scorer") as scorer:
        scorer.post("/v1/scores", json={"person_id": person, "record": api_records[10]})
        items = [{"person_id": person, "record": r} for r in api_records[11:14]]
        scorer.post("/v1/scores:batch", json={"items": items})
        scorer.post("/v1/scores", json={"person_id": person, "record": api_records[14]})
    with server.client("reviewer") as reviewer:
        everything = reviewer.get("/v1/scores", params={"person_id": person}).json()["items"]
        seen, totals, params = [], [], {"person_id": person, "limit": 2}
        while True:
            page = reviewer.get("/v1/scores", params=params)
            assert page.status_code == 200, page.text
            seen += [item["id"] for item in page.json()["items"]]
            totals.append(page.json()["total"])
            with server.client("scorer") as scorer:  # a newer score arrives between two pages
                scorer.post("/v1/scores", json={"person_id": person, "record": api_records[15]})
            if page.json()["next_cursor"] is None:
                break
            params["cursor"] = page.json()["next_cursor"]
    assert len(everything) == 5
    assert seen == [item["id"] for item in everything], "every score once, newest first"
    assert totals == [5, 6, 7], "every page counts all the scores the filters match, the newer ones too"


def test_scores_are_timed_in_the_order_they_commit_so_a_walk_by_cursor_skips_none(server, api_records):
    """A score was timed when scored and committed later, after hashing and the wait for the chain's lock: a
    batch of 1,000 committed 1.2 s after its time, so a cursor walk begun meanwhile, whose first page held a
    single score committed in between, went on past the batch's time and never showed it. Timed as it
    commits, a score's time follows the chain's order, and whatever a walk's first page shows, every score
    timed before it was already there."""
    person = "P-commit-order"
    items = [{"person_id": person, "record": r} for r in api_records]
    walks: list[tuple[list[dict], set[str]]] = []
    done = threading.Event()

    def score(batch: bool) -> None:
        with server.client("scorer") as scorer:
            for record in api_records[:6]:
                if batch:
                    assert scorer.post("/v1/scores:batch", json={"items": items}).status_code == 200
                else:
                    body = {"person_id": person, "record": record}
                    assert scorer.post("/v1/scores", json=body).status_code == 201

    def walk() -> None:
        with server.client("reviewer") as reviewer:
            while not done.is_set():
                params: dict[str, Any] = {"person_id": person, "limit": 500}
                pages = []
                while True:
                    page = reviewer.get("/v1/scores", params=params).json()
                    pages += page["items"]
                    if page["next_cursor"] is None:
                        break
                    params["cursor"] = page["next_cursor"]
                walks.append((pages, {item["id"] for item in pages}))

    writers = [threading.Thread(target=score, args=(batch,)) for batch in (True, True, False, False)]
    walker = threading.Thread(target=walk)
    for thread in [walker, *writers]:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    walker.join()
    with Session(make_engine(server.database)) as session:
        stored = session.execute(
            select(ScoreRow.seq, ScoreRow.created_at, ScoreRow.id).where(ScoreRow.person_id == person)
        ).all()
    by_seq = [(created_at, score_id) for _, created_at, score_id in sorted(stored)]
    assert len(by_seq) == 2 * 6 * len(items) + 2 * 6
    times = [created_at for created_at, _ in by_seq]
    assert times == sorted(times), "a later place in the chain never holds an earlier time"
    every = {score_id: created_at for created_at, score_id in by_seq}
    for pages, seen in walks:
        if pages:
            first = datetime.fromisoformat(pages[0]["created_at"])
            assert {i for i, at in every.items() if at <= first} <= seen, (
                "a walk skipped a score timed before it"
            )


def test_a_cursor_sent_with_other_filters_is_refused_not_followed(server, api_records):
    """A next_cursor held only a position: sent with another search's filters (a client building the next
    address from the wrong query, or keeping one cursor across people) it went on silently from that
    position, so that person's newer scores were skipped without a word. It now belongs to its search:
    other filters are a 422 on query.cursor; another limit is still a page of the same search."""
    with server.client("scorer") as scorer:
        for person, record in (("P-cursor-a", api_records[18]), ("P-cursor-a", api_records[19])):
            assert scorer.post("/v1/scores", json={"person_id": person, "record": record}).status_code == 201
        scorer.post("/v1/scores", json={"person_id": "P-cursor-b", "record": api_records[20]})
    with server.client("reviewer") as reviewer:
        first = reviewer.get("/v1/scores", params={"person_id": "P-cursor-a", "limit": 1}).json()
        cursor = first["next_cursor"]
        same = reviewer.get("/v1/scores", params={"person_id": "P-cursor-a", "limit": 5, "cursor": cursor})
        other = [
            reviewer.get("/v1/scores", params={**params, "cursor": cursor})
            for params in ({"person_id": "P-cursor-b"}, {}, {"person_id": "P-cursor-a", "band": "low"})
        ]
    assert same.status_code == 200 and len(same.json()["items"]) == 1
    for answer in other:
        assert answer.status_code == 422, answer.text[:200]
        assert_problem(answer, 422, "/v1/scores")
        [error] = answer.json()["errors"]
        assert error["field"] == "query.cursor" and error["value"] == cursor
        assert error["message"].startswith("this cursor continues a search with other filters")


@pytest.mark.parametrize(
    "changed",
    [
        {"since": "2000-01-01T00:00:00Z"},
        {"until": "2100-01-01T00:00:00Z"},
        {"model_version": "999"},
        {"model_name": "another-model"},
    ],
)
def test_a_cursor_sent_with_another_time_version_or_model_is_refused(server, api_records, changed):
    """Every filter is part of the search a cursor continues, not only the person and band; the same
    instant written in another zone is still the same search."""
    base = {"person_id": "P-cursor-c", "since": "2001-01-01T01:00:00+01:00", "limit": 1}
    with server.client("scorer") as scorer:
        for record in api_records[23:25]:
            assert (
                scorer.post("/v1/scores", json={"person_id": "P-cursor-c", "record": record}).status_code
                == 201
            )
    with server.client("reviewer") as reviewer:
        cursor = reviewer.get("/v1/scores", params=base).json()["next_cursor"]
        same = reviewer.get("/v1/scores", params={**base, "since": "2001-01-01T00:00:00Z", "cursor": cursor})
        other = reviewer.get("/v1/scores", params={**base, **changed, "cursor": cursor})
    assert same.status_code == 200 and len(same.json()["items"]) == 1, same.text[:200]
    assert other.status_code == 422, other.text[:200]
    [error] = other.json()["errors"]
    assert error["field"] == "query.cursor" and error["value"] == cursor


def test_an_offset_sent_with_a_cursor_is_refused_naming_both(server, api_records):
    """The cursor says where the page starts; an offset on top of it would skip scores from there."""
    with server.client("scorer") as scorer:
        for record in api_records[21:23]:
            body = {"person_id": "P-cursor-offset", "record": record}
            assert scorer.post("/v1/scores", json=body).status_code == 201
    params = {"person_id": "P-cursor-offset", "limit": 1}
    with server.client("reviewer") as reviewer:
        cursor = reviewer.get("/v1/scores", params=params).json()["next_cursor"]
        zero = reviewer.get("/v1/scores", params={**params, "cursor": cursor, "offset": 0})
        refused = reviewer.get("/v1/scores", params={**params, "cursor": cursor, "offset": 1})
    assert zero.status_code == 200 and len(zero.json()["items"]) == 1
    assert_problem(refused, 422, "/v1/scores")
    assert refused.json()["errors"] == [
        {
            "field": "query.offset",
            "message": "offset cannot be combined with cursor: the cursor already says where the page starts",
            "value": 1,
        }
    ]


def test_a_page_ending_on_the_last_score_has_no_next_cursor(server, api_records):
    """Two scores on a page of two: a next_cursor would send a client on to an empty page."""
    person = "P-last-page"
    with server.client("scorer") as scorer:
        for record in api_records[16:18]:
            assert scorer.post("/v1/scores", json={"person_id": person, "record": record}).status_code == 201
    with server.client("reviewer") as reviewer:
        full = reviewer.get("/v1/scores", params={"person_id": person, "limit": 2}).json()
        first = reviewer.get("/v1/scores", params={"person_id": person, "limit": 1}).json()
    assert (len(full["items"]), full["total"], full["next_cursor"]) == (2, 2, None)
    assert len(first["items"]) == 1 and first["next_cursor"] is not None


@pytest.mark.parametrize(
    "cursor",
    ["x", "not base64 !"]
    + [
        base64.urlsafe_b64encode(text.encode()).decode()
        for text in (
            "[]",
            '{"a": 1}',
            '["not a time", "id"]',
            "[1, 2]",
            '["2026-11-23T10:00:00", "no zone"]',
            '["2026-11-23T10:00:00Z", 1]',
            '["0001-01-01T00:00:00+14:00", "before year 1 in UTC"]',
        )
    ],
)
def test_a_tampered_cursor_is_refused_not_crashed(server, scores, cursor):
    """Alone, and followed by the digest of the search's filters as a next_cursor is, so that its position
    is read: a time without a zone or an id that is not text got past the digest check to the position."""
    with server.client("reviewer") as reviewer:
        given = reviewer.get("/v1/scores", params={"limit": 1}).json()["next_cursor"]
        signed = f"{cursor}.{given.rpartition('.')[2]}"
        for sent in (cursor, signed):
            response = reviewer.get("/v1/scores", params={"cursor": sent})
            with_offset = reviewer.get("/v1/scores", params={"cursor": sent, "offset": 5})
            assert_problem(response, 422, "/v1/scores")
            [error] = response.json()["errors"]
            assert error["field"] == "query.cursor" and error["value"] == sent
            assert "next_cursor" in error["message"]
            assert with_offset.status_code == 422


@pytest.mark.parametrize(
    ("since", "until"),
    [("2026-11-24T00:00:00Z", "2026-11-23T00:00:00Z"), ("2026-11-24T01:00:00+01:00", "2026-11-24T00:00:00Z")],
)
def test_a_time_range_that_ends_before_it_starts_is_refused(server, since, until):
    """since is inclusive and until exclusive, so until at or before since matches nothing by
    construction: an empty page would read as 'no scores then'."""
    with server.client("reviewer") as reviewer:
        response = reviewer.get("/v1/scores", params={"since": since, "until": until})
    assert_problem(response, 422, "/v1/scores")
    [error] = response.json()["errors"]
    assert error["field"] == "query.until" and error["value"] == until
    assert error["message"] == (
        "until must be later than since (2026-11-24T00:00:00Z, in UTC); until is exclusive"
    )


def test_protected_attribute_is_stored_but_changes_nothing(server, api_records):
    record = api_records[4]
    flipped = {**record, "Race": "WHITE" if record.get("Race") == "BLACK" else "BLACK"}
    with server.client("scorer") as client:
        first = client.post("/v1/scores", json={"record": record}).json()
        second = client.post("/v1/scores", json={"record": flipped}).json()
    assert first["risk"] == second["risk"]
    assert first["explanation"]["risk"] == second["explanation"]["risk"]


def test_model_endpoint_shows_metrics_baselines_fairness_and_card(server, registry):
    with server.client("reviewer") as client:
        body = client.get("/v1/model").json()
    assert body["version"] == registry.version and body["alias"] == "champion"
    assert {"logistic", "incumbent"} <= set(body["baselines"])
    assert "auc" in body["metrics"]["risk"]
    assert "Race" in body["fairness"]
    assert body["model_card"].startswith("# Model card")
    assert "Race" not in body["inputs"]
    recorded = MlflowClient().get_model_version("reintegra", registry.version).tags.get(FORCED_REASON_TAG)
    assert body["forced_promotion_reason"] == recorded


def test_the_model_publishes_the_cut_points_and_thresholds_its_scores_follow(server, api_records, spec):
    """A case-management system could show a band but not where it begins, nor a need's flag threshold:
    GET /v1/model said neither. From what it says now, a client puts each score in its band and flags
    each need as the server does."""
    with server.client("reviewer") as reviewer:
        model = reviewer.get("/v1/model").json()
    with server.client("scorer") as scorer:
        batch = scorer.post("/v1/scores:batch", json={"items": [{"record": r} for r in api_records[:60]]})
    bands, thresholds = model["risk_bands"], model["need_flag_thresholds"]
    assert bands["labels"] == spec.risk_bands.labels and bands["cut_points"] == spec.risk_bands.cut_points
    assert bands["operating_threshold"] == spec.gates.operating_threshold
    assert set(thresholds) == {need.name for need in spec.needs}
    scores = [item["score"] for item in batch.json()["items"]]
    assert len({score["risk"]["band"] for score in scores}) >= 3, "scores that fall in several bands"
    for score in scores:
        probability = score["risk"]["probability"]
        assert score["risk"]["band"] == bands["labels"][sum(probability >= c for c in bands["cut_points"])]
        for need in score["needs"]:
            if need["observed"] is None:
                assert need["flagged"] == (need["probability"] >= thresholds[need["need"]])


def test_a_score_and_the_model_are_revalidated_by_etag_and_every_read_is_recorded(server, api_records):
    """GET /v1/scores/{id} and GET /v1/model had no validator: a client polling the model or re-reading a
    score (which never changes) fetched 35-100 kB each time. They carry a strong ETag, a Cache-Control that
    keeps them out of shared caches and revalidated, and answer 304 to an If-None-Match naming it; a 304
    still shows the client the score it holds, so it is recorded as a read."""
    with server.client("scorer") as scorer:
        score_id = scorer.post("/v1/scores", json={"person_id": "P-etag", "record": api_records[2]}).json()[
            "id"
        ]
    with server.client("reviewer") as reviewer:
        first = reviewer.get(f"/v1/scores/{score_id}")
        tag = first.headers.get("etag", "")
        held = [
            reviewer.get(f"/v1/scores/{score_id}", headers={"If-None-Match": sent})
            for sent in (tag, f'"other", W/{tag}', "*")
        ]
        head = reviewer.head(f"/v1/scores/{score_id}", headers={"If-None-Match": tag})
        stale = reviewer.get(f"/v1/scores/{score_id}", headers={"If-None-Match": '"other"'})
        missing = reviewer.get("/v1/scores/no-such-score", headers={"If-None-Match": "*"})
        model = reviewer.get("/v1/model")
        model_held = reviewer.get("/v1/model", headers={"If-None-Match": model.headers.get("etag", "")})
    assert re.fullmatch(r'"[0-9a-f]{32}"', tag), "strong: no W/ prefix"
    assert first.status_code == 200 and first.headers["cache-control"] == "private, no-cache"
    for answer in [*held, head, model_held]:
        assert answer.status_code == 304 and answer.content == b""
        assert answer.headers["cache-control"] == "private, no-cache"
    assert [answer.headers["etag"] for answer in [*held, head, stale]] == [tag] * 5
    assert stale.status_code == 200 and stale.json() == first.json()
    assert missing.status_code == 404 and missing.headers["cache-control"] == "no-store"
    assert model_held.headers["etag"] == model.headers["etag"] != tag
    engine = make_engine(server.database)
    with Session(engine) as session:
        reads = session.scalars(select(ScoreReadRow.request_id).where(ScoreReadRow.score_id == score_id))
        recorded = set(reads)
    engine.dispose()
    answers = [first, *held, head, stale]
    assert recorded == {answer.headers["x-request-id"] for answer in answers}, "every read, 304s too"


def test_openapi_documents_the_conditional_reads(server):
    """A generated client learns of the ETag, the 304 and If-None-Match from the document only: with the
    route's documentation dropped, every revalidation test still passed."""
    with server.client("reviewer") as reviewer:
        paths = reviewer.get("/openapi.json").json()["paths"]
    for path in ("/v1/scores/{score_id}", "/v1/model"):
        read = paths[path]["get"]
        for status in ("200", "304"):
            assert {"ETag", "Cache-Control"} <= set(read["responses"][status]["headers"]), (path, status)
        assert "private, no-cache" in read["responses"]["200"]["headers"]["Cache-Control"]["description"]
        assert read["responses"]["304"]["description"].startswith("Not modified")
        assert [p["name"] for p in read["parameters"] if p["in"] == "header"] == ["If-None-Match"], path
        assert {"401", "403", "503"} <= set(read["responses"]), "the route's other answers are kept"
    assert paths["/v1/scores/{score_id}"]["get"]["responses"]["404"]["description"] == "No score with this id"


def test_health_readiness_and_metrics(server, api_records):
    with (
        server.client() as anonymous,
        server.client("reviewer") as reviewer,
        server.client("scorer") as scorer,
    ):
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        assert anonymous.get("/readyz").status_code == 200
        assert anonymous.get("/metrics").status_code == 401
        scorer.post("/v1/scores", json={"record": api_records[0]})
        assert anonymous.post("/v1/scores:batch", json={"items": []}).status_code == 401
        assert anonymous.get("/review/static/review.css").status_code == 200
        assert anonymous.get("/no/such/page-1234").status_code == 404
        assert anonymous.get("/openapi.json").status_code == 200
        text = reviewer.get("/metrics").text
    assert 'reintegra_requests_total{method="GET",route="/openapi.json",status="200"}' in text
    assert 'reintegra_requests_total{method="GET",route="/review/static",status="200"}' in text
    assert 'reintegra_requests_total{method="GET",route="unmatched",status="404"}' in text
    assert "page-1234" not in text and "review.css" not in text
    assert 'reintegra_requests_total{method="POST",route="/v1/scores",status="201"}' in text
    assert 'reintegra_requests_total{method="POST",route="/v1/scores:batch",status="401"}' in text
    assert 'reintegra_request_seconds_count{method="POST",route="/v1/scores",status="201"}' in text
    assert "reintegra_scores_total{band=" in text
    assert 'reintegra_model_version{name="reintegra",version=' in text


def test_every_answer_refuses_sniffing_and_framing(server):
    """Only API answers and rendered pages carried nosniff and a framing ban: /docs (Swagger UI, where
    a key is typed in) could be framed by any site, and the static files, the plots, /openapi.json and
    /metrics could be sniffed as another type. Every answer now carries both, once."""
    with server.page_client() as browser, server.client("reviewer") as reviewer:
        answers = {
            "/docs": browser.get("/docs"),
            "/openapi.json": browser.get("/openapi.json"),
            "/static-offline-docs/swagger-ui.css": browser.get("/static-offline-docs/swagger-ui.css"),
            "/review/static/review.js": browser.get("/review/static/review.js"),
            "/review/model/1/artifacts/none.png": browser.get("/review/model/1/artifacts/none.png"),
            "/review/scores": browser.get("/review/scores"),
            "/healthz": reviewer.get("/healthz"),
            "/metrics": reviewer.get("/metrics"),
            "/v1/model": reviewer.get("/v1/model"),
        }
    for path, answer in answers.items():
        assert answer.headers.get_list("x-content-type-options") == ["nosniff"], path
        assert answer.headers.get_list("x-frame-options") == ["DENY"], path


def test_request_id_is_kept_or_generated(server):
    with server.client() as client:
        kept = client.get("/healthz", headers={"X-Request-ID": "case-123"})
        unsafe = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert kept.headers["x-request-id"] == "case-123"
    assert (
        unsafe.headers["x-request-id"] != "bad id with spaces" and len(unsafe.headers["x-request-id"]) == 32
    )


def test_a_hostile_request_id_is_replaced_stored_as_replaced_and_logged(own_server, api_records):
    """An X-Request-ID the audit trail cannot keep as sent is replaced by a generated one, and the log
    says so (without the value, which could forge a log line), so a client's id that went missing is
    explained; the stored score holds the id the answer names."""
    hostile = ["x" * 65, "a" * 8000, "bad id", "caf\u00e9", "a/../b", "<script>", "id;drop", "%0d%0a"]
    server = own_server
    start = server.log_size()
    with server.client() as client:
        answers = [
            client.get("/healthz", headers={"X-Request-ID": value.encode("latin-1")}) for value in hostile
        ]
    with server.client("scorer") as scorer:
        body = {"person_id": "P-rid", "record": api_records[0]}
        scored = scorer.post("/v1/scores", json=body, headers={"X-Request-ID": "x" * 65})
    with server.client("reviewer") as reviewer:
        stored = reviewer.get(f"/v1/scores/{scored.json()['id']}").json()
    for value, answer in zip(hostile, answers, strict=True):
        assert re.fullmatch("[0-9a-f]{32}", answer.headers["x-request-id"]), value
    assert stored["request_id"] == scored.headers["x-request-id"] != "x" * 65
    log = server.log_since(start)
    for answer in answers[:2]:
        line = f"[{answer.headers['x-request-id']}] replaced X-Request-ID: it has more than 64 characters"
        assert line in log
    allowed = "has characters other than letters, digits and . _ : -"
    assert f"[{answers[2].headers['x-request-id']}] replaced X-Request-ID: it {allowed}" in log
    assert "<script>" not in log and "x" * 65 not in log


def test_openapi_documents_the_generated_record(server):
    with server.client() as client:
        schema = client.get("/openapi.json").json()
    record = schema["components"]["schemas"]["Record"]
    assert "Prison_Years" in record["properties"] and "Race" in record["properties"]
    assert record["additionalProperties"] is False
    assert record["examples"]
    score = record["properties"]["Supervision_Risk_Score_First"]["anyOf"][0]
    assert score == {"type": "number", "minimum": 1, "maximum": 10}, "JSON Schema's words, not ge/le"
    assert {
        "/v1/scores",
        "/v1/scores:batch",
        "/v1/scores/{score_id}",
        "/v1/model",
        "/v1/admin/reload",
    } <= set(schema["paths"])


def test_openapi_names_operations_as_their_handlers_in_a_valid_document(server):
    """A client generated from the document named its methods after FastAPI's default operation ids
    (`create_score_v1_scores_post`), which change when a path moves; the document must also load."""
    with server.client() as client:
        document = client.get("/openapi.json").json()
    ids = [
        operation["operationId"]
        for operations in document["paths"].values()
        for operation in operations.values()
    ]
    assert sorted(ids) == [
        "create_score",
        "create_scores_batch",
        "list_scores",
        "read_health",
        "read_metrics",
        "read_model",
        "read_model_drift",
        "read_readiness",
        "read_score",
        "reload_model",
    ]
    schemathesis.openapi.from_dict(document).validate()


def examples_with_schemas(node: Any, where: str = "#") -> Iterator[tuple[str, dict, Any]]:
    """Every example in an OpenAPI document with the schema it illustrates: a media type's or parameter's
    `example` and `examples`, and a schema's own `examples`."""
    if isinstance(node, dict):
        if "schema" in node:
            if "example" in node:
                yield f"{where}/example", node["schema"], node["example"]
            for name, example in node.get("examples", {}).items():
                yield f"{where}/examples/{name}", node["schema"], example["value"]
        elif isinstance(node.get("examples"), list):
            for index, example in enumerate(node["examples"]):
                yield f"{where}/examples/{index}", node, example
        for key, value in node.items():
            if key not in ("example", "examples"):
                yield from examples_with_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from examples_with_schemas(value, f"{where}/{index}")


def test_every_example_in_the_document_validates_against_its_schema(server):
    """A client, a mock server or Swagger UI's "try it out" takes the examples as the API's words: the drift
    example had lost its null `window.until` and `message` (FastAPI drops nulls from examples), which the
    schema requires and the server sends."""
    with server.client() as client:
        document = client.get("/openapi.json").json()
    validate_openapi(document)
    examples = list(examples_with_schemas(document))
    drift = "#/paths//v1/model/drift/get/responses/200/content/application/json/example"
    assert {"#/components/schemas/Record/examples/0", drift} <= {where for where, _, _ in examples}
    for where, schema, example in examples:
        validator = Draft202012Validator({**schema, "components": document["components"]})
        assert [error.message for error in validator.iter_errors(example)] == [], where


def test_openapi_documents_errors_as_the_problems_the_server_sends(server):
    """Every documented error is application/problem+json with the Problem schema, as sent; not a JSON
    body the server never sends beside a problem+json one without a schema."""
    with server.client("reviewer") as client:
        schema = client.get("/openapi.json").json()
        missing = client.get("/v1/scores/no-such-score")
    problem = schema["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "request_id", "errors"} <= set(problem["properties"])
    assert "409" in problem["properties"]["record_changes"]["description"], "the reload's 409 sends it"
    errors = {
        (method, path, status): response.get("content", {})
        for path, operations in schema["paths"].items()
        if path.startswith("/v1/")
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status[0] in "45"
    }
    assert len(errors) >= 30
    for where, content in errors.items():
        assert content == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}, where
    assert ("get", "/v1/scores/{score_id}", "404") in errors
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM


def test_openapi_describes_batch_items_and_field_errors_as_sent(server, api_records):
    """A batch item is a POST /v1/scores body and each error is {field, message, value}: the document
    said only 'object' for both, so a client generated from it could not build or read them."""
    with server.client("scorer") as client:
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        batch = client.post("/v1/scores:batch", json={"items": [{"record": {"Gender": "X"}}]}).json()
        single = client.post("/v1/scores", json={"record": {"Gender": "X"}}).json()

    def ref(node: dict) -> str:
        return next(s for s in node.get("anyOf", [node]) if s.get("type") != "null")["items"]["$ref"]

    assert schema["BatchScoreRequest"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/ScoreRequest"
    }
    assert ref(schema["Problem"]["properties"]["errors"]) == "#/components/schemas/FieldError"
    assert ref(schema["BatchItem"]["properties"]["errors"]) == "#/components/schemas/FieldError"
    documented = set(schema["FieldError"]["properties"])
    assert documented == {"field", "message", "value"} == set(schema["FieldError"]["required"])
    for error in [*batch["items"][0]["errors"], *single["errors"]]:
        assert set(error) == documented


def test_openapi_lists_the_fields_a_score_is_sent_with_and_requires_those_always_sent(server, api_records):
    """The 201's schema listed `record`, which only a read sends, and the read's listed it as optional and
    nullable though every read sends it: a generated client made it Optional and one built on the 201
    waited for a field that never came. Only `warnings` is sent some times and not others."""
    with server.client("scorer") as scorer:
        schema = scorer.get("/openapi.json").json()["components"]["schemas"]
        made = scorer.post("/v1/scores", json={"record": api_records[2]}).json()
    with server.client("reviewer") as reviewer:
        read = reviewer.get(f"/v1/scores/{made['id']}").json()
    for body, name in ((made, "ScorePublic"), (read, "ScoreRead")):
        assert set(schema[name]["properties"]) - {"warnings"} == set(body) - {"warnings"}
        assert set(schema[name]["required"]) == set(body) - {"warnings"}
    assert schema["ScoreRead"]["properties"]["record"]["type"] == "object"


def test_openapi_says_what_a_search_page_counts(server):
    """A client read `total` as the scores still to come on a cursor walk; it counts every match, and
    grows as scores arrive."""
    with server.client("reviewer") as reviewer:
        page = reviewer.get("/openapi.json").json()["components"]["schemas"]["ScorePage"]["properties"]
    assert "Every score the filters match, on every page, a cursor's too" in page["total"]["description"]


def test_openapi_describes_every_field_of_every_answer_and_every_parameter(server):
    """An integrator reads what a field means in the document: 74 fields of the answers (a contribution's
    sign and units, what base_value is, which time created_at is) were a bare type, and so were five query
    parameters of GET /v1/scores (person_id, band, model_version, limit, offset)."""
    with server.client("reviewer") as reviewer:
        document = reviewer.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    answered = [
        content["schema"]
        for path in document["paths"].values()
        for operation in path.values()
        for status, response in operation.get("responses", {}).items()
        if status.startswith(("2", "4", "5"))
        for content in response.get("content", {}).values()
        if "schema" in content
    ]
    seen: set[str] = set()
    undescribed = []
    while answered:
        node = answered.pop()
        if isinstance(node, list):
            answered += node
        elif isinstance(node, dict):
            name = node.get("$ref", "").rsplit("/", 1)[-1]
            if name and name not in seen:
                seen.add(name)
                schema = schemas[name]
                undescribed += [
                    f"{name}.{f}"
                    for f, field in schema.get("properties", {}).items()
                    if not field.get("description")
                ]
                answered.append(schema)
            answered += list(node.values())
    assert {"ScorePublic", "Contribution", "Explained", "BatchPublic", "ModelPublic", "Problem"} <= seen
    assert undescribed == [], undescribed
    parameters = {
        (path, parameter["in"], parameter["name"]): parameter.get("description")
        for path, operations in document["paths"].items()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
    }
    assert ("/v1/scores", "query", "band") in parameters
    assert [where for where, description in parameters.items() if not description] == []


def test_times_are_utc_with_their_zone(server, api_records):
    with server.client("scorer") as scorer:
        created = scorer.post("/v1/scores", json={"person_id": "P-time", "record": api_records[1]}).json()
    with server.client("reviewer") as reviewer:
        listed = reviewer.get("/v1/scores", params={"person_id": "P-time"}).json()["items"][0]
        stored = reviewer.get(f"/v1/scores/{created['id']}").json()
    assert created["created_at"].endswith("Z")
    assert listed["created_at"] == stored["created_at"] == created["created_at"]


@pytest.mark.parametrize(
    "params",
    [
        {"since": "0001-01-01T00:00:00+14:00"},
        {"until": "9999-12-31T23:59:59-14:00"},
        {"offset": str(10**20)},
        {"person_id": "P\x00"},
    ],
)
def test_out_of_range_queries_are_refused_not_crashed(server, params):
    with server.client("reviewer") as client:
        response = client.get("/v1/scores", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == f"query.{next(iter(params))}"


def test_a_time_finer_than_a_microsecond_is_refused(server):
    """Scores are timed to the microsecond: a finer `until`, cut there, would leave out a score before it."""
    with server.client("reviewer") as client:
        for name in ("since", "until"):
            response = client.get("/v1/scores", params={name: "2026-11-25T00:35:50.2513201Z"})
            assert response.status_code == 422
            error = response.json()["errors"][0]
            assert error["field"] == f"query.{name}"
            assert (
                "scores are timed to the microsecond: give at most 6 digits after the seconds"
                in error["message"]
            )
        assert client.get("/v1/scores", params={"until": "2026-11-25T00:35:50.251320Z"}).status_code == 200


@pytest.mark.parametrize("value", ["20261124", "1764000000", "1.7e9", " -5 "])
def test_a_number_is_refused_as_a_time(server, value):
    """The document says date-time, and pydantic read a number as seconds since 1970: `since=20261124`, a
    date in ISO 8601's basic format, searched from August 1970 without a word."""
    with server.client("reviewer") as client:
        for name in ("since", "until"):
            response = client.get("/v1/scores", params={name: value})
            assert response.status_code == 422, response.text
            error = response.json()["errors"][0]
            assert error["field"] == f"query.{name}" and error["value"] == value
            assert "is a number, not a time: write a date and time as in RFC 3339" in error["message"]


def test_a_zone_whose_plus_arrived_as_a_space_is_named(server):
    """`since=2026-11-25T09:30:00+01:00` typed into an address reaches the server with a space for its
    "+": pydantic's "unexpected extra characters at the end of the input" did not say so."""
    with server.client("reviewer") as client:
        response = client.get("/v1/scores?since=2026-11-25T09:30:00.5+01:00")
        encoded = client.get("/v1/scores?since=2026-11-25T09:30:00.5%2B01:00")
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "query.since" and error["value"] == "2026-11-25T09:30:00.5 01:00"
    assert error["message"] == (
        "'2026-11-25T09:30:00.5 01:00' has a space before its zone: an address reads a '+' as a space, so "
        "write the zone's '+' as %2B (2026-11-25T09:30:00.5%2B01:00), or give the time in UTC with Z"
    )
    assert encoded.status_code == 200, encoded.text


# Every line a server writes: time, level, logger, worker pid and request id ('-' outside a request).
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING|ERROR) [\w.]+ pid=\d+ \[[^\]]+\] ")


def test_metrics_add_up_across_workers(registry, tmp_path, api_records):
    """With two workers, whichever answers the scrape counts the scores both of them returned."""
    server = start_server(registry, tmp_path, workers=2)
    scored = 12
    try:
        scorer = {"Authorization": f"Bearer {server.keys['scorer']}", "Connection": "close"}
        reviewer = {"Authorization": f"Bearer {server.keys['reviewer']}", "Connection": "close"}
        bands = Counter()
        for record in api_records[:scored]:
            response = httpx.post(f"{server.base_url}/v1/scores", json={"record": record}, headers=scorer)
            assert response.status_code == 201
            bands[response.json()["risk"]["band"]] += 1
        scrapes = [httpx.get(f"{server.base_url}/metrics", headers=reviewer).text for _ in range(6)]
    finally:
        server.stop()
    pids = set()
    for text in scrapes:
        families = {f.name: f for f in text_string_to_metric_families(text)}
        samples = families["reintegra_scores"].samples
        totals = {s.labels["band"]: s.value for s in samples if s.name.endswith("_total")}
        assert totals == bands, "each score is counted under its own band"
        serving = [s for s in families["reintegra_model_version"].samples if s.value == 1]
        pids |= {s.labels["pid"] for s in serving}
        assert {s.labels["version"] for s in serving} == {registry.version}
    assert len(pids) == 2


def test_a_worker_killed_outright_no_longer_shows_as_serving(registry, tmp_path):
    """uvicorn replaces a SIGKILLed worker; the scrape shows the new one serving, not the dead one."""
    server = start_server(registry, tmp_path, workers=2)
    reviewer = {"Authorization": f"Bearer {server.keys['reviewer']}", "Connection": "close"}

    def serving_pids() -> set[str]:
        text = httpx.get(f"{server.base_url}/metrics", headers=reviewer).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        return {s.labels["pid"] for s in families["reintegra_model_version"].samples if s.value == 1}

    try:
        deadline = time.monotonic() + 60
        while len(before := serving_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        victim = min(before)
        os.kill(int(victim), signal.SIGKILL)
        # A new worker imports the app and loads the model: seconds alone, a minute or more on a busy host.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            after = serving_pids()
            if len(after - before) == 1:
                break
            time.sleep(0.5)
    finally:
        server.stop()
    assert len(before) == 2
    assert len(after - before) == 1, "uvicorn started a worker in the dead one's place"
    assert victim not in after
    assert len(after) == 2
    # uvicorn's own lines (the death, the parent's start and stop) read like the app's: when, and which pid
    log = (tmp_path / "server.log").read_text().splitlines()
    assert any(line.endswith(f"Child process [{victim}] died") for line in log)
    assert [line for line in log if not LOG_LINE.match(line)] == []


def test_sighup_replaces_every_worker_while_requests_go_on(registry, tmp_path, api_records):
    """uvicorn's rolling restart: each new worker must be ready within the health-check timeout, and
    with uvicorn's 5 s (a worker imports and loads the model in about 5 s) every SIGHUP was abandoned."""
    server = start_server(registry, tmp_path, workers=2)
    reviewer = {"Authorization": f"Bearer {server.keys['reviewer']}"}
    scorer = {"Authorization": f"Bearer {server.keys['scorer']}"}

    def serving_pids() -> set[str]:
        text = httpx.get(f"{server.base_url}/metrics", headers=reviewer).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        return {s.labels["pid"] for s in families["reintegra_model_version"].samples if s.value == 1}

    statuses = Counter()
    try:
        before = serving_pids()
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (len(after := serving_pids()) == 2 and not after & before):
            response = httpx.post(
                f"{server.base_url}/v1/scores", json={"record": api_records[0]}, headers=scorer
            )
            statuses[response.status_code] += 1
    finally:
        server.stop()
    assert len(before) == 2 and len(after) == 2 and not after & before, "both workers were replaced"
    assert set(statuses) == {201}, statuses


def test_a_request_sent_as_the_server_shuts_down_is_answered(registry, tmp_path):
    """uvicorn closed at once every connection with no request under way, so one sent just as a worker
    stopped (SIGTERM, or the rolling restart of SIGHUP) ended unanswered: 'Server disconnected without
    sending a response' during a SIGHUP under load."""
    server = start_server(registry, tmp_path)
    address = urlsplit(server.base_url)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    try:
        with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
            connection.sendall(request)
            first = b""
            while not first.endswith(b'{"status":"ok"}'):  # the whole answer: the connection is idle now
                first += connection.recv(65536)
            server.process.send_signal(signal.SIGTERM)
            log, deadline = tmp_path / "server.log", time.monotonic() + 30
            while "Shutting down" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.02)
            connection.sendall(request)
            answer = b"".join(iter(lambda: connection.recv(65536), b""))
    finally:
        server.stop()
    head = answer.partition(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 200") and b"\r\nconnection: close" in head, answer


@pytest.mark.parametrize(
    ("path", "advice", "length"),
    [
        ("/v1/scores:batch", "; send fewer records a batch", 10**9),
        ("/v1/scores", "", 10**9),
        ("/v1/scores:batch", "; send fewer records a batch", 8 * 1024 * 1024 + 1),
    ],
    ids=["batch", "one score", "one byte over"],
)
def test_an_oversized_body_is_refused_before_it_is_read(server, path, advice, length):
    """A declared length over the limit, by a gigabyte or by one byte, gets 413 at once; the server never
    waits for the body. Only a batch is told to send fewer records: one score's body was told to send
    smaller batches."""
    host, port = server.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", path)
    connection.putheader("Authorization", f"Bearer {server.keys['scorer']}")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(length))
    connection.endheaders()
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 413 and response.getheader("content-type") == PROBLEM
    assert body["detail"] == (
        f"the request body is larger than the 8388608 bytes allowed (REINTEGRA_MAX_BODY_BYTES){advice}"
    )
    assert body["request_id"] and body["title"] == "Content Too Large"


def test_an_oversized_streamed_body_is_refused(server):
    """A chunked body with no declared length is cut off once it passes the limit, with the title of a
    declared one: it was Python 3.11's 'Request Entity Too Large', the name RFC 9110 replaced."""
    chunk = b" " * 65536

    def stream():
        yield b'{"items": ['
        for _ in range(8 * 1024 * 1024 // len(chunk) + 1):
            yield chunk

    with server.client("scorer") as client:
        response = client.post(
            "/v1/scores:batch", content=stream(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413 and response.headers["content-type"] == PROBLEM
    assert "larger than" in response.json()["detail"] and response.json()["title"] == "Content Too Large"


def _answer_to_raw(server, sent: bytes) -> bytes:
    """The start of the server's answer to bytes sent raw in one write, however incomplete."""
    address = urlsplit(server.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(sent)
        return connection.recv(200)


def test_an_oversized_request_head_is_refused_not_buffered(server):
    """httptools buffers a request head without limit: one unauthenticated 100 MB header held the
    event loop 10 s and a 200 MB one grew the worker by 340 MB. Past 64 KiB the head is a 400."""
    start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: "
    assert _answer_to_raw(server, start + b"a" * 16 * 1024 + b"\r\n\r\n").startswith(b"HTTP/1.1 200 ")
    assert _answer_to_raw(server, start + b"a" * 80 * 1024).startswith(b"HTTP/1.1 400 ")
    body = b"{}" + b" " * 80 * 1024
    post = b"POST /v1/scores HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    assert _answer_to_raw(server, post + body).startswith(b"HTTP/1.1 401 "), (
        "a body read with its head is no head"
    )
    with httpx.Client(base_url=server.base_url, headers={"X-Filler": "a" * 2048}) as client:
        answers = {client.get("/healthz").status_code for _ in range(40)}
    assert answers == {200}, "80 kB of heads over one keep-alive connection are 40 heads, not one"


def test_a_request_head_sent_too_slowly_is_cut_off(server):
    """uvicorn sets no deadline on a request head: 200 connections that sent half a head (or nothing)
    held a worker's file descriptors until /healthz was refused, for as long as they stayed open."""
    address = urlsplit(server.base_url)
    wait = 3 * HEAD_SECONDS  # a loaded test machine may fire the server's timer late
    with (
        socket.create_connection((address.hostname, address.port), timeout=wait) as partial,
        socket.create_connection((address.hostname, address.port), timeout=wait) as silent,
    ):
        started = time.monotonic()
        partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer = b"".join(iter(lambda: partial.recv(65536), b""))  # the server closes the connection
        assert silent.recv(65536) == b"", "a connection that sent nothing is closed without an answer"
        elapsed = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["detail"] == f"the request head was not complete after {HEAD_SECONDS} s"
    assert HEAD_SECONDS - 1 < elapsed < 2 * HEAD_SECONDS
    with httpx.Client(base_url=server.base_url) as client:
        assert client.get("/healthz").status_code == 200


def test_a_request_body_that_stops_arriving_is_cut_off(server):
    """The sign-in form is posted without a key: a body announced with Content-Length that never came
    held the connection 30 s and more, the slowloris attack again past the head's deadline. A body
    that sends nothing for BODY_IDLE_SECONDS gets a 408 and its connection is closed."""
    address = urlsplit(server.base_url)
    head = (
        b"POST /review/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 100\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=2 * BODY_IDLE_SECONDS) as slow:
        slow.sendall(head + b"key=")
        time.sleep(BODY_IDLE_SECONDS / 4)
        slow.sendall(b"rk_")  # a byte now and then restarts the wait
        started = time.monotonic()
        answer = b"".join(iter(lambda: slow.recv(65536), b""))
        elapsed = time.monotonic() - started
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout" and b"application/problem+json" in rest
    detail = f"the request body stopped arriving: nothing for {BODY_IDLE_SECONDS} s"
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["detail"] == detail
    assert BODY_IDLE_SECONDS - 1 < elapsed < 1.5 * BODY_IDLE_SECONDS


def test_a_request_the_http_parser_refuses_gets_a_problem_too(server):
    """uvicorn answers what it cannot parse (and the head limit) in plain text, before the app: an
    integrator's client reading every error as problem+json met the one body that was not. A head over
    the limit that arrived complete was answered 200 when its last read completed it (100 KiB did)."""
    address = urlsplit(server.base_url)
    start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: "
    too_large = f"the request head is larger than the {MAX_HEAD_BYTES} bytes allowed"
    for sent, detail in (
        (start + b"a" * 80 * 1024, too_large),
        (start + b"a" * 100 * 1024 + b"\r\n\r\n", too_large),
        (b"GARBAGE\r\n\r\n", "Invalid HTTP request received."),
    ):
        with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
            connection.sendall(sent)
            answer = b"".join(iter(lambda c=connection: c.recv(65536), b""))  # it closes the connection
        head, _, body = answer.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().lower().split("\r\n")[1:])
        assert head.startswith(b"HTTP/1.1 400 ") and headers["content-type"] == PROBLEM
        problem = json.loads(body)
        assert problem["status"] == 400 and problem["detail"] == detail
        assert problem["request_id"] == headers["x-request-id"]


def test_a_post_without_a_valid_key_is_refused_before_its_body_is_read(server):
    """FastAPI parsed a body before checking the key: anyone could make the server parse 8 MiB of JSON
    per request (0.65 s of its event loop, 50 MB). The 401 now comes before a byte of the body."""
    for authorization in (b"", b"Authorization: Bearer rk_nope\r\n"):
        head = b"POST /v1/scores HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n" + authorization
        assert _answer_to_raw(server, head + b"\r\n{").startswith(b"HTTP/1.1 401 ")


def test_a_compressed_body_is_refused_as_an_unsupported_encoding(server, api_records):
    """The server reads bodies as sent; a gzip body is named as such, not reported as bad JSON."""
    body = gzip.compress(json.dumps({"record": api_records[0]}).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with server.client("scorer") as client:
        response = client.post("/v1/scores", content=body, headers=headers)
    assert response.status_code == 415 and response.headers["content-type"] == PROBLEM
    assert response.headers["accept-encoding"] == "identity"
    assert response.json()["detail"] == "the body is sent gzip-encoded; send it uncompressed"


def test_a_full_batch_fits_within_the_body_limit(server, api_records):
    items = [{"person_id": f"P-{i}", "record": api_records[i % len(api_records)]} for i in range(1000)]
    assert len(json.dumps({"items": items})) < 8 * 1024 * 1024
    with server.client("scorer") as client:
        response = client.post("/v1/scores:batch", json={"items": items})
    assert response.status_code == 200 and response.json()["scored"] == 1000


def test_an_unseen_free_text_value_is_said_in_the_score_and_on_its_page(
    registry, free_text_spec, free_text_raw, tmp_path
):
    from training.promote import promote
    from training.train import train

    data = tmp_path / "free_text.csv"
    free_text_raw.to_csv(data, index=False)
    version = train(free_text_spec, data, name="free-text", seed=1).model_version
    promote("free-text", version, force=True, reason="test")
    server = start_server(registry, tmp_path, extra_env={"REINTEGRA_MODEL_NAME": "free-text"})
    record = {"age": 30, "employed": True, "offence": "violent", "employer": "value_1"}
    try:
        with server.client("scorer") as scorer:
            seen = scorer.post("/v1/scores", json={"record": record})
            unseen = scorer.post("/v1/scores", json={"record": {**record, "employer": "Acme <Ltd>"}})
        with server.client("reviewer") as reviewer, server.page_client() as pages:
            stored = {r.json()["id"]: reviewer.get(f"/v1/scores/{r.json()['id']}") for r in (seen, unseen)}
            page = pages.get(f"/review/scores/{unseen.json()['id']}").text
            plain_page = pages.get(f"/review/scores/{seen.json()['id']}").text
    finally:
        server.stop()
    warning = (
        "Input employer has value 'Acme <Ltd>', not seen in training: it counts as missing, as if the "
        "record had left it out"
    )
    assert unseen.json()["warnings"] == [warning]
    marked = [c for c in unseen.json()["explanation"]["risk"]["contributions"] if "unseen" in c]
    assert [(c["input"], c["unseen"]) for c in marked] == [("employer", True)]
    assert "warnings" not in seen.json() and '"unseen"' not in seen.text
    for created in (seen, unseen):
        read = stored[created.json()["id"]].json()
        assert {k: v for k, v in read.items() if k not in ("record", "key_id")} == created.json(), (
            "read back as returned"
        )
    assert '<section id="warnings"' in page and f"<li>{warning}</li>" in html.unescape(page)
    assert "<td>Acme &lt;Ltd&gt; (not seen in training: read as missing)</td>" in page, "escaped"
    assert '<section id="warnings"' not in plain_page and "not seen in training" not in plain_page


def test_metrics_keep_their_counts_to_this_server_when_an_operator_sets_the_folder(
    registry, tmp_path, api_records
):
    """A `PROMETHEUS_MULTIPROC_DIR` set for a one-worker server starts empty: a restart does not add the
    previous run's counts to the new one's. A folder not there yet is made (every worker failed on it)."""
    folder = tmp_path / "metrics" / "reintegra"
    counts = []
    for scored in (2, 1):
        server = start_server(registry, tmp_path, extra_env={"PROMETHEUS_MULTIPROC_DIR": str(folder)})
        try:
            with server.client("scorer") as scorer, server.client("reviewer") as reviewer:
                for record in api_records[:scored]:
                    assert scorer.post("/v1/scores", json={"record": record}).status_code == 201
                text = reviewer.get("/metrics").text
        finally:
            server.stop()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        counts.append(sum(s.value for s in families["reintegra_scores"].samples if s.name.endswith("_total")))
    assert counts == [2, 1]


def test_a_worker_file_not_yet_sized_leaves_the_scrape_whole(registry, tmp_path, api_records):
    """A worker makes its metrics file and sizes it after: a scrape in between, as a SIGHUP's new workers
    start, was a 500, and so was every scrape after a worker killed in between left the empty file."""
    folder = tmp_path / "metrics"
    server = start_server(registry, tmp_path, extra_env={"PROMETHEUS_MULTIPROC_DIR": str(folder)})
    try:
        with server.client("scorer") as scorer, server.client("reviewer") as reviewer:
            assert scorer.post("/v1/scores", json={"record": api_records[0]}).status_code == 201
            (folder / "counter_4194303.db").touch()  # a pid no live worker has
            answer = reviewer.get("/metrics")
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    assert sum(s.value for s in families["reintegra_scores"].samples if s.name.endswith("_total")) == 1


def test_unusual_methods_share_one_metrics_label(server):
    """Any method uvicorn parses (WebDAV's and others) is counted as "other": no series per method."""
    with server.client() as client:
        for method in ("PROPFIND", "MKCOL", "PURGE", "SEARCH"):
            assert client.request(method, "/healthz").status_code == 405
    with server.client("reviewer") as reviewer:
        text = reviewer.get("/metrics").text
    assert 'reintegra_requests_total{method="other",route="/healthz",status="405"} 4.0' in text
    assert "PROPFIND" not in text and "MKCOL" not in text


def test_openapi_documents_the_statuses_and_headers_the_middleware_sends(server, api_records):
    """A client generated from the document raised 'unexpected status 415' on a compressed body and
    knew of no X-Request-ID, Retry-After or Accept-Encoding: the middleware sends them outside any route,
    and Cache-Control on every /v1 answer (no-store, unless the route sets its own)."""
    gzipped = gzip.compress(json.dumps({"record": api_records[0]}).encode())
    gzip_json = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with server.client("scorer") as scorer:
        document = scorer.get("/openapi.json").json()
        sent = [
            ("post", "/v1/scores", scorer.post("/v1/scores", json={"record": api_records[0]})),
            ("post", "/v1/scores", scorer.post("/v1/scores", content=gzipped, headers=gzip_json)),
            ("post", "/v1/scores:batch", scorer.post("/v1/scores:batch", content=gzipped, headers=gzip_json)),
            ("get", "/v1/model", scorer.get("/v1/model", headers={"Authorization": "Bearer rk_nope"})),
        ]
    for method, path, response in sent:
        documented = document["paths"][path][method]["responses"].get(str(response.status_code))
        assert documented is not None, (method, path, response.status_code)
        assert response.headers["content-type"] in documented["content"]
        named = {name.lower() for name in documented.get("headers", {})}
        ours = {"x-request-id", "accept-encoding", "location", "www-authenticate", "cache-control"}
        assert ours & set(response.headers) <= named, (method, path, response.status_code)
        assert "cache-control" in response.headers
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                assert "X-Request-ID" in response.get("headers", {}), (method, path, status)
                if path.startswith("/v1/") and status not in ("400", "408"):  # those two precede the app
                    assert "Cache-Control" in response["headers"], (method, path, status)
            if path.startswith("/v1/"):
                assert "Retry-After" in operation["responses"]["503"]["headers"], (method, path)


def test_openapi_documents_the_refusals_of_the_server_limits(server):
    """The 400 and 408 the HTTP protocol sends before the app (a head too large, unreadable or too slow, a
    body that stopped arriving) were in no operation's responses, nor was the 413 of a declared length
    over the limit outside /v1, so a generated client raised 'unexpected status' on them."""
    host, port = server.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("GET", "/healthz")
    connection.putheader("Content-Length", str(10**9))
    connection.endheaders()
    too_large = connection.getresponse()
    too_large.read()
    connection.close()
    with server.client() as anonymous:
        document = anonymous.get("/openapi.json").json()
    assert too_large.status == 413
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "408", "413"):
                documented = operation["responses"].get(status)
                assert documented is not None, (method, path, status)
                assert documented["content"] == {
                    PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}
                }
                assert "X-Request-ID" in documented["headers"], (method, path, status)
            for status in ("400", "408"):
                assert "Connection" in operation["responses"][status]["headers"], (method, path, status)


def test_openapi_documents_metrics_as_text_and_its_refusals(server):
    """/metrics was documented as a JSON 200 only, though it sends Prometheus text, and a generated client
    raised 'unexpected status' on its 401 and 403; /readyz's 503 was missing too."""
    with (
        server.client() as anonymous,
        server.client("scorer") as scorer,
        server.client("reviewer") as reviewer,
    ):
        document = anonymous.get("/openapi.json").json()["paths"]
        sent = [reviewer.get("/metrics"), scorer.get("/metrics"), anonymous.get("/metrics")]
    for response in sent:
        documented = document["/metrics"]["get"]["responses"].get(str(response.status_code))
        assert documented is not None, response.status_code
        assert list(documented["content"]) == [response.headers["content-type"].split(";")[0]]
    assert [r.status_code for r in sent] == [200, 403, 401]
    assert list(document["/readyz"]["get"]["responses"]["503"]["content"]) == [PROBLEM]


def test_openapi_describes_each_operations_422_and_503_as_that_operation_meets_them(server):
    """Every operation's 422 said "Invalid body", though a GET has none and its 422 names a query parameter
    (`?version=2`); every 503 said "nothing recorded", though a score whose commit was lost may be; and
    /metrics's 503 named a missing model and REINTEGRA_MAX_IN_FLIGHT, neither of which it answers, rather
    than the key store it does."""
    with server.client() as anonymous:
        paths = anonymous.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            said = {status: r["description"] for status, r in operation["responses"].items()}
            if "422" in said:
                assert "Invalid body" not in said["422"], (method, path)
                assert "query parameter" in said["422"], (method, path)
            if "503" in said:
                assert "nothing recorded" not in said["503"], (method, path)
    metrics = paths["/metrics"]["get"]["responses"]["503"]["description"]
    assert "key store" in metrics
    assert "REINTEGRA_MAX_IN_FLIGHT" not in metrics and "No model" not in metrics


def test_openapi_documents_the_health_answers_as_sent(server):
    """/readyz's 200 had an empty schema, so a client generated from the document read it as an untyped
    object; both health answers are now described and validate against their schemas."""
    with server.client() as anonymous:
        document = anonymous.get("/openapi.json").json()
        sent = {path: anonymous.get(path) for path in ("/healthz", "/readyz")}
    for path, response in sent.items():
        schema = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema, path
        validator = Draft202012Validator({**schema, "components": document["components"]})
        assert [error.message for error in validator.iter_errors(response.json())] == [], path
    assert sent["/readyz"].json() == {"status": "ready"}


def test_a_person_looked_up_without_scores_is_recorded(server):
    """A search for a person that showed no score recorded nothing, so the trail could not say that a
    reviewer key had looked for someone, which a subject-access request asks. Such a lookup is now a row
    of score_reads with the person and no score; a search naming no person that shows nothing says
    nothing about anyone and records nothing."""
    person = "P-nobody-5521"
    with server.client("reviewer") as reviewer:
        answers = [reviewer.get("/v1/scores", params={"person_id": person})]
        unnamed = reviewer.get("/v1/scores", params={"model_version": "999"})
    with server.page_client() as browser:
        answers += [
            browser.get(f"/review/people/{person}"),
            browser.get("/review/scores", params={"person_id": person}),
        ]
        too_long = browser.get("/review/people/" + "x" * 200)  # names nobody a score could have
    engine = make_engine(server.database)
    lookups = select(ScoreReadRow).where(ScoreReadRow.score_id.is_(None)).order_by(ScoreReadRow.read_at)
    with Session(engine) as session:
        rows = list(session.scalars(lookups))
    engine.dispose()
    assert [answer.status_code for answer in answers] == [200, 404, 200] and too_long.status_code == 404
    assert unnamed.json()["total"] == 0
    routes = ["/v1/scores", "/review/people/{person_id:path}", "/review/scores"]
    assert [(r.person_id, r.route, r.request_id) for r in rows if r.person_id == person] == [
        (person, route, answer.headers["x-request-id"]) for route, answer in zip(routes, answers, strict=True)
    ]
    others = {r.person_id for r in rows}  # other tests of this module look for people too
    assert None not in others and "x" * 200 not in others, "only lookups of someone a score could name"
