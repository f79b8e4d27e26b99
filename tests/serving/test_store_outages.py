"""PostgreSQL going away while the server serves, and coming back: a proxy between them that the test cuts
(every connection closed, new ones refused) and restores, or that drops one connection at a statement."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import make_url, select
from typer.testing import CliRunner

from serving.cli import app as cli
from serving.database import make_engine
from serving.tables import ScoreRow
from tests.serving.servers import start_server
from tests.serving.tcp_proxy import TcpProxy, proxy_to

pytestmark = pytest.mark.slow


@dataclass
class Sent:
    """One POST /v1/scores and its answer."""

    idempotency_key: str
    person_id: str
    status: int
    body: dict
    headers: httpx.Headers
    at: float


def post_score(client: httpx.Client, record: dict, key: str | None = None, person: str | None = None) -> Sent:
    key = key or str(uuid.uuid4())
    person = person or f"P-{key[:8]}"
    response = client.post(
        "/v1/scores", json={"person_id": person, "record": record}, headers={"Idempotency-Key": key}
    )
    return Sent(key, person, response.status_code, response.json(), response.headers, time.monotonic())


def through(proxy: TcpProxy, url: str) -> str:
    """`url` with the proxy's address in place of the server's."""
    return make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def stored_ids(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(select(ScoreRow.id)).scalars())
    finally:
        engine.dispose()


def verify(url: str, key_file) -> tuple[int, str]:
    env = {"REINTEGRA_AUDIT_URL": url, "REINTEGRA_KEYS_URL": url, "REINTEGRA_AUDIT_KEY_FILE": str(key_file)}
    result = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    return result.exit_code, result.output


def test_a_commit_whose_answer_was_lost(registry, tmp_path, fresh_database, api_records):
    """The connection lost as the score is committed: the store may have committed it. It answered 503
    'nothing was recorded' though the score was stored; now a 201 when it was, and when the store cannot
    say, a 503 saying so, whose retry under the same Idempotency-Key replays the stored score."""
    target = make_url(fresh_database)
    with proxy_to(target.host, target.port) as proxy:
        server = start_server(registry, tmp_path, database=through(proxy, fresh_database))
        try:
            with server.client("scorer") as scorer:
                proxy.drop_at(
                    b"UPDATE audit_chain SET digest"
                )  # after the score's insert, before the chain's
                halfway = post_score(scorer, api_records[0])
                proxy.drop_at(b"COMMIT", after=True)
                committed = post_score(scorer, api_records[1])
                proxy.drop_at(b"COMMIT", after=True, then_cut=True)
                unknown = post_score(scorer, api_records[2])
                proxy.restore()
                retries = [
                    post_score(scorer, api_records[i], s.idempotency_key, s.person_id)
                    for i, s in enumerate((halfway, committed, unknown))
                ]
        finally:
            server.stop()
    assert proxy.dropped == 3
    assert halfway.status == 503
    assert halfway.body["detail"] == "the audit or key store is unavailable; nothing was recorded, try again"
    assert committed.status == 201, committed.body
    assert unknown.status == 503 and unknown.headers["retry-after"] == "5"
    assert "retry with the same Idempotency-Key" in unknown.body["detail"]
    assert [r.status for r in retries] == [201, 201, 201]
    assert [r.headers.get("idempotent-replayed") for r in retries] == [None, "true", "true"]
    assert retries[1].body["id"] == committed.body["id"]
    stored = stored_ids(fresh_database)
    assert sorted(stored) == sorted(r.body["id"] for r in retries)
    assert verify(fresh_database, tmp_path / "audit.key")[0] == 0
    log = (tmp_path / "server.log").read_text()
    assert "audit store lost during a commit (POST /v1/scores): " in log
