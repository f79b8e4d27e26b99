"""Real uvicorn servers on loopback over a real MLflow store, and the requests tests make of them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import create_engine, make_url, text
from starlette.requests import Request
from typer.testing import CliRunner

from serving.audit import AuditStore, new_score_id, utc_now
from serving.cli import app as cli
from serving.database import make_engine, migrate
from serving.keys import KeyStore
from serving.routes.pages import install_pages
from serving.seal import Seal
from serving.settings import Settings
from serving.tables import ScoreRow

STARTUP_SECONDS = 90
PORT_ATTEMPTS = 3
REASSESSED = "P-REASSESSED"
REASSESSMENTS = 3
# One audit key for every store the tests write, so stores shared between tests (PostgreSQL) hold one chain.
TEST_SEAL = Seal(bytes.fromhex("5eed" * 16))
# /readyz's checks when the key store alone does not answer.
ONLY_KEYS_UNREADABLE = {
    "model_loaded": True,
    "audit_writable": True,
    "audit_key_current": True,
    "keys_readable": False,
}
# Every server this test process started, so none outlives it when a test fails before stopping its own.
LAUNCHED: list[Server] = []


@dataclass
class Registry:
    """A temporary MLflow store holding a trained and promoted model."""

    uri: str
    version: str
    folder: Path
    data: Path


@contextlib.contextmanager
def new_database(postgres_url: str) -> Iterator[str]:
    """An empty database of its own on the server `postgres_url` names, dropped afterwards."""
    name = f"reintegra_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A `python -m serving` process on loopback with one key per role."""

    base_url: str
    process: subprocess.Popen
    database: str
    env: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)
    log: Path | None = None

    def log_size(self) -> int:
        """Where the log ends now: `log_since` it reads only what requests after this point wrote."""
        return self.log.stat().st_size

    def log_since(self, size: int) -> str:
        """The log written after `log_size` returned `size`, for a test on a server that other tests share.
        A line a request logs is written before its answer is sent, except the access log's."""
        return self.log.read_bytes()[size:].decode(errors="replace")

    def client(self, role: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    @contextlib.contextmanager
    def page_client(self) -> Iterator[httpx.Client]:
        """A client signed in to the reviewer pages with the reviewer key, as a browser would be."""
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            client.post("/review/sign-in", data={"key": self.keys["reviewer"], "csrf": form_token(client)})
            yield client

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    registry: Registry,
    folder: Path,
    *,
    database: str | None = None,
    keys_database: str | None = None,
    extra_env: dict | None = None,
    workers: int = 1,
    wrapper: Sequence[str] = (),
) -> Server:
    """A ready server whose audit store is `database` and whose keys are in `keys_database` (by
    default the same store); `wrapper` is a command it runs under, such as strace."""
    database = database or f"sqlite:///{folder}/reintegra.db"
    keys_database = keys_database or database
    engine = make_engine(keys_database)
    migrate(engine)
    store = KeyStore(engine)
    keys = {role: store.create(role, f"test {role}")[1] for role in ("scorer", "reviewer", "admin")}
    engine.dispose()
    key_file = folder / "audit.key"
    key_file.write_text(TEST_SEAL.key.hex())
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": registry.uri,
        "REINTEGRA_AUDIT_URL": database,
        "REINTEGRA_KEYS_URL": keys_database,
        "REINTEGRA_AUDIT_KEY_FILE": str(key_file),
        "REINTEGRA_POLL_SECONDS": "0",
        **(extra_env or {}),
    }
    # Another test process may bind the free port first; a fresh one is then tried.
    for _ in range(PORT_ATTEMPTS):
        server = _launch(folder / "server.log", database, env, keys, workers, wrapper)
        if server is not None:
            return server
    raise RuntimeError(f"{PORT_ATTEMPTS} free ports were each taken before the server could bind one")


def serve_new_model(registry: Registry, folder: Path, spec, name: str) -> tuple:
    """A model of its own name trained, promoted and served, for a test that changes its versions."""
    from training.promote import promote
    from training.train import train

    first = train(spec, registry.data, name=name, seed=3)
    promote(name, first.model_version, force=True, reason="test fixture")
    return first, start_server(registry, folder, extra_env={"REINTEGRA_MODEL_NAME": name})


