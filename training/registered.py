"""A registered model's scoring bundle, for the commands that score files with it."""

from __future__ import annotations

from models.bundle import ScoringBundle
from models.pyfunc import load_bundle
from models.registry import configure_tracking


class ModelUnavailable(ValueError):
    """The model URI names nothing MLflow can load (MLflow raises its own exception types)."""


def load_registered(model: str) -> ScoringBundle:
    """The bundle of `model` (e.g. models:/reintegra@champion) from the configured tracking store."""
    configure_tracking()
    try:
        return load_bundle(model)
    except Exception as exc:  # MLflow's own types, OSError and the unpickler's: each says why in a line
        raise ModelUnavailable(f"cannot load model {model}: {str(exc) or type(exc).__name__}") from exc
