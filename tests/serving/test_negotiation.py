"""Accept negotiation: the API answers JSON, and says so with a 406 to a client that accepts none."""

import gzip
import json

import pytest

from serving.negotiation import acceptable, allows_gzip

pytestmark = pytest.mark.slow

# Its tests write only scores (and idempotency keys) of their own and count nothing else the store holds, so
# it shares one server with the other such modules of its test process (conftest `server`).
SHARES_SERVER = True

PROBLEM = "application/problem+json"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "allowed"),
    [
        ("", True),
        ("*/*", True),
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/*", True),
        (BROWSER, True),
        ("application/xml, application/json;q=0.1", True),
        ("application/*;q=0, application/json", True),
        ("*/*;q=0, application/*", True),
        ("application/json;q=0.1, application/*;q=0", True),
        ("*/*, application/*;q=0", False),
        ("application/xml", False),
        ("text/html", False),
        ("application/json;q=0", False),
        ("application/json;q=0, */*", False),
        ("*/*;q=0", False),
        ("json", False),
        ("application/json;q=high", True),
        ("application/json;q=", True),
        ("application/xml;q=high", False),
    ],
)
def test_accept_allows_json_by_its_most_specific_range(accept, allowed):
    """The most specific range decides, whatever the order or the other ranges' q (application/json over
    application/* over */*). A q that is not a number still names the range: it counts as 1, not as a
    refusal."""
    assert acceptable(accept, "application/json") is allowed


def test_an_accept_for_problems_only_is_allowed():
    assert acceptable(PROBLEM, PROBLEM) and not acceptable(PROBLEM, "application/json")


def test_a_body_not_sent_as_json_gets_a_415_naming_json(server, api_records):
    """A body sent as text/plain, as a form or without a Content-Type got a 422 saying the body was not an
    object, which sent an integrator looking for a fault in JSON it had sent; it is a 415 naming
    application/json. JSON with a charset is still read, and a request without a key still gets its 401
    before anything about its body."""
    body = json.dumps({"person_id": "P-media", "record": api_records[0]}).encode()
    types = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None)
    with server.client("scorer") as scorer, server.client() as anonymous:
        refused = [
            scorer.post("/v1/scores", content=body, headers={"Content-Type": sent} if sent else {})
            for sent in types
        ]
        batch = scorer.post(
            "/v1/scores:batch", content=b'{"items": []}', headers={"Content-Type": "text/plain"}
        )
        charset = scorer.post(
            "/v1/scores", content=body, headers={"Content-Type": "Application/JSON; charset=utf-8"}
        )
        unkeyed = anonymous.post("/v1/scores", content=body, headers={"Content-Type": "text/plain"})
    for sent, response in zip(types, [*refused], strict=True):
        assert response.status_code == 415 and response.headers["content-type"] == PROBLEM, sent
        detail = response.json()["detail"]
        assert "send the body as JSON with Content-Type: application/json" in detail, sent
        assert detail.startswith(
            f"the body is sent as {sent.split(';')[0]};" if sent else "the body is sent without"
        )
    assert batch.status_code == 415
    assert charset.status_code == 201
    assert unkeyed.status_code == 401


def test_an_api_request_accepting_no_json_gets_a_406_naming_what_is_sent(server, api_records):
    """A client asking for XML was sent JSON with a 201, which its XML parser then failed on."""
    body = {"person_id": "P-accept", "record": api_records[0]}
    with server.client("scorer") as scorer, server.client("reviewer") as reviewer:
        refused = scorer.post("/v1/scores", json=body, headers={"Accept": "application/xml"})
        refused_read = reviewer.get("/v1/model", headers={"Accept": "text/html"})
        scored = {
            accept: scorer.post("/v1/scores", json=body, headers={"Accept": accept}).status_code
            for accept in ("*/*", "application/json", PROBLEM, BROWSER)
        }
        plain = scorer.post("/v1/scores", json=body, headers={"Accept": ""})
        documented = scorer.get("/openapi.json").json()["paths"]["/v1/scores"]["post"]["responses"]
        recorded = reviewer.get("/v1/scores", params={"person_id": "P-accept"}).json()["total"]
    assert refused.status_code == 406 and refused.headers["content-type"] == PROBLEM
    assert refused.json()["detail"].startswith(
        "this API answers in application/json (errors in application/problem+json)"
    )
    assert refused.json()["request_id"] == refused.headers["x-request-id"]
    assert refused_read.status_code == 406
    assert scored == dict.fromkeys(scored, 201) and plain.status_code == 201
    assert recorded == len(scored) + 1, "the refused request scored nobody"
    assert list(documented["406"]["content"]) == [PROBLEM]


def test_pages_and_health_checks_keep_their_own_answers_whatever_the_accept(server):
    with server.client() as client:
        page = client.get("/review/sign-in", headers={"Accept": "text/html"})
        health = client.get("/healthz", headers={"Accept": "text/plain"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert health.status_code == 200


@pytest.mark.parametrize(
    ("accept_encoding", "allowed"),
    [
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),
        ("GZIP;q=0.5", True),
        ("x-gzip", True),
        ("*", True),
        ("", False),
        ("identity", False),
        ("br", False),
        ("gzip;q=0", False),
        ("gzip;q=0, *", False),
        ("*;q=0", False),
        ("gzip;q=high", True),
        ("gzip;q=high, *;q=0", True),
    ],
)
def test_accept_encoding_allows_gzip_when_named_or_starred_with_a_nonzero_q(accept_encoding, allowed):
    assert allows_gzip(accept_encoding) is allowed


def test_a_batch_answer_is_gzipped_when_the_client_allows_it(server, api_records):
    """A batch answer is 35 kB of JSON a record, 35 MB for 1,000, and was sent uncompressed to clients
    that asked for gzip (httpx, requests and browsers all do); a single score stays as it was."""
    batch = {
        "items": [{"person_id": f"P-gzip-{i}", "record": record} for i, record in enumerate(api_records[:20])]
    }
    with server.client("scorer") as scorer:
        wire = {}
        for accept_encoding in ("gzip", "identity", "gzip;q=0"):
            with scorer.stream(
                "POST", "/v1/scores:batch", json=batch, headers={"Accept-Encoding": accept_encoding}
            ) as response:
                wire[accept_encoding] = (response, b"".join(response.iter_raw()))
        single = scorer.post("/v1/scores", json=batch["items"][0], headers={"Accept-Encoding": "gzip"})
        documented = scorer.get("/openapi.json").json()["paths"]["/v1/scores:batch"]["post"]["responses"]
    gzipped, raw = wire["gzip"]
    assert gzipped.headers["content-encoding"] == "gzip" and gzipped.headers["vary"] == "Accept-Encoding"
    answer = json.loads(gzip.decompress(raw))
    assert (
        answer["scored"] == 20
        and len(answer["items"][0]["score"]["explanation"]["risk"]["contributions"]) > 10
    )
    plain_response, plain = wire["identity"]
    assert (
        "content-encoding" not in plain_response.headers
        and plain_response.headers["vary"] == "Accept-Encoding"
    )
    assert json.loads(plain)["scored"] == 20 and len(raw) * 4 < len(plain)
    assert "content-encoding" not in wire["gzip;q=0"][0].headers
    assert single.status_code == 201 and "content-encoding" not in single.headers
    assert {"Content-Encoding", "Vary"} <= set(documented["200"]["headers"])
