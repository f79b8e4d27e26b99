"""MLflow side of training: where runs go, registering versions, moving aliases with a history."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import mlflow
from mlflow import MlflowClient

DEFAULT_TRACKING_URI = "sqlite:///mlflow/mlflow.db"
EXPERIMENT = "reintegra"
CANDIDATE, CHAMPION = "candidate", "champion"


def configure_tracking() -> str:
    """Point MLflow at MLFLOW_TRACKING_URI, or the embedded SQLite store under mlflow/."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)
    database = _sqlite_path(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


def experiment_id(name: str = EXPERIMENT) -> str:
    """The experiment's id; a new one keeps its artifacts beside an SQLite store."""
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    database = _sqlite_path(mlflow.get_tracking_uri())
    location = (database.parent / "artifacts").resolve().as_uri() if database else None
    return mlflow.create_experiment(name, artifact_location=location)


def move_alias(name: str, alias: str, version: str, note: str = "") -> str:
    """Set an alias and record the move as tags with its time (MLflow keeps no alias history)."""
    client = MlflowClient()
    previous = _alias_version(client, name, alias)
    client.set_registered_model_alias(name, alias, version)
    moved_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    client.set_model_version_tag(name, version, f"alias.{alias}.set_at", moved_at)
    entry = f"{alias}: version {previous or '-'} -> {version}" + (f" ({note})" if note else "")
    client.set_registered_model_tag(name, f"alias_history.{moved_at}.{alias}", entry)
    return moved_at


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return client.get_model_version_by_alias(name, alias).version
    except mlflow.exceptions.MlflowException:
        return None


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI (relative, or absolute with a fourth slash)."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def champion_version(name: str) -> str | None:
    """The version the champion alias points at, or None when there is no champion yet."""
    version = _alias_version(MlflowClient(), name, CHAMPION)
    return None if version is None else str(version)
