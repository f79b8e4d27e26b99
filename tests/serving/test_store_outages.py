"""PostgreSQL going away while the server serves, and coming back: a proxy between them that the test cuts
(every connection closed, new ones refused) and restores, or that drops one connection at a statement."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import func, make_url, select
from typer.testing import CliRunner

from serving.audit import AuditStore
from serving.cli import app as cli
from serving.database import make_engine
from serving.keys import KeyStore
from serving.seal import load_seal
from serving.tables import AuditEventRow, ScoreReadRow, ScoreRow
from tests.serving.servers import (
    ONLY_KEYS_UNREADABLE,
    Server,
    audit_events,
    champion_moved,
    new_database,
    start_server,
)
from tests.serving.tcp_proxy import TcpProxy, proxy_to

pytestmark = pytest.mark.slow

TRICKLE_LIMIT = 400  # requests at most, whatever happens
TRICKLE_PAUSE = 0.05
OUTAGE_SECONDS = 4
RECOVERY_SECONDS = 60  # fails a server that never recovers; not a speed target


@dataclass
class Sent:
    """One POST /v1/scores and its answer."""

    idempotency_key: str
    person_id: str
    status: int
    body: dict
    headers: httpx.Headers
    at: float


@dataclass
class Trickle:
    """Scores one after another, each under its own Idempotency-Key, until stopped or TRICKLE_LIMIT."""

    server: Server
    record: dict
    sent: list[Sent] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with self.server.client("scorer") as client:
            while not self.stop.is_set() and len(self.sent) < TRICKLE_LIMIT:
                self.sent.append(post_score(client, self.record))
                time.sleep(TRICKLE_PAUSE)


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


def test_postgres_going_away_and_back_under_a_trickle_of_scores(
    registry, tmp_path, fresh_database, api_records
):
    """Each score during the outage a 503 with Retry-After, none a 500; scores again without a restart;
    readiness follows; every 201 stored once, retries of the refused ones scored, the chain verified."""
    target = make_url(fresh_database)
    with proxy_to(target.host, target.port) as proxy:
        server = start_server(registry, tmp_path, database=through(proxy, fresh_database))
        trickle = Trickle(server, api_records[0])
        worker = threading.Thread(target=trickle.run)
        try:
            worker.start()
            with server.client() as anonymous, server.client("reviewer") as monitor:
                assert monitor.get("/metrics").status_code == 200  # scraped before, as Prometheus does
                time.sleep(1)
                proxy.cut()
                cut_at = time.monotonic()
                during = []
                while time.monotonic() - cut_at < OUTAGE_SECONDS:
                    during.append((anonymous.get("/readyz").status_code, monitor.get("/metrics").status_code))
                    time.sleep(0.5)
                proxy.restore()
                restored_at = time.monotonic()
                while not any(s.status == 201 and s.at > restored_at for s in trickle.sent):
                    assert time.monotonic() - restored_at < RECOVERY_SECONDS, (
                        "no score since the store came back"
                    )
                    time.sleep(0.1)
                trickle.stop.set()
                worker.join(timeout=60)
                ready = anonymous.get("/readyz").status_code
            refused = [s for s in trickle.sent if s.status != 201]
            with server.client("scorer") as scorer:
                retries = [
                    post_score(scorer, api_records[0], s.idempotency_key, s.person_id) for s in refused
                ]
        finally:
            trickle.stop.set()
            worker.join(timeout=60)
            server.stop()
    created = [s.body["id"] for s in [*trickle.sent, *retries] if s.status == 201]
    stored = stored_ids(fresh_database)
    assert refused, "the outage refused no score: it did not happen"
    assert {s.status for s in refused} == {503}
    assert all(s.headers["retry-after"] == "5" for s in refused)
    assert all(s.headers["content-type"] == "application/problem+json" for s in refused)
    assert [r.status for r in retries] == [201] * len(refused)
    assert sorted(stored) == sorted(created), "every 201 stored exactly once, and nothing else"
    assert {ready for ready, _ in during} == {503} and ready == 200
    assert {metrics for _, metrics in during} == {200}, "the monitor lost its metrics during the outage"
    assert verify(fresh_database, tmp_path / "audit.key")[0] == 0


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


def test_a_read_and_a_reload_whose_commit_answers_were_lost(
    registry, second_version, tmp_path, fresh_database, api_records
):
    """A score's read and a reload's model_served event, each committed as the connection was lost. The
    read was a 503 though the trail held it (the trail said the reviewer read a record they never got);
    the reload a 503 though its event said the new version served, while the old one went on scoring.
    When the store cannot be asked either, the 503 says the read may be recorded, not a score's advice."""
    target = make_url(fresh_database)
    with proxy_to(target.host, target.port) as proxy:
        server = start_server(registry, tmp_path, database=through(proxy, fresh_database))
        try:
            with server.client("scorer") as scorer, server.client("reviewer") as reviewer:
                score_id = post_score(scorer, api_records[0]).body["id"]
                reviewer.get(f"/v1/scores/{score_id}")  # the key's use is written now, not at the drop
                proxy.drop_at(b"COMMIT", after=True)
                read = reviewer.get(f"/v1/scores/{score_id}")
                proxy.drop_at(b"COMMIT", after=True, then_cut=True)
                unknown = reviewer.get(f"/v1/scores/{score_id}")
                proxy.restore()
                with server.client("admin") as admin:
                    admin.post("/v1/admin/reload")  # the same version: no event, the key's use written
                with server.client("admin") as admin, champion_moved(second_version, registry, "lost commit"):
                    proxy.drop_at(b"COMMIT", after=True)
                    reload = admin.post("/v1/admin/reload")
                    after = post_score(scorer, api_records[1])
        finally:
            server.stop()
    assert proxy.dropped == 3
    assert read.status_code == 200, read.text
    assert unknown.status_code == 503 and unknown.headers["retry-after"] == "5"
    assert unknown.json()["detail"].endswith(
        "this request's audit record was committed, and the store cannot say yet whether it was: try again"
    )
    assert read.json()["id"] == score_id
    assert reload.status_code == 200, reload.text
    assert reload.json()["version"] == second_version.model_version
    assert after.body["model"]["version"] == second_version.model_version
    engine = make_engine(fresh_database)
    with engine.connect() as connection:
        reads = connection.execute(select(func.count()).where(ScoreReadRow.score_id == score_id)).scalar()
        served = connection.execute(
            select(AuditEventRow.subject)
            .where(AuditEventRow.kind == "model_served")
            .order_by(AuditEventRow.seq)
        ).scalars()
        subjects = list(served)
    engine.dispose()
    assert reads == 3
    assert subjects == [f"models:/reintegra/{v}" for v in (registry.version, second_version.model_version)]
    assert verify(fresh_database, tmp_path / "audit.key")[0] == 0


