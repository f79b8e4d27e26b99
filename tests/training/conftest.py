"""Shared fixtures of the training jobs: a real MLflow store and the synthetic cohort as a file."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.tracking import tracking_store
from training import provenance


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


@pytest.fixture
def checkout(tmp_path, monkeypatch) -> Path:
    """A fresh clone of this checkout's commit, whose state git_state reads."""
    if shutil.which("git") is None or provenance.git_state() is None:
        pytest.skip("this code is not in a git checkout (or git is missing): there is no commit to compare")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(provenance.CODE.parent), str(clone)], check=True)
    monkeypatch.setattr(provenance, "CODE", clone / "training")
    return clone
