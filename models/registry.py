"""Where the MLflow tracking store and registry live, shared by training and serving."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

DEFAULT_TRACKING_URI = "sqlite:///mlflow/mlflow.db"
# MLflow retries a tracking server 7 times, 120 s each: a page asking it while it is down waited four
# minutes for its 500, and `train` or `evaluate` 4 min 13 s on a refused port; with these (unless the
# environment gives its own) they say in 7 to 10 s that MLflow did not answer.
MLFLOW_HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# Model-version tag holding why a version that failed a gate was promoted anyway.
FORCED_REASON_TAG = "forced_promotion_reason"
# Registered-model tags, one per alias move: "alias_history.<UTC time>.<alias>" = what moved.
ALIAS_HISTORY_PREFIX = "alias_history."
# Run artifact: the test part's reference profile, which serving compares the records it scores against.
REFERENCE_PROFILE = "reference_profile.json"
# MLflow's error codes for a model, version or alias it does not hold; any other means it did not answer.
NOT_FOUND = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


def configure_tracking() -> str:
    """Point MLflow at MLFLOW_TRACKING_URI, or the embedded SQLite store under mlflow/."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name, value in MLFLOW_HTTP_LIMITS.items():
        os.environ.setdefault(name, value)
    uri = tracking_uri()
    database = sqlite_path(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, or the embedded SQLite store under mlflow/ in the working folder."""
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI (relative, or absolute with a fourth slash)."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def run_artifact(run_id: str, name: str) -> bytes:
    """One artifact of a training run; raises MlflowException when the run has none."""
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=tmp)
        return Path(path).read_bytes()


def registered_spec(name: str) -> tuple[str, ModelVersion] | None:
    """The spec the newest version of registered model `name` was trained on, by name, with that
    version (None: no versions)."""
    versions = model_versions(name)
    if not versions:
        return None
    return MlflowClient().get_run(versions[0].run_id).data.params.get("spec"), versions[0]


def model_versions(name: str) -> list[ModelVersion]:
    """Every version of registered model `name`, newest first.

    MLflow's filter syntax has no escape for a quote, and a name registered outside our tools may
    hold one: it is quoted with the quote it lacks, or else matched with LIKE and checked here.
    """
    if "'" not in name:
        where = f"name = '{name}'"
    elif '"' not in name:
        where = f'name = "{name}"'
    else:  # `_` stands for any one character; a backslash escapes in PostgreSQL's LIKE
        where = "name LIKE '" + "".join("_" if c in {"'", '"', "\\"} else c for c in name) + "'"
    versions = [v for v in MlflowClient().search_model_versions(where) if v.name == name]
    return sorted(versions, key=lambda v: -int(v.version))


def alias_history(name: str) -> list[tuple[str, str]]:
    """Every recorded alias move of `name` as (UTC time, what moved), newest first."""
    try:
        tags = MlflowClient().get_registered_model(name).tags
    except mlflow.exceptions.MlflowException:
        return []
    moves = [
        (key.removeprefix(ALIAS_HISTORY_PREFIX).rsplit(".", 1)[0], entry)
        for key, entry in tags.items()
        if key.startswith(ALIAS_HISTORY_PREFIX)
    ]
    return sorted(moves, reverse=True)
