"""What the reviewer pages read from MLflow: registered versions, and a run's documents, spec and plots
(cached, since a finished run's artifacts never change)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import mlflow
from mlflow import MlflowClient

from features.spec import DatasetSpec, SpecError, parse_spec
from models import registry
from serving import model_store

ARTIFACTS = {
    "calibration.png": "Calibration on the test part: mean predicted probability against the observed rate "
    "per bin; a calibrated model follows the diagonal.",
    "roc.png": "ROC curves on the test part for this model and its baselines, with their AUCs.",
    "shap_summary.png": "SHAP summary: the largest inputs' risk contributions (log-odds) across the test "
    "part; colour is the input's encoded value, grey a missing one.",
    "domain_importance.png": "Mean size of each domain's summed risk contribution on the test part.",
}
VERSIONS_SHOWN = 20
VERSION_METRICS = ("test_risk_auc", "test_risk_brier", "test_risk_ece", "test_needs_macro_auc")


@dataclass(frozen=True)
class VersionRow:
    version: str
    created: datetime
    aliases: list[str]
    run_id: str
    metrics: dict[str, float]
    forced_reason: str | None


def registered_versions(name: str) -> list[VersionRow]:
    """The newest registered versions of `name` with their aliases and headline test metrics."""
    versions = registry.model_versions(name)[:VERSIONS_SHOWN]
    # search_model_versions leaves aliases empty; the registered model holds them.
    aliases = MlflowClient().get_registered_model(name).aliases if versions else {}
    return [
        VersionRow(
            str(v.version),
            datetime.fromtimestamp(v.creation_timestamp / 1000, UTC),
            sorted(alias for alias, version in aliases.items() if str(version) == str(v.version)),
            v.run_id,
            {k: m for k, m in _run_metrics(v.run_id).items() if k in VERSION_METRICS},
            (v.tags or {}).get(registry.FORCED_REASON_TAG),
        )
        for v in versions
    ]


def version_run_id(name: str, version: str) -> str | None:
    """The training run of a registered version (a version number is never reused)."""
    try:
        return MlflowClient().get_model_version(name, version).run_id
    except mlflow.exceptions.MlflowException:
        return None


@lru_cache(maxsize=64)
def _run_metrics(run_id: str) -> dict[str, float]:
    """A finished run's metrics never change, so they are fetched once."""
    return dict(MlflowClient().get_run(run_id).data.metrics)


@lru_cache(maxsize=16)
def run_documents(run_id: str) -> dict[str, str]:
    """An earlier version's evaluation and model card (run artifacts are immutable)."""
    return model_store.run_documents(run_id)


def spec_of_run(run_id: str, serving: model_store.ServingModel) -> DatasetSpec | None:
    """The spec a version was trained on (its bands, thresholds and gates decided its scores and its
    promotion, whatever version serves now), from memory for the serving one; None when MLflow no
    longer holds that run's spec."""
    return serving.bundle.spec if run_id == serving.run_id else run_spec(run_id)


def run_spec(run_id: str) -> DatasetSpec | None:
    """The spec a run was trained on (its need thresholds decided its scores' flags), or None when
    this MLflow does not hold the run or its spec no longer reads."""
    try:
        return _run_spec(run_id)
    except (mlflow.exceptions.MlflowException, SpecError):
        return None


@lru_cache(maxsize=16)
def _run_spec(run_id: str) -> DatasetSpec:
    """Cached only on success: run artifacts are immutable, a failed download is tried again."""
    return parse_spec(registry.run_artifact(run_id, "spec.yaml").decode(), f"spec.yaml of run {run_id}")


def missing_plots(run_id: str) -> list[str]:
    """The plots the model page shows that the run lacks ([] when MLflow does not answer: each is
    then linked, and its address answers 404 if the run lacks it)."""
    try:
        held = {artifact.path for artifact in MlflowClient().list_artifacts(run_id)}
    except mlflow.exceptions.MlflowException:
        return []
    return [name for name in ARTIFACTS if name not in held]


def run_artifact(run_id: str, name: str) -> bytes | None:
    """One whitelisted plot of a run, or None when the run has none."""
    if name not in ARTIFACTS:
        return None
    try:
        return _download(run_id, name)
    except mlflow.exceptions.MlflowException:
        return None


@lru_cache(maxsize=32)
def _download(run_id: str, name: str) -> bytes:
    """Cached only on success: a failed download raises and is tried again next time."""
    return registry.run_artifact(run_id, name)
