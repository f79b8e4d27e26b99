"""Nothing returned is lost, reloads swap versions cleanly, online equals offline, keys apply live."""

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from models.pyfunc import load_bundle
from serving.audit import AuditStore
from serving.database import make_engine
from serving.events import operator
from serving.keys import KeyStore
from tests.serving.scenarios import refuse_a_write
from tests.serving.servers import ONLY_KEYS_UNREADABLE, TEST_SEAL, audit_events, start_server

pytestmark = pytest.mark.slow

# Its tests write only scores (and idempotency keys) of their own and count nothing else the store holds, so
# it shares one server with the other such modules of its test process (conftest `server`).
SHARES_SERVER = True


def test_a_score_survives_sigkill_right_after_its_201(registry, tmp_path, api_records):
    server = start_server(registry, tmp_path)
    try:
        with server.client("scorer") as client:
            created = client.post("/v1/scores", json={"person_id": "P-kill", "record": api_records[7]})
            server.process.send_signal(signal.SIGKILL)
        assert created.status_code == 201
    finally:
        server.stop(signal.SIGKILL)
    stored = AuditStore(make_engine(server.database), TEST_SEAL).get(created.json()["id"])
    assert stored is not None
    assert stored.result["risk"] == created.json()["risk"]
    restarted = start_server(registry, tmp_path, database=server.database)
    try:
        with restarted.client("reviewer") as client:
            assert client.get(f"/v1/scores/{created.json()['id']}").status_code == 200
    finally:
        restarted.stop()


def test_a_write_the_audit_store_refuses_is_a_503_and_keeps_the_record_out_of_the_log(
    registry, tmp_path, api_records
):
    refuse_a_write(start_server(registry, tmp_path), tmp_path, api_records)


def test_online_scores_equal_the_registered_bundle_offline(server, registry, api_records):
    records = api_records[:25]
    with server.client("scorer") as client:
        online = client.post("/v1/scores:batch", json={"items": [{"record": r} for r in records]}).json()
    offline = load_bundle(f"models:/reintegra/{registry.version}").score_records(records)
    for item, expected in zip(online["items"], offline, strict=True):
        score = item["score"]
        assert score["risk"] == expected["risk"]
        assert score["needs"] == expected["needs"]
        assert score["explanation"] == expected["explanation"]


def test_keys_created_and_revoked_by_the_cli_apply_without_restart(server, api_records):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "serving", "keys", *args],
            capture_output=True,
            text=True,
            env=server.env,
            timeout=120,
        )

    created = cli("create", "--role", "scorer", "--name", "case system")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    key_id = created.stdout.split(" key ")[1].split()[0]
    headers = {"Authorization": f"Bearer {key}"}
    with server.client() as client:
        assert client.post("/v1/scores", json={"record": api_records[0]}, headers=headers).status_code == 201
        listing = cli("list").stdout
        assert key_id in listing and "case system" in listing and key not in listing
        revoked = cli("revoke", key_id)
        assert revoked.returncode == 0 and f"{key_id} (case system) is revoked since" in revoked.stdout
        assert client.post("/v1/scores", json={"record": api_records[0]}, headers=headers).status_code == 401
        again = cli("revoke", key_id)
        assert again.returncode == 0 and again.stdout == revoked.stdout, "the first revocation time stays"
    assert cli("create", "--role", "root").returncode == 2
    events = [e for e in audit_events(server.env) if e["subject"] == key_id]
    assert [(e["kind"], e["detail"]["command"]) for e in events] == [
        ("key_created", "keys create"),
        ("key_revoked", "keys revoke"),
    ], "one revocation, not one per command"
    assert events[0]["detail"] == {"command": "keys create", "role": "scorer", "name": "case system"}
    assert events[0]["actor"] == operator()


