"""Load shedding: a worker answering REINTEGRA_MAX_IN_FLIGHT API requests refuses the next at once, with
nothing scored or recorded, while readiness and metrics still answer."""

from __future__ import annotations

import functools
import re
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from serving.database import make_engine
from serving.tables import ScoreRow
from tests.serving.servers import Server, start_server

pytestmark = pytest.mark.slow

LIMIT = 2
BATCH = 1000  # records: a batch this size takes seconds to score, so it is still in flight when checked
WAIT_SECONDS = 60  # fails a server whose batches never show as in flight; not a speed target


def metric(client: httpx.Client, name: str) -> float:
    text = client.get("/metrics").text
    return float(re.search(rf"^{name} (\S+)$", text, re.MULTILINE).group(1))


def full(monitor: httpx.Client) -> bool:
    """Waits until the worker answers LIMIT requests; False if it never did."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if metric(monitor, "reintegra_requests_in_flight") == LIMIT:
            return True
        time.sleep(0.01)
    return False


def stored(server: Server) -> int:
    engine = make_engine(server.database)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(ScoreRow)).scalar()
    engine.dispose()
    return count


def test_a_request_past_the_in_flight_limit_is_refused_at_once(registry, tmp_path, api_records):
    server = start_server(registry, tmp_path, extra_env={"REINTEGRA_MAX_IN_FLIGHT": str(LIMIT)})
    batch = {"items": [{"record": api_records[i % len(api_records)]} for i in range(BATCH)]}
    try:
        with (
            server.client("scorer") as scorer,
            server.client("reviewer") as monitor,
            ThreadPoolExecutor(LIMIT) as pool,
        ):
            post_batch = functools.partial(scorer.post, "/v1/scores:batch", json=batch, timeout=120)
            batches = [pool.submit(post_batch) for _ in range(LIMIT)]
            was_full = full(monitor)
            refused = scorer.post("/v1/scores", json={"record": api_records[0]})
            ready = monitor.get("/readyz")
            answered = [b.result() for b in batches]
            after = scorer.post("/v1/scores", json={"record": api_records[0]})
            shed = metric(monitor, "reintegra_requests_shed_total")
            document = monitor.get("/openapi.json").json()
    finally:
        server.stop()
    assert was_full
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "1"
    # A client reads the wait from the document: it named the store's 5 and MLflow's 30, not this 1.
    said = document["paths"]["/v1/scores"]["post"]["responses"]["503"]["headers"]["Retry-After"]
    assert "1 when the worker is answering its most requests at once" in said["description"]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["x-request-id"] == refused.json()["request_id"]
    assert refused.json()["detail"] == (
        f"this worker is answering {LIMIT} requests, its limit (REINTEGRA_MAX_IN_FLIGHT); nothing was done "
        "or recorded: try again in 1 s"
    )
    assert ready.status_code == 200
    assert [a.status_code for a in answered] == [200] * LIMIT
    assert after.status_code == 201
    assert shed == 1
    assert stored(server) == LIMIT * BATCH + 1


def test_a_score_waiting_for_a_locked_store_leaves_the_worker_answering(registry, tmp_path, api_records):
    """Scoring and its commit run in the thread pool, not on the event loop: while a score waits for the
    audit store, the same worker still answers its metrics and health checks."""
    server = start_server(registry, tmp_path)
    lock = sqlite3.connect(server.database.removeprefix("sqlite:///"), isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with (
            server.client("scorer") as scorer,
            server.client("reviewer") as monitor,
            ThreadPoolExecutor(1) as pool,
        ):
            pending = pool.submit(scorer.post, "/v1/scores", json={"record": api_records[0]}, timeout=60)
            deadline, waiting = time.monotonic() + WAIT_SECONDS, False
            while not waiting and time.monotonic() < deadline:
                waiting = metric(monitor, "reintegra_requests_in_flight") == 1
            health = monitor.get("/healthz")
            answered_meanwhile = waiting and not pending.done()
            lock.execute("COMMIT")
            created = pending.result()
    finally:
        lock.close()
        server.stop()
    assert answered_meanwhile and health.status_code == 200
    assert created.status_code == 201, created.text
