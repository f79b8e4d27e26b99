"""Benchmark: how long `python -m serving` takes from launch until /readyz answers 200.

Trains and promotes a model on the synthetic cohort in a temporary MLflow store (or reuses the store
`--store` names, made by an earlier run with `--keep`), then starts the real server (one worker, SQLite
audit) several times and times each start, with the CPU time the server used (start, one /readyz,
stop), which other work on the host sways less; and `python -m serving --help`, what every command
pays before it runs. Prints JSON, also kept in bench/results/startup.json. Run with
`python bench/startup_benchmark.py` (about 3 minutes, most of it training).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_benchmark import COHORT_ROWS, MODEL_NAME, free_port, running, train_champion  # a sibling script

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "startup.json"
STARTS = 7


def children_cpu() -> float:
    """CPU seconds (user and system) of every child process that has ended so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_to_ready(env: dict[str, str], log_file: Path) -> tuple[float, float]:
    """Seconds from launching the server until /readyz answers 200, and the CPU seconds the server
    used until it stopped (it is stopped afterwards)."""
    port = free_port()
    cpu = children_cpu()
    command = [sys.executable, "-m", "serving", "--port", str(port)]
    started = time.perf_counter()
    with running(command, port, env, log_file):
        ready = time.perf_counter() - started
    return ready, children_cpu() - cpu


def time_help(env: dict[str, str]) -> float:
    """Seconds `python -m serving --help` takes: the command line's imports and nothing else."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "serving", "--help"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    return time.perf_counter() - started


def summary(seconds: list[float]) -> dict[str, Any]:
    return {"median_s": round(statistics.median(seconds), 2), "runs_s": [round(s, 2) for s in seconds]}


def benchmark(store: Path, starts: int) -> dict[str, Any]:
    """Time `starts` server starts and as many `--help` runs against the champion in `store`."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db",
        "REINTEGRA_POLL_SECONDS": "0",
    }
    ready, cpu, help_runs = [], [], []
    with tempfile.TemporaryDirectory(prefix="reintegra-startup-") as tmp:
        folder = Path(tmp)
        env["REINTEGRA_AUDIT_URL"] = env["REINTEGRA_KEYS_URL"] = f"sqlite:///{folder}/reintegra.db"
        env["REINTEGRA_AUDIT_KEY_FILE"] = str(folder / "audit.key")
        time_to_ready(env, folder / "server.log")  # the first start migrates the store and makes the key
        load = [os.getloadavg()[0]]
        for _ in range(starts):
            seconds, cpu_seconds = time_to_ready(env, folder / "server.log")
            ready.append(seconds)
            cpu.append(cpu_seconds)
            help_runs.append(time_help(env))
        load.append(os.getloadavg()[0])
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "load_average_1m": {"start": round(load[0], 2), "end": round(load[1], 2)},
        "note": "other work on the host (load average above) lengthens every start",
        "model": {"name": MODEL_NAME, "trained_on": f"synthetic cohort, {COHORT_ROWS} rows"},
        "time_to_ready": summary(ready),
        "server_cpu": summary(cpu),
        "help": summary(help_runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=STARTS, help=f"server starts timed (default {STARTS})")
    parser.add_argument("--store", type=Path, help="an MLflow store folder from an earlier --keep run")
    parser.add_argument("--keep", action="store_true", help="keep the store made and print its folder")
    args = parser.parse_args()
    store = args.store or Path(tempfile.mkdtemp(prefix="reintegra-startup-store-"))
    try:
        if args.store is None:
            train_champion(store)
        results = benchmark(store, args.starts)
    finally:
        if args.store is None and not args.keep:
            shutil.rmtree(store, ignore_errors=True)
    if args.keep:
        print(f"store kept in {store}", file=sys.stderr)
    text = json.dumps(results, indent=2)
    print(text)
    RESULTS.write_text(text + "\n")


if __name__ == "__main__":
    main()
