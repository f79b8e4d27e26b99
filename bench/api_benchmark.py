"""Benchmark: latency and throughput of POST /v1/scores against a minimal FastAPI endpoint.

Trains and promotes a model on the synthetic cohort in a temporary MLflow store, starts the real
server (`python -m serving`, one worker, and for comparison two workers) and a minimal endpoint
that only scores, loads them from loopback at several concurrencies and prints JSON, also kept in
bench/results/api.json. Run with `python bench/api_benchmark.py` (about five minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "api.json"
MODEL_NAME = "reintegra"
COHORT_ROWS = 19333
RECORDS = 200
IN_PROCESS_CALLS = 2000
CONCURRENCY = (1, 8, 32)
MAX_REQUESTS = 1500
MAX_SECONDS = 20.0
WARMUP_REQUESTS = 100
CALIBRATION_REQUESTS = 600
CALIBRATION_SECONDS = 5.0
STARTUP_SECONDS = 120.0
READY_POLL_SECONDS = 0.05  # fine enough for bench/startup_benchmark.py to time a start by it
TARGETS = {"p50_ms_at_8": 5.0, "p99_ms_at_8": 20.0, "throughput_ratio": 0.5}
STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the JSON."""
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


# --- the model ------------------------------------------------------------------------------


def train_champion(folder: Path) -> str:
    """Train and promote on the synthetic cohort in a fresh store, so every run is comparable."""
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
    from features.spec import load_spec
    from features.synth import generate_georgia_cohort
    from training.promote import promote
    from training.train import train

    data = folder / "cohort.csv"
    generate_georgia_cohort(COHORT_ROWS, seed=0).to_csv(data, index=False)
    result = train(load_spec("georgia_parole"), data, MODEL_NAME, seed=0)
    promote(MODEL_NAME, result.model_version, force=True, reason="benchmark")
    return result.model_version


def api_records(n: int) -> list[dict[str, Any]]:
    """Records as a case-management system sends them: JSON types, release-time fields only."""
    from features.spec import load_spec
    from features.synth import generate_georgia_cohort

    spec = load_spec("georgia_parole")
    records = []
    for raw in generate_georgia_cohort(n, seed=1).to_dict("records"):
        record: dict[str, Any] = {}
        for name in [*spec.inputs(), *spec.protected]:
            value, kind = raw.get(name), spec.column(name).kind
            if isinstance(value, str):
                record[name] = (
                    float(value) if kind == "numeric" else value == "Yes" if kind == "boolean" else value
                )
        records.append(record)
    return records


def summarise(latencies: list[float]) -> dict[str, float]:
    """Median, p95 and p99 in milliseconds (nearest rank)."""
    ordered = sorted(latencies)

    def rank(q: float) -> float:
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000, 3)

    return {"p50_ms": rank(0.50), "p95_ms": rank(0.95), "p99_ms": rank(0.99)}


