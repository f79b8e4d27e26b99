"""The access log of a real server: one line per request, naming no key, record or person."""

import re

import httpx
import pytest

from serving.database import make_engine
from serving.keys import KeyStore
from tests.serving.servers import form_token, start_server

pytestmark = pytest.mark.slow

PERSON, ASSESSMENT = "P-ACCESS-LOG-7", "A-ACCESS-LOG-9"
LINE = re.compile(r" INFO reintegra\.access pid=\d+ \[(?P<id>[^\]]+)\] (?P<rest>.*)$")


def test_every_request_is_one_line_naming_route_status_duration_and_key_id(registry, tmp_path, api_records):
    server = start_server(registry, tmp_path)
    engine = make_engine(server.database)
    key_ids = {role: KeyStore(engine).verify(key).id for role, key in server.keys.items()}
    engine.dispose()
    try:
        with (
            server.client("scorer") as scorer,
            server.client("reviewer") as reviewer,
            server.client() as anyone,
        ):
            body = {"person_id": PERSON, "assessment_id": ASSESSMENT, "record": api_records[0]}
            score = scorer.post("/v1/scores", json=body, headers={"X-Request-ID": "access-1"})
            read = reviewer.get(f"/v1/scores/{score.json()['id']}", headers={"X-Request-ID": "access-2"})
            search = reviewer.get(
                "/v1/scores", params={"person_id": PERSON}, headers={"X-Request-ID": "access-3"}
            )
            refused = anyone.get(
                "/v1/model", headers={"Authorization": "Bearer rk_wrong", "X-Request-ID": "access-4"}
            )
            forbidden = scorer.get("/v1/model", headers={"X-Request-ID": "access-5"})
            missing = anyone.get(f"/no/such/{PERSON}", headers={"X-Request-ID": "access-6"})
        with httpx.Client(base_url=server.base_url, timeout=30) as browser:
            signed_in = browser.post(
                "/review/sign-in",
                data={"key": server.keys["reviewer"], "csrf": form_token(browser)},
                headers={"X-Request-ID": "access-7"},
            )
            page = browser.get(f"/review/people/{PERSON}", headers={"X-Request-ID": "access-8"})
            # Refused before routing, so the body is never read: still named by the route it would take.
            unkeyed = browser.post("/v1/scores", json=body, headers={"X-Request-ID": "access-9"})
            nowhere = browser.post(f"/v1/no/{PERSON}", json=body, headers={"X-Request-ID": "access-10"})
    finally:
        server.stop()
    answers = (score, read, search, refused, forbidden, missing, signed_in, page, unkeyed, nowhere)
    assert [r.status_code for r in answers] == [201, 200, 200, 401, 403, 404, 303, 200, 401, 401]
    log = (tmp_path / "server.log").read_text()
    access = [(m["id"], m["rest"]) for m in map(LINE.search, log.splitlines()) if m]
    lines = dict(access)
    expected = {
        "access-1": ("POST", "/v1/scores", 201, key_ids["scorer"]),
        "access-2": ("GET", "/v1/scores/{score_id}", 200, key_ids["reviewer"]),
        "access-3": ("GET", "/v1/scores", 200, key_ids["reviewer"]),
        "access-4": ("GET", "/v1/model", 401, "-"),
        "access-5": ("GET", "/v1/model", 403, key_ids["scorer"]),
        "access-6": ("GET", "unmatched", 404, "-"),
        "access-7": ("POST", "/review/sign-in", 303, key_ids["reviewer"]),
        "access-8": ("GET", "/review/people/{person_id:path}", 200, key_ids["reviewer"]),
        "access-9": ("POST", "/v1/scores", 401, "-"),
        "access-10": ("POST", "unmatched", 401, "-"),
    }
    for request_id, (method, route, status, key_id) in expected.items():
        assert re.fullmatch(
            rf"{method} {re.escape(route)} {status} \d+\.\d ms key={key_id}", lines[request_id]
        )
    assert [request_id for request_id, _ in access if request_id in expected] == list(expected), "one each"
    for secret in (*server.keys.values(), "rk_wrong", PERSON, ASSESSMENT):
        assert secret not in log
