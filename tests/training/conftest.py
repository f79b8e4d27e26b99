"""Shared fixtures of the training jobs: a real MLflow store and the synthetic cohort as a file."""

from pathlib import Path

import pytest

from tests.tracking import tracking_store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("mlflow")
    with tracking_store(f"sqlite:///{folder}/mlflow.db") as uri:
        yield uri


@pytest.fixture(scope="module")
def data_file(tmp_path_factory, training_raw) -> Path:
    path = tmp_path_factory.mktemp("data") / "cohort.csv"
    training_raw.to_csv(path, index=False)
    return path