def in_process(model_uri: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The floor: bundle.score_records([record]) with no HTTP at all."""
    from models.pyfunc import load_bundle

    bundle = load_bundle(model_uri)
    for record in records[:50]:
        bundle.score_records([record])
    latencies = []
    for i in range(IN_PROCESS_CALLS):
        started = time.perf_counter()
        bundle.score_records([records[i % len(records)]])
        latencies.append(time.perf_counter() - started)
    return {
        "n": IN_PROCESS_CALLS,
        **summarise(latencies),
        "mean_ms": round(statistics.mean(latencies) * 1000, 3),
    }


# --- servers --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Target:
    """One HTTP endpoint under test and the request it receives."""

    name: str
    port: int
    path: str
    headers: dict[str, str]
    ok_status: int


def scorer_key(database: str) -> str:
    """Create the audit database and a scorer key before the server starts, as an operator would."""
    from serving.database import make_engine, migrate
    from serving.keys import KeyStore

    engine = make_engine(database)
    migrate(engine)
    secret = KeyStore(engine).create("scorer", "benchmark")[1]
    engine.dispose()
    return secret


@contextmanager
def running(command: list[str], port: int, env: dict[str, str], log_file: Path) -> Iterator[None]:
    """Run a server until /readyz answers 200; always terminate (then kill) it afterwards."""
    with log_file.open("ab") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=sink)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited: {log_file.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command} not ready after {STARTUP_SECONDS:.0f}s")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(READY_POLL_SECONDS)
        yield
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def minimal_app(model_uri: str) -> Any:
    """The baseline: an idiomatic sync FastAPI handler that only scores (no auth, audit, validation)."""
    from fastapi import FastAPI

    from models.pyfunc import load_bundle
    from models.registry import configure_tracking

    configure_tracking()
    bundle = load_bundle(model_uri)
    app = FastAPI()

    @app.post("/score")
    def score(body: dict[str, Any]) -> dict[str, Any]:
        return bundle.score_records([body["record"]])[0]

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def serve_minimal(port: int, model_uri: str) -> None:
    """Subprocess mode: serve the minimal app on loopback under uvicorn without access logs."""
    import uvicorn

    uvicorn.run(minimal_app(model_uri), host="127.0.0.1", port=port, log_level="warning")


# --- load generation ------------------------------------------------------------------------


@dataclass
class Load:
    """Latencies and failures of one closed-loop run."""

    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def fail(self, reason: str) -> None:
        self.failures += 1
        self.errors[reason] = self.errors.get(reason, 0) + 1


Client = Callable[[Target, list[bytes], int, int, float], Load]


def threads_client(target: Target, bodies: list[bytes], concurrency: int, count: int, seconds: float) -> Load:
    """Closed loop with one keep-alive http.client connection per thread: little client CPU."""
    load, lock, issued = Load(), threading.Lock(), [0]
    headers = {"Content-Type": "application/json", **target.headers}
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
        while time.perf_counter() < deadline:
            with lock:
                if issued[0] >= count:
                    break
                issued[0] += 1
                body = bodies[issued[0] % len(bodies)]
            started = time.perf_counter()
            try:
                connection.request("POST", target.path, body, headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
                with lock:
                    load.fail(type(exc).__name__)
                continue
            elapsed = time.perf_counter() - started
            with lock:
                if status == target.ok_status:
                    load.latencies.append(elapsed)
                else:
                    load.fail(f"HTTP {status}")
        connection.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    load.seconds = time.perf_counter() - started
    return load


def asyncio_client(target: Target, bodies: list[bytes], concurrency: int, count: int, seconds: float) -> Load:
    """Closed loop with httpx.AsyncClient tasks on one event loop (uvloop when installed)."""

    async def run() -> Load:
        load, issued = Load(), [0]
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {"Content-Type": "application/json", **target.headers}
        deadline = time.perf_counter() + seconds
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{target.port}", headers=headers, limits=limits, timeout=30
        ) as client:

            async def worker() -> None:
                while time.perf_counter() < deadline and issued[0] < count:
                    issued[0] += 1
                    body = bodies[issued[0] % len(bodies)]
                    started = time.perf_counter()
                    try:
                        response = await client.post(target.path, content=body)
                    except httpx.HTTPError as exc:
                        load.fail(type(exc).__name__)
                        continue
                    if response.status_code == target.ok_status:
                        load.latencies.append(time.perf_counter() - started)
                    else:
                        load.fail(f"HTTP {response.status_code}")

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            load.seconds = time.perf_counter() - started
        return load

    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run())


CLIENTS: dict[str, Client] = {
    "threads + http.client (keep-alive)": threads_client,
    "asyncio + httpx.AsyncClient": asyncio_client,
}


def measure(client: Client, target: Target, bodies: list[bytes], concurrency: int) -> dict[str, Any]:
    """Warm up, then one bounded closed-loop run; percentiles and throughput of the successes."""
    client(target, bodies, concurrency, WARMUP_REQUESTS, MAX_SECONDS)
    load = client(target, bodies, concurrency, MAX_REQUESTS, MAX_SECONDS)
    stats = summarise(load.latencies) if load.latencies else {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    return {
        "n": len(load.latencies),
        "failures": load.failures,
        **({"errors": load.errors} if load.errors else {}),
        **stats,
        "seconds": round(load.seconds, 2),
        "throughput_rps": round(len(load.latencies) / load.seconds, 1) if load.seconds else 0.0,
    }


def pick_client(target: Target, bodies: list[bytes]) -> tuple[str, dict[str, float]]:
    """The client giving the minimal endpoint the most req/s at concurrency 8: it shares the CPUs."""
    throughput = {}
    for name, client in CLIENTS.items():
        client(target, bodies, 8, WARMUP_REQUESTS, MAX_SECONDS)
        load = client(target, bodies, 8, CALIBRATION_REQUESTS, CALIBRATION_SECONDS)
        throughput[name] = round(len(load.latencies) / load.seconds, 1)
        log(f"client calibration: {name}: {throughput[name]} req/s")
    return max(throughput, key=throughput.__getitem__), throughput


# --- report ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """Enough about the host to compare runs: cores, CPU model, Python and the stack's versions."""
    cpu_model = next(
        (line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")),
        platform.machine(),
    )
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "packages": {
            p: metadata.version(p) for p in ("fastapi", "starlette", "uvicorn", "pydantic", "httpx")
        },
    }


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def verdict(results: dict[str, dict[int, dict[str, Any]]]) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Throughput ratios per concurrency and the targets with pass/fail."""
    ratios = {
        str(c): round(results["full_api"][c]["throughput_rps"] / results["minimal"][c]["throughput_rps"], 3)
        if results["minimal"][c]["throughput_rps"]
        else None
        for c in CONCURRENCY
    }
    at_8 = results["full_api"][8]
    checks = {
        "full_api_p50_ms_at_8": {"target": TARGETS["p50_ms_at_8"], "value": at_8["p50_ms"]},
        "full_api_p99_ms_at_8": {"target": TARGETS["p99_ms_at_8"], "value": at_8["p99_ms"]},
        **{
            f"throughput_ratio_at_{c}": {"target": TARGETS["throughput_ratio"], "value": ratios[str(c)]}
            for c in CONCURRENCY
        },
    }
    for name, check in checks.items():
        value, goal = check["value"], check["target"]
        check["passed"] = value is not None and (value >= goal if "ratio" in name else value <= goal)
    checks["all_passed"] = all(c["passed"] for c in checks.values())
    return ratios, checks


def serve_command(port: int, workers: int) -> list[str]:
    """The real server, as `make serve` runs it, on loopback."""
    host = ["--host", "127.0.0.1", "--port", str(port)]
    return [sys.executable, "-m", "serving", *host, "--workers", str(workers)]


def benchmark(folder: Path) -> dict[str, Any]:
    """Train, start both servers, measure, and build the result."""
    host_before = machine()
    log("training and promoting on the synthetic cohort (about a minute)")
    version = train_champion(folder)
    model_uri = f"models:/{MODEL_NAME}/{version}"
    records = api_records(RECORDS)
    bodies = [
        json.dumps({"assessment_id": f"A-{i}", "person_id": f"P-{i}", "record": r}).encode()
        for i, r in enumerate(records)
    ]
    log(f"version {version}; timing {IN_PROCESS_CALLS} in-process calls")
    floor = in_process(model_uri, records)

    database = f"sqlite:///{folder}/audit.db"
    env = {
        **os.environ,
        "REINTEGRA_AUDIT_URL": database,
        "REINTEGRA_KEYS_URL": database,
        "REINTEGRA_POLL_SECONDS": "0",
    }
    key = scorer_key(database)
    api_port, api_2_port, minimal_port = free_port(), free_port(), free_port()
    auth = {"Authorization": f"Bearer {key}"}
    full_api = Target("full_api", api_port, "/v1/scores", auth, 201)
    full_api_2 = Target("full_api_2_workers", api_2_port, "/v1/scores", auth, 201)
    minimal = Target("minimal", minimal_port, "/score", {}, 200)
    baseline = [sys.executable, str(Path(__file__).resolve()), "--minimal-app", "--port", str(minimal_port)]
    log("starting the full API (one and two workers) and the minimal endpoint")
    with (
        running(serve_command(api_port, workers=1), api_port, env, folder / "server.log"),
        running(serve_command(api_2_port, workers=2), api_2_port, env, folder / "server-2.log"),
        running([*baseline, "--model-uri", model_uri], minimal_port, env, folder / "minimal.log"),
    ):
        client_name, calibration = pick_client(minimal, bodies)
        client = CLIENTS[client_name]
        results: dict[str, dict[int, dict[str, Any]]] = {}
        for target in (full_api, minimal, full_api_2):
            results[target.name] = {}
            for concurrency in CONCURRENCY:
                results[target.name][concurrency] = measure(client, target, bodies, concurrency)
                row = results[target.name][concurrency]
                log(f"{target.name} c={concurrency}: {row['throughput_rps']} req/s, p50 {row['p50_ms']} ms")
    ratios, checks = verdict(results)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            **host_before,
            "load_average_1m": {"start": host_before["load_average_1m"], "end": machine()["load_average_1m"]},
            "note": "other work on the host (load average above) inflates latencies and lowers throughput",
        },
        "model": {
            "name": MODEL_NAME,
            "version": version,
            "trained_on": f"synthetic cohort, {COHORT_ROWS} rows",
        },
        "client": {
            "used": client_name,
            "calibration_rps_minimal_c8": calibration,
            "note": "the load generator runs on the same 2-core host as the server and competes for CPU; "
            "the leaner client (highest minimal-endpoint throughput) is used for every run",
        },
        "load": {
            "loop": "closed; each worker sends its next request when the previous one returns",
            "per_run": f"{WARMUP_REQUESTS} warm-up requests, then {MAX_REQUESTS} requests or "
            f"{MAX_SECONDS:.0f} s, whichever first",
            "records": f"{RECORDS} distinct synthetic records, cycled",
            "full_api": "python -m serving, 1 uvicorn worker, POST /v1/scores, scorer key, SQLite audit",
            "full_api_2_workers": "the same with 2 uvicorn workers sharing the SQLite audit store "
            "(for comparison; the targets are checked on full_api)",
            "minimal": "sync FastAPI handler calling bundle.score_records([record]); 1 uvicorn worker, "
            "no auth, audit, validation or access log",
        },
        "in_process": floor,
        "results": {name: {str(c): row for c, row in rows.items()} for name, rows in results.items()},
        "throughput_ratio_full_over_minimal": ratios,
        "targets": checks,
        "wall_seconds": round(time.monotonic() - STARTED, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minimal-app", action="store_true", help="serve the minimal endpoint (internal)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model-uri", default="")
    args = parser.parse_args()
    if args.minimal_app:
        serve_minimal(args.port, args.model_uri)
        return
    folder = Path(tempfile.mkdtemp(prefix="reintegra-api-bench-"))
    try:
        result = benchmark(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
