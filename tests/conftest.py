"""Shared fixtures: the built-in spec, the real NIJ file when present, synthetic cohorts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.spec import DatasetSpec, load_spec

REAL_DATA = (
    Path(__file__).resolve().parents[1].parent / "shared/data/nij/georgia_parole_2013_2015.csv"
)


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