def serve_next_version(server: Server, registry: Registry, spec, name: str, seed: int = 3):
    """Another version of `name` trained from `spec`, promoted and swapped into the running server."""
    from training.promote import promote
    from training.train import train

    result = train(spec, registry.data, name=name, seed=seed)
    promote(name, result.model_version, force=True, reason="test fixture")
    with server.client("admin") as admin:
        assert admin.post("/v1/admin/reload").json()["version"] == result.model_version
    return result


@contextlib.contextmanager
def champion_moved(second_version, registry: Registry, reason: str) -> Iterator[None]:
    """The champion alias on the second version while the body runs, then back on the fixture's."""
    from training.promote import promote

    promote("reintegra", second_version.model_version, force=True, reason=reason)
    try:
        yield
    finally:
        promote("reintegra", registry.version, force=True, reason=f"{reason}: back")


def add_a_retired_band_score(server: Server) -> ScoreRow:
    """A score put in the store of `server` as an earlier version gave it: in a band the spec lacks."""
    engine = make_engine(server.database)
    old = score_row("P-RETIRED-BAND", model_version="0", risk_band="retired")
    AuditStore(engine, TEST_SEAL).record([old])
    engine.dispose()
    return old


def _launch(
    log: Path, database: str, env: dict, keys: dict, workers: int, wrapper: Sequence[str]
) -> Server | None:
    """A ready server on a free port, or None when that port was taken meanwhile."""
    earlier = log.stat().st_size if log.exists() else 0
    port = free_port()
    process = subprocess.Popen(
        [*wrapper, sys.executable, "-m", "serving", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab"),  # noqa: SIM115
    )
    server = Server(f"http://127.0.0.1:{port}", process, database, env, keys, log)
    LAUNCHED.append(server)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        output = log.read_bytes()[earlier:]
        if process.poll() is not None:
            if b"address already in use" in output.lower():
                return None
            raise RuntimeError(f"server exited: {output.decode(errors='replace')[-2000:]}")
        # Every worker must be up: one answering /readyz says nothing about the others.
        started = output.count(b"Application startup complete")
        try:
            if started >= workers and httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.stop(signal.SIGKILL)
    raise RuntimeError("server did not become ready in time")


def form_token(client: httpx.Client, path: str = "/review/sign-in") -> str:
    """The CSRF token of the form at `path`, as a browser would read it."""
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def audit_events(env: dict, *options: str) -> list[dict]:
    """The administrative events `python -m serving audit events` lists for the store `env` names."""
    result = CliRunner().invoke(cli, ["audit", "events", *options], env=env)
    assert result.exit_code == 0, result.output
    fields = ("seq", "at", "kind", "actor", "subject", "detail")
    lines = [
        dict(zip(fields, re.split(r"\s{2,}", line, maxsplit=5), strict=True))
        for line in result.stdout.splitlines()
    ]
    return [{**line, "seq": int(line["seq"]), "detail": json.loads(line["detail"])} for line in lines]


def score_row(person_id: str, **values) -> ScoreRow:
    """An audit row as the server writes it, for tests of the store itself."""
    defaults = {
        "id": new_score_id(),
        "created_at": utc_now(),
        "request_id": "r",
        "key_id": "k",
        "assessment_id": None,
        "model_name": "reintegra",
        "model_version": "1",
        "run_id": "run",
        "risk_probability": 0.4,
        "risk_band": "moderate",
        "record": {},
        "result": {},
    }
    return ScoreRow(person_id=person_id, **{**defaults, **values})


def api_record(raw: dict, spec) -> dict:
    """A cohort row (text cells) as a case-management system sends it: JSON types, release-time fields
    and protected attributes only."""
    record = {}
    for name in [*spec.inputs(), *spec.protected]:
        value = raw.get(name)
        if not isinstance(value, str):
            continue
        kind = spec.column(name).kind
        record[name] = float(value) if kind == "numeric" else (value == "Yes") if kind == "boolean" else value
    return record


def sign_in(page, key: str, path: str = "/review/scores") -> None:
    """Sign a Playwright page in with `key` through the form at `path`, as a reviewer does."""
    page.goto(path)
    page.get_by_label("API key").fill(key)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def page_request() -> Request:
    """A request to an app with the pages installed: a template rendered alone needs one to build
    its addresses from the routes."""
    app = FastAPI()
    app.state.settings = Settings()
    install_pages(app)
    return Request({"type": "http", "app": app, "root_path": "", "path": "/review", "headers": []})
