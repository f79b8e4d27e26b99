"""A registered model's scoring bundle, for the commands that score files with it."""

from __future__ import annotations

import mlflow

from models.bundle import ScoringBundle
from models.pyfunc import load_bundle
from models.registry import NOT_FOUND, configure_tracking, tracking_uri


class ModelUnavailable(ValueError):
    """The model URI names nothing MLflow can load (MLflow raises its own exception types)."""


def registry_refused(model: str, exc: mlflow.exceptions.MlflowException) -> ModelUnavailable:
    """Why MLflow gave no `model`, naming the store when it did not answer (as train does), so a store
    that is down is not read as a broken or missing model."""
    if exc.error_code in NOT_FOUND:
        return ModelUnavailable(f"cannot load model {model}: {exc.message}")
    return ModelUnavailable(
        f"cannot load model {model}: MLflow did not answer at {tracking_uri()} (MLFLOW_TRACKING_URI): "
        f"{exc.message}"
    )


def load_registered(model: str) -> ScoringBundle:
    """The bundle of `model` (e.g. models:/reintegra@champion) from the configured tracking store."""
    configure_tracking()
    try:
        return load_bundle(model)
    except mlflow.exceptions.MlflowException as exc:
        raise registry_refused(model, exc) from exc
    except Exception as exc:  # OSError and the unpickler's: each says why in a line
        raise ModelUnavailable(f"cannot load model {model}: {str(exc) or type(exc).__name__}") from exc