def test_reload_under_load_fails_nothing_and_never_mixes_versions(
    registry, second_version, tmp_path, api_records
):
    from training.promote import promote

    server = start_server(registry, tmp_path)
    bundles = {
        registry.version: load_bundle(f"models:/reintegra/{registry.version}"),
        second_version.model_version: load_bundle(f"models:/reintegra/{second_version.model_version}"),
    }
    responses, failures, stop = [], [], threading.Event()

    def load(worker: int) -> None:
        with server.client("scorer") as client:
            count = 0
            while not stop.is_set() and count < 400:
                record = api_records[(worker * 7 + count) % len(api_records)]
                response = client.post("/v1/scores", json={"record": record})
                (responses if response.status_code == 201 else failures).append((record, response))
                count += 1

    workers = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    try:
        for thread in workers:
            thread.start()
        time.sleep(1.5)
        promote("reintegra", second_version.model_version, force=True, reason="reload test")
        with server.client("admin") as admin:
            reloaded = admin.post("/v1/admin/reload")
        time.sleep(1.5)
        stop.set()
        for thread in workers:
            thread.join(timeout=60)
    finally:
        stop.set()
        server.stop()
        promote("reintegra", registry.version, force=True, reason="reload test: back")
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json() == {
        "previous_version": registry.version,
        "version": second_version.model_version,
        "changed": True,
    }
    assert failures == []
    engine = make_engine(server.database)
    admin_key = KeyStore(engine).verify(server.keys["admin"])
    engine.dispose()
    served = [(e["actor"], e["subject"], e["detail"]["previous_version"]) for e in audit_events(server.env)]
    assert served == [
        ("server start", f"models:/reintegra/{registry.version}", None),
        (admin_key.id, f"models:/reintegra/{second_version.model_version}", registry.version),
    ]
    versions = [r.json()["model"]["version"] for _, r in responses]
    assert set(versions) == {registry.version, second_version.model_version}
    last_old = max(i for i, v in enumerate(versions) if v == registry.version)
    assert versions.count(second_version.model_version) > 10 and last_old < len(versions) - 1
    for record, response in responses[::5]:
        body = response.json()
        expected = bundles[body["model"]["version"]].score_records([record])[0]
        assert body["risk"] == expected["risk"] and body["needs"] == expected["needs"]
        assert body["explanation"] == expected["explanation"]


def test_alias_polling_picks_up_a_new_champion(registry, second_version, tmp_path):
    from training.promote import promote

    promote("reintegra", second_version.model_version, force=True, reason="polling test: start")
    server = start_server(registry, tmp_path, extra_env={"REINTEGRA_POLL_SECONDS": "1"})
    try:
        with server.client("reviewer") as client:
            assert client.get("/v1/model").json()["version"] == second_version.model_version
            promote("reintegra", registry.version, force=True, reason="polling test: back")
            deadline = time.monotonic() + 30
            while client.get("/v1/model").json()["version"] != registry.version:
                assert time.monotonic() < deadline, "the poller did not load the new champion in 30 s"
                time.sleep(0.5)
            metrics = client.get("/metrics").text
    finally:
        server.stop()
    served = audit_events(server.env, "--kind", "model_served")
    assert [(e["actor"], e["detail"]["version"]) for e in served] == [
        ("server start", second_version.model_version),
        ("alias poll", registry.version),
    ]
    gauge = 'reintegra_model_version{{name="reintegra",version="{}"}} {}'
    assert gauge.format(registry.version, "1.0") in metrics
    assert gauge.format(second_version.model_version, "0.0") in metrics


def test_readiness_fails_while_keys_in_a_store_of_their_own_cannot_be_read(registry, tmp_path, api_records):
    """Every call needs a key: with the key store gone, no call can succeed, so not ready."""
    keys_database = f"sqlite:///{tmp_path}/keys.db"
    server = start_server(registry, tmp_path, keys_database=keys_database)
    engine = make_engine(keys_database)
    try:
        with server.client("scorer") as scorer, server.client() as anonymous:
            with engine.begin() as connection:
                connection.execute(text("ALTER TABLE api_keys RENAME TO api_keys_away"))
            down = anonymous.get("/readyz", headers={"X-Request-ID": "probe-1"})
            refused = scorer.post("/v1/scores", json={"record": api_records[0]})
            with engine.begin() as connection:
                connection.execute(text("ALTER TABLE api_keys_away RENAME TO api_keys"))
            ready = anonymous.get("/readyz")
            accepted = scorer.post("/v1/scores", json={"record": api_records[0]})
            document = anonymous.get("/openapi.json").json()
    finally:
        server.stop()
        engine.dispose()
    assert down.status_code == 503
    assert down.json()["checks"] == ONLY_KEYS_UNREADABLE
    # Like every other problem (it had neither), and `checks` is in the documented Problem.
    assert (down.json()["request_id"], down.json()["instance"]) == ("probe-1", "/readyz")
    assert "checks" in document["components"]["schemas"]["Problem"]["properties"]
    assert down.headers["retry-after"] == "5", (
        "a deployment script waiting for readiness knows when to ask again"
    )
    assert "Retry-After" in document["paths"]["/readyz"]["get"]["responses"]["503"]["headers"]
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    assert ready.status_code == 200 and accepted.status_code == 201


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A real 1 MiB file system (tmpfs), for a store whose disk fills up; needs the right to mount."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", "--lazy", str(folder)], check=True)


