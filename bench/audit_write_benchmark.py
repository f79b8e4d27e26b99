"""Benchmark: the cost of one signed score row, written in process the way the server writes it.

Times `AuditStore.record` of one small score at a time (its chained insert: advance the chain row,
link, insert, seal the end) and prints the median and quartiles in milliseconds. Run with
`python bench/audit_write_benchmark.py [--rows 2000] [--url URL]`; without --url a SQLite store in a
temporary folder. Run it on two checkouts to compare code changes on the same host.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime

from serving.audit import AuditStore
from serving.database import make_engine, migrate
from serving.seal import Seal
from serving.tables import ScoreRow

WARM_UP = 100


def score_row() -> ScoreRow:
    return ScoreRow(
        id=str(uuid.uuid4()),
        created_at=datetime.now(UTC),
        request_id="r",
        key_id="k",
        assessment_id=None,
        person_id="P-bench",
        model_name="reintegra",
        model_version="1",
        run_id="run",
        risk_probability=0.4,
        risk_band="moderate",
        record={"Gender": "F"},
        result={"risk": {"probability": 0.4}},
    )


def measure(url: str, rows: int) -> list[float]:
    """Milliseconds of each of `rows` single-row writes, after a warm-up."""
    engine = make_engine(url)
    migrate(engine)
    store = AuditStore(engine, Seal(bytes(32)))
    store.bind_key()
    times = []
    for index in range(WARM_UP + rows):
        row = score_row()
        start = time.perf_counter()
        store.record([row])
        if index >= WARM_UP:
            times.append((time.perf_counter() - start) * 1000)
    engine.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--url", help="an empty audit store (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        times = measure(args.url or f"sqlite:///{folder}/audit.db", args.rows)
    quartiles = statistics.quantiles(times, n=4)
    summary = {"rows": len(times), "median_ms": statistics.median(times), "q1_ms": quartiles[0]}
    print(json.dumps({**summary, "q3_ms": quartiles[2]}))


if __name__ == "__main__":
    main()
