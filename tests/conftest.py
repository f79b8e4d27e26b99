"""Shared fixtures: the built-in spec, the real NIJ file when present, synthetic cohorts, and a small
spec with a free-text input."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from features.spec import DatasetSpec, load_spec, parse_spec

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared/data/nij/georgia_parole_2013_2015.csv"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """What `-n auto` starts: a process per core and one more. About a fifth of the suite's time waits on
    servers' timeouts (a body stalled 20 s, a session left 15 s), while a process per core leaves that
    core idle: on 2 cores, 3 processes ran the suite in 7:05 where 2 took 8:06, with the same CPU."""
    return len(os.sched_getaffinity(0)) + 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first: `make test` hands whole files to its processes in this order
    (--no-loadscope-reorder), so quick files fill the end and no process waits long on a slow one
    handed out last. Files reading the real file (one trains on all of it), then files marked slow,
    then the rest; within each, by number of tests."""
    tests = Counter(item.path for item in items)
    real = {item.path for item in items if item.get_closest_marker("real_data")}
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (item.path not in real, item.path not in slow, -tests[item.path]))


@pytest.fixture(scope="session")
def spec() -> DatasetSpec:
    return load_spec("georgia_parole")


@pytest.fixture(scope="session")
def real_data_path() -> Path:
    if not REAL_DATA.is_file():
        pytest.skip(f"real NIJ data not present at {REAL_DATA} (../shared is absent on this clone)")
    return REAL_DATA


@pytest.fixture(scope="session")
def synthetic_raw() -> pd.DataFrame:
    """A small synthetic cohort as text cells, the way a CSV reads."""
    from features.synth import generate_georgia_cohort

    return generate_georgia_cohort(2000, seed=7)


@pytest.fixture
def synthetic_csv(tmp_path: Path, synthetic_raw: pd.DataFrame) -> Path:
    path = tmp_path / "cohort.csv"
    synthetic_raw.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def training_raw() -> pd.DataFrame:
    """A synthetic cohort large enough to fit every model quickly."""
    from features.synth import generate_georgia_cohort

    return generate_georgia_cohort(4000, seed=11)


@pytest.fixture(scope="session")
def training_typed(training_raw, spec) -> pd.DataFrame:
    from features.validation import validate_records

    typed, report = validate_records(training_raw, spec)
    assert report.ok, report.lines()
    return typed


@pytest.fixture(scope="session")
def bundle(training_typed, spec):
    """A scoring bundle fitted in-process on the synthetic cohort."""
    from training.fit import fit_bundle

    return fit_bundle(training_typed.iloc[:3000], spec, seed=5)


FREE_TEXT_SPEC = """
name: free_text
id: pid
outcome: {column: rearrested, horizon_years: 2}
risk_bands: {cut_points: [0.3, 0.6], labels: [low, medium, high]}
needs:
  - {name: job, all: [{column: employed, op: "==", value: "No"}], interventions: [employment program]}
columns:
  - {name: age, kind: numeric, domain: demographics, min: 16, max: 100}
  - {name: employed, kind: boolean, domain: school_work}
  - {name: offence, kind: categorical, domain: criminal_history, values: [violent, property, other]}
  - {name: employer, kind: categorical, domain: school_work, description: free text}
"""


@pytest.fixture(scope="session")
def free_text_spec() -> DatasetSpec:
    """One categorical input without declared values: its categories are learned in training."""
    return parse_spec(FREE_TEXT_SPEC, source="free_text")


@pytest.fixture(scope="session")
def free_text_raw(free_text_spec) -> pd.DataFrame:
    """Labelled rows for the free-text spec, as text cells; `employer` holds value_0 and value_1 only."""
    from features.synth_generic import generate_cohort

    return generate_cohort(free_text_spec, 1500, seed=3)