def test_a_key_store_of_its_own_going_away_and_back(
    registry, tmp_path, fresh_database, postgres_url, api_records
):
    """Keys in another database than the audit trail: while they cannot be read every score is a 503 and
    readiness says which store failed; metrics still answer the monitor; all is back once they are."""
    with new_database(postgres_url) as keys_url:
        target = make_url(keys_url)
        with proxy_to(target.host, target.port) as proxy:
            server = start_server(
                registry, tmp_path, database=fresh_database, keys_database=through(proxy, keys_url)
            )
            try:
                with server.client("scorer") as scorer, server.client() as anonymous:
                    with server.client("reviewer") as monitor:
                        assert monitor.get("/metrics").status_code == 200
                        proxy.cut()
                        refused = [post_score(scorer, api_records[0]) for _ in range(3)]
                        not_ready = anonymous.get("/readyz")
                        metrics = monitor.get("/metrics")
                    proxy.restore()
                    retries = [
                        post_score(scorer, api_records[0], s.idempotency_key, s.person_id) for s in refused
                    ]
                    ready = anonymous.get("/readyz")
            finally:
                server.stop()
    assert [s.status for s in refused] == [503] * 3
    assert all(s.headers["retry-after"] == "5" for s in refused)
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"] == ONLY_KEYS_UNREADABLE
    assert metrics.status_code == 200, "the monitor lost its metrics while the key store was away"
    assert [r.status for r in retries] == [201] * 3 and ready.status_code == 200
    assert sorted(stored_ids(fresh_database)) == sorted(r.body["id"] for r in retries)


