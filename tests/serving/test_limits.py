"""Requests the HTTP protocol refuses before the app runs (serving.limits) are counted in /metrics."""

import re
import socket
from urllib.parse import urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving.limits import BODY_IDLE_SECONDS, MAX_HEAD_BYTES
from tests.serving.servers import start_server

pytestmark = pytest.mark.slow

REASONS = ["400 unreadable", "400 head_too_large", "408 head_too_slow", "408 body_stalled"]
HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
BODY = (
    b"POST /review/sign-in HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 100\r\n\r\nkey="
)


@pytest.mark.parametrize("workers", [1, 2])
def test_requests_refused_before_the_app_are_counted(registry, tmp_path, workers):
    """A 408 or a 400 the protocol sends never reaches the app's request metrics: a slowloris attack or a
    broken client showed nowhere in /metrics. With two workers any one's scrape adds up both."""
    server = start_server(registry, tmp_path, workers=workers)
    address = urlsplit(server.base_url)

    def connect() -> socket.socket:
        return socket.create_connection((address.hostname, address.port), timeout=3 * BODY_IDLE_SECONDS)

    try:
        connections = [connect() for _ in range(4)]
        sent = [b"GARBAGE\r\n\r\n", HEAD + b"X-Filler: " + b"a" * (MAX_HEAD_BYTES + 1024), HEAD, BODY]
        for connection, data in zip(connections, sent, strict=True):
            connection.sendall(data)
        answers = []
        for connection in connections:  # the server answers each and closes it
            answers.append(b"".join(iter(lambda c=connection: c.recv(65536), b"")).decode())
            connection.close()
        with server.client("reviewer") as reviewer:
            text = reviewer.get("/metrics").text
    finally:
        server.stop()
    statuses = [answer.partition("\r\n")[0] for answer in answers]
    assert statuses == ["HTTP/1.1 400 Bad Request"] * 2 + ["HTTP/1.1 408 Request Timeout"] * 2
    log = (tmp_path / "server.log").read_text()
    for answer, said in zip(answers, REASONS, strict=True):
        request_id = re.search(r"\r\nx-request-id: (\w+)\r\n", answer).group(1)
        assert f"[{request_id}] refused before the app, {said}: " in log, "logged with the answer's id"
        head = answer.partition("\r\n\r\n")[0].lower().split("\r\n")
        assert {"x-content-type-options: nosniff", "x-frame-options: deny"} <= set(head), "as every answer"
    [family] = [f for f in text_string_to_metric_families(text) if f.name == "reintegra_refused_before_app"]
    counted = {
        (s.labels["status"], s.labels["reason"]): s.value for s in family.samples if s.name.endswith("_total")
    }
    assert counted == {
        ("400", "unreadable"): 1,
        ("400", "head_too_large"): 1,
        ("408", "head_too_slow"): 1,
        ("408", "body_stalled"): 1,
    }
