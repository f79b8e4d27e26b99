"""Benchmark: wall time to fit the risk model, the six needs models and the baselines.

Uses the real Georgia file when ../shared is present, the synthetic cohort otherwise; prints
JSON and keeps it in bench/results/train.json. Run with `make bench-train`.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from features.records import read_records
from features.spec import load_spec
from features.synth import generate_georgia_cohort
from features.validation import validate_records
from training.fit import fit_bundle

REAL = Path(__file__).resolve().parents[1].parent / "shared/data/nij/georgia_parole_2013_2015.csv"
RESULTS = Path(__file__).resolve().parent / "results" / "train.json"
REPEATS = 3


def main() -> None:
    spec = load_spec("georgia_parole")
    raw = read_records(REAL) if REAL.is_file() else generate_georgia_cohort(19333, seed=0)
    typed, report = validate_records(raw, spec)
    assert report.ok, report.lines()
    seconds = []
    for repeat in range(REPEATS):
        started = time.perf_counter()
        fit_bundle(typed, spec, seed=repeat)
        seconds.append(time.perf_counter() - started)
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": REAL.name if REAL.is_file() else "synthetic cohort",
        "rows": len(typed),
        "repeats": REPEATS,
        "fit_seconds": [round(s, 1) for s in seconds],
        "median_seconds": round(statistics.median(seconds), 1),
        "target_seconds": 60,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
