"""Fixtures: a real MLflow store with a champion, a server over it, records to score and a browser."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from serving.database import make_engine, migrate
from tests.serving.servers import (
    LAUNCHED,
    REASSESSED,
    REASSESSMENTS,
    TEST_SEAL,
    Registry,
    Server,
    api_record,
    new_database,
    start_server,
)
from tests.tracking import tracking_store

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
INSTALL_SECONDS = 900
POSTGRES_URL = os.environ.get(
    "REINTEGRA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session", autouse=True)
def audit_key_file(tmp_path_factory) -> Iterator[Path]:
    """The audit key of every server and command a test starts without naming its own: one test key outside
    the checkout, so no test writes data/audit.key there or prints that it made one."""
    path = tmp_path_factory.mktemp("audit-key") / "audit.key"
    path.write_text(TEST_SEAL.key.hex())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REINTEGRA_AUDIT_KEY_FILE", str(path))
        yield path


@pytest.fixture(scope="session", autouse=True)
def no_server_left_running() -> Iterator[None]:
    """Stops, at the end of the session, any server a failed test left running: it would hold its port,
    its memory and its store long after pytest ended."""
    yield
    for server in LAUNCHED:
        server.stop()


@pytest.fixture(scope="session")
def registry(tmp_path_factory, training_raw, spec) -> Iterator[Registry]:
    from training.promote import promote
    from training.train import train

    folder = tmp_path_factory.mktemp("registry")
    data = folder / "cohort.csv"
    training_raw.iloc[:3000].to_csv(data, index=False)
    with tracking_store(f"sqlite:///{folder}/mlflow.db") as uri:
        result = train(spec, data, name="reintegra", seed=2)
        promote("reintegra", result.model_version, force=True, reason="test fixture")
        yield Registry(uri, result.model_version, folder, data)


@pytest.fixture(scope="session")
def second_version(registry, spec):
    """Another registered version of the same model (a different seed), left as a candidate."""
    from training.train import train

    return train(spec, registry.data, name="reintegra", seed=9)


@pytest.fixture(scope="session")
def shared_server(registry, tmp_path_factory) -> Iterator[Server]:
    """One server of the default settings for every module of this test process that sets SHARES_SERVER."""
    running = start_server(registry, tmp_path_factory.mktemp("shared-server"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def server(request, registry, tmp_path_factory) -> Iterator[Server]:
    """A server of the module's own, so that its tests can count what its store holds; a module whose tests
    write only scores of their own and count nothing else sets SHARES_SERVER and gets `shared_server`."""
    if getattr(request.module, "SHARES_SERVER", False):
        yield request.getfixturevalue("shared_server")
        return
    running = start_server(registry, tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def api_records(training_raw, spec) -> list[dict]:
    """Records as a case-management system sends them: JSON types, release-time fields only."""
    return [api_record(raw, spec) for raw in training_raw.iloc[3000:3100].to_dict("records")]


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; a fresh CI machine gets it from apt (never `playwright install`)."""
    if not CHROMIUM.exists():
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            pytest.skip(f"{CHROMIUM} is missing and apt-get cannot run here (not root or not Debian)")
        try:
            subprocess.run(
                ["sh", "-c", "apt-get update && apt-get install -y chromium"],
                check=True,
                capture_output=True,
                timeout=INSTALL_SECONDS,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            output = getattr(exc, "stderr", b"") or b""
            pytest.skip(f"could not install Chromium with apt-get: {exc}; {output.decode()[-500:]}")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator:
    """One Chromium for the test process: each test or module opens a context of its own in it, which
    shares no cookies or storage with another, so the browser is started once rather than per module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def scores(server, api_records) -> list[dict]:
    """Scores in creation order; one person is assessed several times."""
    created = []
    with server.client("scorer") as client:
        for index, record in enumerate(api_records[:12]):
            person = REASSESSED if index < REASSESSMENTS else f"P-{index}"
            body = {"assessment_id": f"A-{index}", "person_id": person, "record": record}
            response = client.post("/v1/scores", json=body)
            assert response.status_code == 201, response.text
            created.append(response.json())
    return created


@pytest.fixture(scope="module")
def postgres_url() -> str:
    try:
        engine = make_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any connection failure means no server to test against
        pytest.skip(
            f"no PostgreSQL answers at {POSTGRES_URL} ({type(exc).__name__}); set REINTEGRA_TEST_POSTGRES_URL"
        )
    migrate(engine)
    migrate(engine)
    engine.dispose()
    return POSTGRES_URL


@pytest.fixture
def fresh_database(postgres_url) -> Iterator[str]:
    """An empty database of its own on the same server, dropped afterwards."""
    with new_database(postgres_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """A new, empty store of each kind, for keys and the audit trail."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/audit.db"
    return request.getfixturevalue("fresh_database")


@pytest.fixture
def key_file(tmp_path) -> Path:
    """The test audit key in a file of its own, as REINTEGRA_AUDIT_KEY_FILE names one."""
    path = tmp_path / "audit.key"
    path.write_text(TEST_SEAL.key.hex())
    return path
