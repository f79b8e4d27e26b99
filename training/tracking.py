"""MLflow side of training: where runs go, registering versions, moving aliases with a history."""

from __future__ import annotations

from datetime import UTC, datetime

import mlflow
from mlflow import MlflowClient

from models.registry import ALIAS_HISTORY_PREFIX, sqlite_path

EXPERIMENT = "reintegra"
CANDIDATE, CHAMPION = "candidate", "champion"


def experiment_id() -> str:
    """The experiment's id; a new one keeps its artifacts beside an SQLite store."""
    existing = mlflow.get_experiment_by_name(EXPERIMENT)
    if existing is not None and existing.lifecycle_stage == "deleted":
        number = existing.experiment_id
        raise ValueError(
            f"experiment {EXPERIMENT} is deleted in this MLflow store; restore it "
            f"(mlflow experiments restore --experiment-id {number}) or purge it "
            f"(mlflow gc --experiment-ids {number}) to train"
        )
    if existing is not None:
        return existing.experiment_id
    database = sqlite_path(mlflow.get_tracking_uri())
    location = (database.parent / "artifacts").resolve().as_uri() if database else None
    return mlflow.create_experiment(EXPERIMENT, artifact_location=location)


def move_alias(name: str, alias: str, version: str, note: str = "") -> str:
    """Set an alias and record the move as tags with its time (MLflow keeps no alias history)."""
    client = MlflowClient()
    previous = _alias_version(client, name, alias)
    client.set_registered_model_alias(name, alias, version)
    moved_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    client.set_model_version_tag(name, version, set_at_tag(alias), moved_at)
    entry = f"{alias}: version {previous or '-'} -> {version}" + (f" ({note})" if note else "")
    client.set_registered_model_tag(name, f"{ALIAS_HISTORY_PREFIX}{moved_at}.{alias}", entry)
    return moved_at


def set_at_tag(alias: str) -> str:
    """The model-version tag holding when the version last became `alias`."""
    return f"alias.{alias}.set_at"


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return client.get_model_version_by_alias(name, alias).version
    except mlflow.exceptions.MlflowException:
        return None


def champion_version(name: str) -> str | None:
    """The version the champion alias points at, or None when there is no champion yet."""
    try:
        client = MlflowClient()
    except mlflow.exceptions.MlflowException as exc:
        raise store_unusable(exc) from exc
    version = _alias_version(client, name, CHAMPION)
    return None if version is None else str(version)


def store_unusable(exc: Exception) -> ValueError:
    """What a job says, before any fitting, when MLflow refuses the tracking store."""
    return ValueError(f"cannot use the MLflow store {mlflow.get_tracking_uri()} (MLFLOW_TRACKING_URI): {exc}")
