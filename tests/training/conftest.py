"""Shared fixtures of the training jobs: a real MLflow store and the jobs' command line."""

import os
import subprocess
import sys

import pytest

from tests.tracking import tracking_store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("mlflow")
    with tracking_store(f"sqlite:///{folder}/mlflow.db") as uri:
        yield uri


def cli(*args: str, uri: str) -> subprocess.CompletedProcess:
    """`python -m training ARGS` against the tracking store at `uri`."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    return subprocess.run(
        [sys.executable, "-m", "training", *args], capture_output=True, text=True, env=env, timeout=600
    )
