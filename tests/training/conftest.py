"""Shared fixtures of the training jobs: a real MLflow store and the jobs' command line."""

import os
import subprocess
import sys

import mlflow
import pytest


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    yield uri
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI")
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


def cli(*args: str, uri: str) -> subprocess.CompletedProcess:
    """`python -m training ARGS` against the tracking store at `uri`."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    return subprocess.run(
        [sys.executable, "-m", "training", *args], capture_output=True, text=True, env=env, timeout=600
    )