def test_readiness_fails_while_the_audit_disk_is_full(registry, tmp_path, small_disk, api_records):
    """Ready means a score can be committed: not while every score gets a 503; again once there is room."""
    server = start_server(registry, tmp_path, database=f"sqlite:///{small_disk}/audit.db")
    filler = small_disk / "filler"
    try:
        with server.client("scorer") as scorer, server.client() as anonymous:
            with contextlib.suppress(OSError), filler.open("wb", buffering=0) as out:  # until ENOSPC
                while True:
                    out.write(b"\0" * 4096)
            refused = scorer.post("/v1/scores", json={"record": api_records[0]})
            full = anonymous.get("/readyz")
            filler.unlink()
            ready = anonymous.get("/readyz")
            accepted = scorer.post("/v1/scores", json={"record": api_records[0]})
    finally:
        server.stop()
    assert refused.status_code == 503
    assert full.status_code == 503 and full.json()["checks"]["audit_writable"] is False
    assert ready.status_code == 200 and accepted.status_code == 201


def test_readiness_fails_once_scores_have_filled_the_audit_disk(registry, tmp_path, small_disk, api_records):
    """Filled by the scores themselves, the disk still took the probe's one-row rewrite (into WAL space a
    failed score had allocated), so /readyz said ready while every score got a 503."""
    server = start_server(registry, tmp_path, database=f"sqlite:///{small_disk}/audit.db")
    try:
        with server.client("scorer") as scorer, server.client() as anonymous:
            statuses = []
            while 503 not in statuses and len(statuses) < 200:
                statuses.append(scorer.post("/v1/scores", json={"record": api_records[0]}).status_code)
            refused = scorer.post("/v1/scores", json={"record": api_records[1]})
            full = anonymous.get("/readyz")
    finally:
        server.stop()
    assert statuses[-1] == 503 and set(statuses[:-1]) == {201}
    assert refused.status_code == 503
    assert full.status_code == 503 and full.json()["checks"]["audit_writable"] is False


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` on a read-only mount of itself, as a file system remounted read-only after an error is;
    needs the right to mount (chmod would not do: tests run as root, whom it does not stop)."""
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount here: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        yield
    finally:  # lazily: the server still holds files it opened through the mount
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def test_a_store_that_was_read_only_takes_scores_again_without_a_restart(registry, tmp_path, api_records):
    """SQLite opened connections read-only while the store's folder was, and while one of them stayed open
    every new connection was read-only too: each score was a 503 until the server restarted."""
    folder = tmp_path / "store"
    folder.mkdir()
    server = start_server(registry, tmp_path, database=f"sqlite:///{folder}/audit.db")
    body = {"record": api_records[0]}

    def score(_: int = 0) -> int:
        return scorer.post("/v1/scores", json=body).status_code

    try:
        with server.client("scorer") as scorer, server.client() as anonymous:
            with read_only(folder), ThreadPoolExecutor(8) as pool:
                # At once, so the pool opens new connections (those it held write through the old mount).
                refused = list(pool.map(score, range(16)))
            after = [score() for _ in range(20)]
            ready = anonymous.get("/readyz")
    finally:
        server.stop()
    assert 503 in refused and set(refused) <= {201, 503}
    assert after == [201] * 20, after
    assert ready.status_code == 200
