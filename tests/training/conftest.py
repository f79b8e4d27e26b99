"""Shared fixtures of the training jobs: a real MLflow store."""

import pytest

from tests.tracking import tracking_store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("mlflow")
    with tracking_store(f"sqlite:///{folder}/mlflow.db") as uri:
        yield uri
