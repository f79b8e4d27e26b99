"""Benchmark: time of the serving version's model page and of GET /v1/model/drift over stored scores.

Trains and promotes a model on the synthetic cohort in a temporary MLflow store, starts the real
server (`python -m serving`, one worker), stores SCORES scores through the API, then views the page
and the drift answer VIEWS times each, and once more after one new score. Prints JSON, also kept in
bench/results/drift.json. Run with `python bench/drift_benchmark.py` (about three minutes).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_benchmark import (  # a sibling script, not a package
    MODEL_NAME,
    STARTED,
    api_records,
    free_port,
    log,
    machine,
    running,
    serve_command,
    train_champion,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "drift.json"
SCORES = 5500
BATCH = 500
VIEWS = 15


def keys(database: str) -> tuple[str, str]:
    """A scorer and a reviewer key, made before the server starts, as an operator would."""
    from serving.database import make_engine, migrate
    from serving.keys import KeyStore

    engine = make_engine(database)
    migrate(engine)
    store = KeyStore(engine)
    scorer, reviewer = store.create("scorer", "benchmark")[1], store.create("reviewer", "benchmark")[1]
    engine.dispose()
    return scorer, reviewer


def timed(client: httpx.Client, path: str, times: int) -> list[float]:
    """Seconds each of `times` GETs of `path` took; every one must answer 200."""
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        answer = client.get(path, timeout=60)
        seconds.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text[:300]
    return seconds


def summary(seconds: list[float]) -> dict[str, float]:
    return {
        "n": len(seconds),
        "median_s": round(statistics.median(seconds), 4),
        "min_s": round(min(seconds), 4),
        "max_s": round(max(seconds), 4),
    }


def benchmark(folder: Path) -> dict[str, Any]:
    log("training and promoting on the synthetic cohort (about a minute)")
    version = train_champion(folder)
    records = api_records(SCORES)
    database = f"sqlite:///{folder}/audit.db"
    env = {
        **os.environ,
        "REINTEGRA_AUDIT_URL": database,
        "REINTEGRA_KEYS_URL": database,
        "REINTEGRA_AUDIT_KEY_FILE": str(folder / "audit.key"),
        "REINTEGRA_POLL_SECONDS": "0",
    }
    scorer, reviewer = keys(database)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(serve_command(port, workers=1), port, env, folder / "server.log"):
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {scorer}"}) as client:
            log(f"storing {SCORES} scores")
            for start in range(0, SCORES, BATCH):
                body = {"items": [{"record": r} for r in records[start : start + BATCH]]}
                answer = client.post("/v1/scores:batch", json=body, timeout=300)
                assert answer.status_code == 200 and answer.json()["failed"] == 0, answer.text[:300]
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {reviewer}"})
        pages = httpx.Client(base_url=base)
        form = pages.get("/review/sign-in").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        pages.post("/review/sign-in", data={"key": reviewer, "csrf": csrf})
        page = f"/review/model/{version}"
        log(f"viewing {page} and /v1/model/drift {VIEWS} times each")
        page_views, drift_views = timed(pages, page, VIEWS), timed(api, "/v1/model/drift", VIEWS)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {scorer}"}) as client:
            assert client.post("/v1/scores", json={"record": records[0]}).status_code == 201
        after_new_score = timed(pages, page, 1)
        api.close()
        pages.close()
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "model": {"name": MODEL_NAME, "version": version},
        "store": f"SQLite, {SCORES} scores of the serving version (the window reads the newest 2,000)",
        "model_page": summary(page_views),
        "model_drift_api": summary(drift_views),
        "model_page_after_one_new_score_s": round(after_new_score[0], 4),
        "wall_seconds": round(time.monotonic() - STARTED, 1),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="reintegra-drift-bench-") as folder:
        result = benchmark(Path(folder))
    text = json.dumps(result, indent=2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
