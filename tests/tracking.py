"""The MLflow tracking store of a test module or session."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def tracking_store(uri: str) -> Iterator[str]:
    """Points MLflow, in-process and in child processes, at `uri`, then back at the previous store.

    MLflow's own setting outlives the environment variable, so both are restored: otherwise a
    later module reads a model of the same name from a store that is gone.
    """
    import mlflow

    previous = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield uri
    finally:
        mlflow.set_tracking_uri(previous)