def test_only_keys_found_active_before_a_key_store_outage_open_the_metrics_through_it(
    registry, tmp_path, fresh_database, postgres_url
):
    """A key remembered as active opens /metrics while the key store is away; one revoked since it was
    remembered, or never seen by this server, does not, and neither opens anything once the store is back."""
    with new_database(postgres_url) as keys_url:
        target = make_url(keys_url)
        with proxy_to(target.host, target.port) as proxy:
            server = start_server(
                registry, tmp_path, database=fresh_database, keys_database=through(proxy, keys_url)
            )
            store = KeyStore(make_engine(keys_url))
            revoked, revoked_secret = store.create("monitor", "retired prometheus")
            unseen_secret = store.create("monitor", "new prometheus")[1]
            try:
                with server.client("reviewer") as monitor, server.client() as client:

                    def scrape(secret: str) -> int:
                        return client.get(
                            "/metrics", headers={"Authorization": f"Bearer {secret}"}
                        ).status_code

                    before = [monitor.get("/metrics").status_code, scrape(revoked_secret)]
                    store.revoke(revoked.id)
                    after_revoking = scrape(revoked_secret)
                    proxy.cut()
                    during = [
                        monitor.get("/metrics").status_code,
                        scrape(revoked_secret),
                        scrape(unseen_secret),
                    ]
                    proxy.restore()
            finally:
                server.stop()
    assert before == [200, 200] and after_revoking == 401
    assert during == [200, 503, 503], "only the key found active before the outage may scrape through it"


def test_a_key_rotation_whose_commit_answer_was_lost_keeps_the_new_key(fresh_database, key_file, monkeypatch):
    """The rotation committed, but its answer was lost: removing the new key's file then would leave the
    chain handed to a key nobody holds. It is kept, and `audit events` shows the rotation took effect."""
    direct = {"REINTEGRA_AUDIT_URL": fresh_database, "REINTEGRA_KEYS_URL": fresh_database}
    direct["REINTEGRA_AUDIT_KEY_FILE"] = str(key_file)
    assert CliRunner().invoke(cli, ["migrate"], env=direct).exit_code == 0
    new_key_file = key_file.with_name("audit-2.key")
    target = make_url(fresh_database)
    with proxy_to(target.host, target.port) as proxy:
        bind_key = AuditStore.bind_key

        def then_drop_the_next_commit(store: AuditStore) -> None:  # the rotation's: bind_key commits too
            bind_key(store)
            proxy.drop_at(b"COMMIT", after=True)

        monkeypatch.setattr(AuditStore, "bind_key", then_drop_the_next_commit)
        env = {**direct, "REINTEGRA_AUDIT_URL": through(proxy, fresh_database)}
        result = CliRunner().invoke(
            cli, ["audit", "rotate-key", "--new-key-file", str(new_key_file)], env=env
        )
    assert proxy.dropped == 1
    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("the audit store did not answer (")
    assert line.endswith(
        f"; {new_key_file} is kept: `audit events --kind key_rotated` says whether the rotation took effect"
    )
    assert new_key_file.exists()
    [rotated] = audit_events(direct, "--kind", "key_rotated")
    assert rotated["detail"]["new_key"] == load_seal(new_key_file).fingerprint
